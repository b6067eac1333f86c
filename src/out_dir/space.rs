//! Why a build ran out of room: the filesystem holding OUT, where it is
//! mounted and what is free, for the message of a full disk.

use std::path::Path;

use super::Target;

impl Target {
    /// `error` from writing this build, made to name the filesystem when it
    /// is full (ENOSPC) or over quota (EDQUOT): which one, where it is
    /// mounted and what is free. Any other error is returned as it is.
    /// Call it once the stage is dropped, so the space it held is counted
    /// as free again.
    pub fn explain(&self, error: std::io::Error) -> std::io::Error {
        use rustix::io::Errno;
        let what = match Errno::from_io_error(&error) {
            Some(Errno::NOSPC) => "no space left",
            Some(Errno::DQUOT) => "disk quota exceeded",
            _ => return error,
        };
        let fs = Filesystem::holding(self.parent())
            .map(|fs| format!(" ({fs})"))
            .unwrap_or_default();
        std::io::Error::new(
            error.kind(),
            format!(
                "{what} on the filesystem holding {}{fs}; free some space there or build into a folder on another filesystem",
                self.shown.display()
            ),
        )
    }
}

/// The filesystem a path lies on, as `df` would show it.
struct Filesystem {
    /// From `/proc/self/mountinfo`: type, source and mount point, when found.
    mount: Option<(String, String, String)>,
    /// Bytes free to unprivileged users, and the size.
    free: u64,
    total: u64,
    /// Inodes (files) free, where the filesystem counts them.
    free_files: u64,
}

impl Filesystem {
    fn holding(path: &Path) -> Option<Filesystem> {
        let vfs = rustix::fs::statvfs(path).ok()?;
        let dev = rustix::fs::stat(path).ok()?.st_dev;
        let id = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
        let real = std::fs::canonicalize(path).ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Some(Filesystem {
            mount: mount_of(&mountinfo, &id, &real),
            free: vfs.f_bavail.saturating_mul(vfs.f_frsize),
            total: vfs.f_blocks.saturating_mul(vfs.f_frsize),
            free_files: if vfs.f_files == 0 {
                u64::MAX
            } else {
                vfs.f_ffree
            },
        })
    }
}

impl std::fmt::Display for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mount {
            // A tmpfs's source is "tmpfs" too: name it once.
            Some((fstype, source, point)) if source == fstype || source == "none" => {
                write!(f, "{fstype} mounted at {point}, ")?
            }
            Some((fstype, source, point)) => write!(f, "{fstype} {source} mounted at {point}, ")?,
            None => {}
        }
        write!(f, "{} free of {}", size(self.free), size(self.total))?;
        if self.free_files == 0 {
            write!(f, ", and no inodes (files) left")?;
        }
        Ok(())
    }
}

/// Type, source and mount point of the mount of device `id` ("major:minor")
/// whose mount point is the longest prefix of `path`, from the text of
/// `/proc/self/mountinfo` (proc(5): `id parent major:minor root point
/// options [optional...] - type source super-options`).
fn mount_of(mountinfo: &str, id: &str, path: &Path) -> Option<(String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let mut tail = tail.split(' ');
            let (fstype, source) = (tail.next()?, tail.next()?);
            let point = unescape(head.get(4)?);
            (head.get(2) == Some(&id) && path.starts_with(&point))
                .then(|| (fstype.to_owned(), unescape(source), point))
        })
        .max_by_key(|(_, _, point)| point.len())
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes for a person: "812 KiB", "3.5 MiB", "41.0 GiB".
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB * KIB {
        format!("{:.0} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_holding_a_path_is_found_in_mountinfo() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /tmp rw,nosuid shared:20 - tmpfs tmpfs rw,size=1024k
41 40 0:36 / /tmp/my\\040out rw - tmpfs none rw,size=4096k
42 22 254:0 /srv /mnt/srv rw - ext4 /dev/vda rw
";
        let found = |id, path: &str| mount_of(mountinfo, id, Path::new(path));
        assert_eq!(
            found("0:36", "/tmp/my out/site"),
            Some(("tmpfs".into(), "none".into(), "/tmp/my out".into()))
        );
        assert_eq!(
            found("0:35", "/tmp/x"),
            Some(("tmpfs".into(), "tmpfs".into(), "/tmp".into()))
        );
        // The same device mounted twice: the mount point the path lies under.
        assert_eq!(found("254:0", "/mnt/srv/out").unwrap().2, "/mnt/srv");
        assert_eq!(found("254:0", "/home/x").unwrap().2, "/");
        assert_eq!(found("0:99", "/tmp"), None);
        assert_eq!(size(4 << 20), "4.0 MiB");
        assert_eq!(size(812 * 1024), "812 KiB");
    }
}
