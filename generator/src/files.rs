//! How geolb touches the file system. The output directory is often a pull request's
//! checkout in CI, so nothing under it is trusted: no symbolic link in it is followed
//! (a link could point `check` at a CI secret or `render` at a file outside it), every
//! file is read with a size limit, and every error names the path it is about.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest plan file geolb reads. A synthetic 5,000-service, 20-cluster plan with
/// traffic rules is about 1.5 MiB; this leaves room for ten times that.
pub const PLAN_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// Largest file geolb reads from an output directory. Every rendered file is a
/// Kubernetes object, which etcd caps near 1.5 MiB; anything far larger is not ours.
pub const MANIFEST_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// A file-system problem, always with the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The operating system refused an operation.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What geolb tried to do ("read", "write", "create directory", ...).
        action: &'static str,
        /// The path it tried it on.
        path: PathBuf,
        /// The system's reason.
        source: io::Error,
    },
    /// A file larger than geolb reads.
    #[error("{} is larger than {} MiB, the most geolb reads from one file", path.display(), limit / (1024 * 1024))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A file that is not UTF-8 text.
    #[error("{} is not UTF-8 text (a binary file?)", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A symbolic link where geolb reads or writes.
    #[error("{} is a symbolic link: geolb never follows links in its output directory; remove it", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a regular file (or, for a folder, a directory) in the way.
    #[error("{} is {found}, where geolb needs {wanted}", path.display())]
    InTheWay {
        /// The path.
        path: PathBuf,
        /// What is there ("a directory", "a FIFO", ...).
        found: &'static str,
        /// What geolb needs there ("a file", "a directory").
        wanted: &'static str,
    },
    /// The directory `check` compares against does not exist.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The directory.
        path: PathBuf,
    },
}

impl FileError {
    /// Wraps an IO error with what was tried and where.
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileError {
        let path = path.to_path_buf();
        move |source| FileError::Io {
            action,
            path,
            source,
        }
    }
}

/// What is at a path, looked at without following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO, socket or device.
    Special(&'static str),
}

impl Kind {
    /// The kind of what `path` names, without following a final symbolic link;
    /// `None` when nothing is there.
    pub fn of(path: &Path) -> Result<Option<Kind>, FileError> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) => Ok(Some(Kind::from(meta.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FileError::io("inspect", path)(e)),
        }
    }

    /// How a message names it.
    pub fn described(self) -> &'static str {
        match self {
            Kind::File => "a file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Special(what) => what,
        }
    }
}

impl From<std::fs::FileType> for Kind {
    fn from(t: std::fs::FileType) -> Kind {
        if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else if t.is_fifo() {
            Kind::Special("a FIFO")
        } else if t.is_socket() {
            Kind::Special("a socket")
        } else {
            Kind::Special("a device")
        }
    }
}

/// Reads a plan file the user named (a link the user gives is theirs to give, so
/// it is followed), as text, at most [`PLAN_SIZE_LIMIT`] bytes.
pub fn read_plan(path: &Path) -> Result<String, FileError> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(FileError::InTheWay {
            path: path.to_path_buf(),
            found: "a directory",
            wanted: "a plan file",
        });
    }
    let file = File::open(path).map_err(FileError::io("read", path))?;
    text(path, limited(path, file, PLAN_SIZE_LIMIT)?)
}

/// Reads a regular file inside the output directory without following a link at
/// its last component (the caller has walked the folders above without following
/// links), at most [`MANIFEST_SIZE_LIMIT`] bytes.
pub fn read_inside(path: &Path) -> Result<Vec<u8>, FileError> {
    let file = OpenOptions::new()
        .read(true)
        // A FIFO swapped in after the directory walk must not block the read.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| refused_link(path, e, "read"))?;
    let meta = file.metadata().map_err(FileError::io("inspect", path))?;
    let kind = Kind::from(meta.file_type());
    if kind != Kind::File {
        return Err(FileError::InTheWay {
            path: path.to_path_buf(),
            found: kind.described(),
            wanted: "a file",
        });
    }
    limited(path, file, MANIFEST_SIZE_LIMIT)
}

/// Opens `path` for a new file, never through a link and never over anything.
pub fn create_new_inside(path: &Path) -> Result<File, FileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| refused_link(path, e, "create"))
}

/// Bytes as UTF-8 text, or an error naming the file.
pub fn text(path: &Path, bytes: Vec<u8>) -> Result<String, FileError> {
    String::from_utf8(bytes).map_err(|_| FileError::NotText {
        path: path.to_path_buf(),
    })
}

fn limited(path: &Path, file: File, limit: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileError::io("read", path))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// `O_NOFOLLOW` fails with ELOOP on a link: say it was a link.
fn refused_link(path: &Path, e: io::Error, action: &'static str) -> FileError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        FileError::Symlink {
            path: path.to_path_buf(),
        }
    } else {
        FileError::io(action, path)(e)
    }
}
