//! Small helpers shared by several modules: durable file writes, the clock, and (in
//! [`secret`]) random tokens, SHA-256 and constant-time comparison.

pub mod secret;

use std::io::Write;
use std::path::Path;

/// fsyncs a directory so that a rename or create inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Destroys a key file: overwrites it with zeros, syncs, unlinks it and syncs its folder
/// (a missing file is gone already).
pub fn shred_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&vec![0u8; len as usize])?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `path` atomically and durably: a temporary file in the same directory,
/// fsync, rename over the target, fsync of the directory. A reader sees the old file or the
/// new one, never half of either.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_parts(path, std::iter::once(bytes))
}

/// [`write_atomic`] for a file given as consecutive parts (a sealed object's header, chunks
/// and tags), written one after another without joining them in memory first.
pub fn write_atomic_parts<'a>(
    path: &Path,
    parts: impl IntoIterator<Item = &'a [u8]>,
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Now, as an RFC 3339 UTC timestamp with its zone.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable time")
}

/// Now, as Unix seconds.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Parses a zone offset: `Z`, `+09:00`, `-05:30`.
pub fn parse_offset(text: &str) -> Option<time::UtcOffset> {
    if text == "Z" {
        return Some(time::UtcOffset::UTC);
    }
    let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    time::UtcOffset::parse(text, &fmt).ok()
}

/// Now, as RFC 3339 in the given zone offset.
pub fn now_rfc3339_in(offset: time::UtcOffset) -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(offset)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable time")
}
