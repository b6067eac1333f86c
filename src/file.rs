//! Opening files from the data directory without ever blocking on one that
//! is not a regular file.
//!
//! `open(2)` on a FIFO blocks until a writer appears, so a FIFO named like an
//! entry or placed under `DATA/media/` once froze the reload thread and, one
//! request at a time, every server thread. Every file Vestnik reads from DATA
//! is opened here: the path is stat'ed first (nothing is opened that is not a
//! regular file), opened with `O_NONBLOCK` (which cannot block, and means
//! nothing for a regular file), and stat'ed again through the descriptor, so
//! a file swapped for a FIFO between the two steps is refused too.

use std::fs::{File, Metadata};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use sha2::Digest as _;

/// What kind of non-regular file a path is, for messages.
pub fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Opens `path` (following symlinks) for reading if it is a regular file;
/// otherwise fails with [`std::io::ErrorKind::InvalidInput`] and a message
/// saying what it is. Never blocks on a FIFO, socket or device.
pub fn open_regular(path: &Path) -> std::io::Result<(File, Metadata)> {
    let refuse = |meta: &Metadata| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}; only regular files are read", kind(meta)),
        )
    };
    let before = std::fs::metadata(path)?;
    if !before.is_file() {
        return Err(refuse(&before));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(&meta));
    }
    Ok((file, meta))
}

/// Reads a whole UTF-8 file that must be a regular file (see [`open_regular`]).
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    let (mut file, meta) = open_regular(path)?;
    let mut text = String::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_string(&mut file, &mut text)?;
    Ok(text)
}

/// The SHA-256 of a file's bytes, read in blocks (the build's manifest,
/// and the digest of the running program for input keys).
pub fn sha256(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut block = vec![0; 1 << 16];
    loop {
        match file.read(&mut block)? {
            0 => return Ok(hasher.finalize().into()),
            n => hasher.update(&block[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_sockets_and_folders_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.md");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600)).unwrap();
        let socket = dir.path().join("socket.md");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let link = dir.path().join("link.md");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for (path, what) in [
            (&fifo, "FIFO"),
            (&socket, "socket"),
            (&link, "FIFO"),
            (&dir.path().to_path_buf(), "folder"),
        ] {
            let e = open_regular(path).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{path:?}");
            assert!(e.to_string().contains(what), "{path:?}: {e}");
        }
        let file = dir.path().join("a.md");
        std::fs::write(&file, "x").unwrap();
        let (_, meta) = open_regular(&file).unwrap();
        assert_eq!(meta.len(), 1);
        assert!(open_regular(&dir.path().join("missing")).is_err());
    }
}
