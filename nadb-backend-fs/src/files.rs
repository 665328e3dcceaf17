//! File names, directory syncs and I/O error mapping.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nadb_core::Error;

/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "LOCK";

pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:016x}.log"))
}

pub(crate) fn hint_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:016x}.hint"))
}

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// The id of a segment file name, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Makes a directory's entries (created, renamed, deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An I/O error as a backend error; interruptions and timeouts are temporary.
pub(crate) fn io_error(context: &str, path: &Path, e: io::Error) -> Error {
    let temporary = matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    );
    Error::backend(
        "fs",
        temporary,
        io::Error::new(e.kind(), format!("{context} {}: {e}", path.display())),
    )
}

/// Writes `parts`, one after the other, to `path` durably and atomically: a temporary file,
/// fsync, rename, directory fsync.
pub(crate) fn write_atomic(dir: &Path, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    use std::io::Write;
    let tmp = tmp_path(path);
    let mut f = File::create(&tmp)?;
    for bytes in parts {
        f.write_all(bytes)?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Writes `bytes` to a new side file next to `segment` for a person to inspect; an earlier
/// side file of the same name is kept (the new one gets a number after it).
pub(crate) fn write_side_file(segment: &Path, suffix: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    use std::io::Write;
    let mut n = 0u32;
    let (path, mut f) = loop {
        let mut s = segment.as_os_str().to_owned();
        s.push(suffix);
        if n > 0 {
            s.push(format!(".{n}"));
        }
        let path = PathBuf::from(s);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
            Err(e) => return Err(e),
        }
    };
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::write_side_file;

    #[test]
    fn a_second_side_file_of_the_same_name_keeps_the_first() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let seg = dir.path().join("seg-0000000000000001.log");
        let first = write_side_file(&seg, ".cut-16", b"first")?;
        let second = write_side_file(&seg, ".cut-16", b"second")?;
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first)?, b"first");
        assert_eq!(std::fs::read(&second)?, b"second");
        Ok(())
    }
}
