//! Chunk arithmetic: which 64 KiB chunks of a sealed object a plaintext byte range needs, and
//! where those chunks sit in the stored bytes. Pure arithmetic over the format's constants, so
//! a reader can fetch exactly the sealed bytes a range needs and nothing else.

use super::format::{CHUNK_SIZE, HEADER_LEN, TAG_LEN};

const CHUNK: u64 = CHUNK_SIZE as u64;
const SEALED_CHUNK: u64 = (CHUNK_SIZE + TAG_LEN) as u64;

/// Chunks an object of `plain_len` plaintext bytes is sealed in. Even an empty plaintext is one
/// (empty) chunk with its tag.
pub fn chunk_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK).max(1)
}

/// Where chunk `i` of an object of `plain_len` bytes (ciphertext and tag) sits in the stored
/// object: (offset, length).
pub fn sealed_chunk_span(plain_len: u64, i: u64) -> (u64, u64) {
    let plain = if i + 1 == chunk_count(plain_len) {
        plain_len - i * CHUNK
    } else {
        CHUNK
    };
    (HEADER_LEN as u64 + i * SEALED_CHUNK, plain + TAG_LEN as u64)
}

/// A non-empty plaintext byte range of one sealed object, resolved to the chunks it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    plain_len: u64,
    /// First plaintext byte wanted.
    start: u64,
    /// One past the last plaintext byte wanted.
    end: u64,
}

impl ChunkRange {
    /// `len` bytes from `offset` of an object of `plain_len` bytes; `None` when the range is
    /// empty or runs past the object's end.
    pub fn new(plain_len: u64, offset: u64, len: u64) -> Option<ChunkRange> {
        let end = offset.checked_add(len)?;
        (len > 0 && end <= plain_len).then_some(ChunkRange {
            plain_len,
            start: offset,
            end,
        })
    }

    /// Plaintext length of the whole object the range is of.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// The first chunk the range touches.
    pub fn first(&self) -> u64 {
        self.start / CHUNK
    }

    /// The last chunk the range touches.
    pub fn last(&self) -> u64 {
        (self.end - 1) / CHUNK
    }

    /// The chunks the range touches, in order.
    pub fn chunks(&self) -> std::ops::RangeInclusive<u64> {
        self.first()..=self.last()
    }

    /// The stored bytes holding every chunk the range touches: (offset, length).
    pub fn sealed_span(&self) -> (u64, u64) {
        let (from, _) = sealed_chunk_span(self.plain_len, self.first());
        let (last_at, last_len) = sealed_chunk_span(self.plain_len, self.last());
        (from, last_at + last_len - from)
    }

    /// The part of chunk `i`'s plaintext that falls in the range, as offsets into that chunk.
    pub fn within(&self, i: u64) -> std::ops::Range<usize> {
        let chunk_start = i * CHUNK;
        let chunk_end = (chunk_start + CHUNK).min(self.plain_len);
        let from = self.start.clamp(chunk_start, chunk_end) - chunk_start;
        let to = self.end.clamp(chunk_start, chunk_end) - chunk_start;
        from as usize..to as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: u64 = CHUNK;
    const H: u64 = HEADER_LEN as u64;
    const T: u64 = TAG_LEN as u64;

    #[test]
    fn an_empty_range_or_one_past_the_end_needs_no_chunks() {
        assert_eq!(ChunkRange::new(10, 0, 0), None);
        assert_eq!(ChunkRange::new(10, 10, 0), None);
        assert_eq!(ChunkRange::new(10, 5, 6), None);
        assert_eq!(ChunkRange::new(0, 0, 1), None);
        assert_eq!(ChunkRange::new(10, u64::MAX, 2), None);
    }

    #[test]
    fn a_range_inside_one_chunk_needs_that_chunk_only() {
        let r = ChunkRange::new(3 * C, C + 10, 100).unwrap();
        assert_eq!((r.first(), r.last()), (1, 1));
        assert_eq!(r.sealed_span(), (H + (C + T), C + T));
        assert_eq!(r.within(1), 10..110);
    }

    #[test]
    fn exactly_one_chunk_needs_that_chunk_whole_and_not_its_neighbours() {
        let r = ChunkRange::new(3 * C, C, C).unwrap();
        assert_eq!(r.chunks(), 1..=1);
        assert_eq!(r.within(1), 0..C as usize);
        let first = ChunkRange::new(3 * C, 0, C).unwrap();
        assert_eq!(first.chunks(), 0..=0);
        assert_eq!(first.sealed_span(), (H, C + T));
    }

    #[test]
    fn a_range_crossing_a_boundary_needs_both_chunks_and_trims_each() {
        let r = ChunkRange::new(3 * C, C - 1, 2).unwrap();
        assert_eq!(r.chunks(), 0..=1);
        assert_eq!(r.sealed_span(), (H, 2 * (C + T)));
        assert_eq!(r.within(0), (C - 1) as usize..C as usize);
        assert_eq!(r.within(1), 0..1);
    }

    #[test]
    fn the_last_partial_chunk_is_shorter_in_plaintext_and_in_storage() {
        let plain_len = 2 * C + 5;
        assert_eq!(chunk_count(plain_len), 3);
        assert_eq!(sealed_chunk_span(plain_len, 2), (H + 2 * (C + T), 5 + T));
        let r = ChunkRange::new(plain_len, 2 * C + 1, 4).unwrap();
        assert_eq!(r.chunks(), 2..=2);
        assert_eq!(r.sealed_span(), (H + 2 * (C + T), 5 + T));
        assert_eq!(r.within(2), 1..5);
        let whole = ChunkRange::new(plain_len, 0, plain_len).unwrap();
        assert_eq!(whole.chunks(), 0..=2);
        assert_eq!(whole.sealed_span(), (H, plain_len + 3 * T));
    }

    #[test]
    fn an_empty_object_is_one_empty_chunk_with_its_tag() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(sealed_chunk_span(0, 0), (H, T));
        assert_eq!(chunk_count(C), 1);
        assert_eq!(chunk_count(C + 1), 2);
    }
}
