//! Reading a record file without trusting what is at its path: a regular file only, opened
//! without blocking, and no more than a bounded number of bytes.

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::path::Path;

use crate::Error;

/// The default cap on a record file's size ([`Options::max_bytes`](crate::Options::max_bytes)):
/// 64 MiB, far above any hand-kept table, far below what would hurt a server.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes of the file at `path` (symlinks followed), or why not.
///
/// The open does not block whatever the path names: on Unix it is `O_NONBLOCK` (a FIFO with
/// no writer opens at once) and `O_NOCTTY`; then the opened file's own metadata (`fstat`)
/// must say it is a regular file, so a path swapped between a check and the open is caught
/// too. At most `max_bytes + 1` bytes are read, so a file that never ends, or grows while it
/// is read, costs at most the cap.
pub(crate) fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
            kind: kind(meta.file_type()),
        });
    }
    let too_large = || Error::TooLarge {
        path: path.to_owned(),
        limit: max_bytes,
    };
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Without `O_NONBLOCK`: what the path names is checked before the open.
#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    OpenOptions::new().read(true).open(path)
}

/// What a file that is not a regular one is, for the error message.
fn kind(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        return "a directory";
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("recordfile-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_regular_file_is_read_up_to_the_cap_and_refused_past_it() {
        let path = temp("cap.txt");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_file(&path, 10).unwrap(), b"0123456789");
        assert!(matches!(
            read_file(&path, 9),
            Err(Error::TooLarge { limit: 9, .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn devices_directories_and_fifos_are_refused_without_blocking() {
        let err = read_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(matches!(
            err,
            Error::NotAFile {
                kind: "a character device",
                ..
            }
        ));
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = read_file(&std::env::temp_dir(), 1 << 20).unwrap_err();
        assert!(matches!(
            err,
            Error::NotAFile {
                kind: "a directory",
                ..
            }
        ));

        let fifo = temp("pipe");
        let _ = std::fs::remove_file(&fifo);
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // No writer: a blocking open would wait here forever.
        let err = read_file(&fifo, 1 << 20).unwrap_err();
        assert!(matches!(
            err,
            Error::NotAFile {
                kind: "a named pipe (FIFO)",
                ..
            }
        ));
        std::fs::remove_file(&fifo).unwrap();
    }
}
