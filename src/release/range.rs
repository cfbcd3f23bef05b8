//! HTTP Range requests over a released item: one `bytes=` range, or none.

/// An inclusive byte range of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a Range header cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("Range header is malformed (expected bytes=START-END, bytes=START- or bytes=-SUFFIX)")]
    Malformed,
    #[error("only one range per request is served")]
    MultipleRanges,
    #[error("range is outside the item's {total} bytes")]
    Unsatisfiable { total: u64 },
}

/// Parses a Range header against an item of `total` bytes; `None` header means the whole item.
pub fn parse(header: Option<&str>, total: u64) -> Result<Option<ByteRange>, RangeError> {
    let Some(h) = header else {
        return Ok(None);
    };
    let spec = h
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    if spec.contains(',') {
        return Err(RangeError::MultipleRanges);
    }
    let (a, b) = spec.trim().split_once('-').ok_or(RangeError::Malformed)?;
    let num = |s: &str| -> Result<u64, RangeError> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(RangeError::Malformed);
        }
        s.parse().map_err(|_| RangeError::Malformed)
    };
    let unsatisfiable = RangeError::Unsatisfiable { total };
    let range = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Err(RangeError::Malformed),
        // bytes=-N: the last N bytes.
        (true, false) => {
            let n = num(b)?;
            if n == 0 || total == 0 {
                return Err(unsatisfiable);
            }
            ByteRange {
                start: total.saturating_sub(n),
                end: total - 1,
            }
        }
        (false, true) => {
            let start = num(a)?;
            if start >= total {
                return Err(unsatisfiable);
            }
            ByteRange {
                start,
                end: total - 1,
            }
        }
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            if end < start {
                return Err(RangeError::Malformed);
            }
            if start >= total {
                return Err(unsatisfiable);
            }
            ByteRange {
                start,
                end: end.min(total - 1),
            }
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_at_their_boundaries() {
        let r = |s, e| Ok(Some(ByteRange { start: s, end: e }));
        assert_eq!(parse(None, 10), Ok(None));
        assert_eq!(parse(Some("bytes=0-0"), 10), r(0, 0));
        assert_eq!(parse(Some("bytes=0-9"), 10), r(0, 9));
        assert_eq!(parse(Some("bytes=5-100"), 10), r(5, 9));
        assert_eq!(parse(Some("bytes=9-"), 10), r(9, 9));
        assert_eq!(parse(Some("bytes=-3"), 10), r(7, 9));
        assert_eq!(parse(Some("bytes=-30"), 10), r(0, 9));
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        use RangeError::*;
        for bad in [
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "items=0-1",
            "bytes=5-2",
            "0-1",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse(Some(bad), 10), Err(Malformed), "{bad}");
        }
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), Err(MultipleRanges));
        assert_eq!(
            parse(Some("bytes=10-"), 10),
            Err(Unsatisfiable { total: 10 })
        );
        assert_eq!(
            parse(Some("bytes=-0"), 10),
            Err(Unsatisfiable { total: 10 })
        );
        assert_eq!(parse(Some("bytes=0-"), 0), Err(Unsatisfiable { total: 0 }));
    }
}
