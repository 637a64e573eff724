//! Where archive entries land. One place decides what is safe, for zip and tar.gz alike:
//!
//! - names are relative paths without `..`; anything else is refused, not rewritten;
//! - every parent folder is a real folder made here, never a symlink, so nothing is written
//!   through a link even when the archive carries links (virtualenvs do, and they are kept);
//! - files are created with `O_EXCL`, which never follows a link;
//! - bytes are counted as they are written, so a lying header cannot exceed the limits.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::PackageError;
use crate::settings::Limits;

/// Past this many unpacked bytes the compression ratio is watched.
const RATIO_FLOOR: u64 = 16 * 1024 * 1024;

pub struct Sink<'a> {
    root: &'a Path,
    limits: &'a Limits,
    format: &'static str,
    /// Size of the archive as sent, for the compression ratio.
    packed: u64,
    /// Folders (relative) known to be real folders inside the root.
    folders: HashSet<PathBuf>,
    written: u64,
    entries: u64,
}

impl<'a> Sink<'a> {
    pub fn new(root: &'a Path, limits: &'a Limits, format: &'static str, packed: u64) -> Self {
        Sink {
            root,
            limits,
            format,
            packed: packed.max(1),
            folders: HashSet::new(),
            written: 0,
            entries: 0,
        }
    }

    /// Refuses early what the archive's own directory already shows to be over the limits.
    pub fn check_declared(&self, entries: u64, bytes: u64) -> Result<(), PackageError> {
        if entries > self.limits.archive_entries {
            return Err(self.too_many_entries());
        }
        if bytes > self.limits.unpacked_bytes {
            return Err(PackageError::TooLarge(format!(
                "it declares {bytes} bytes unpacked, the limit is {} (OW_MAX_UNPACKED_BYTES)",
                self.limits.unpacked_bytes
            )));
        }
        Ok(())
    }

    pub fn corrupt(&self, detail: impl std::fmt::Display) -> PackageError {
        PackageError::Corrupt {
            format: self.format,
            detail: detail.to_string(),
        }
    }

    fn too_many_entries(&self) -> PackageError {
        PackageError::TooLarge(format!(
            "more than {} entries (OW_MAX_ARCHIVE_ENTRIES)",
            self.limits.archive_entries
        ))
    }

    /// Checks an entry's name and counts it; `None` for names that mean the root itself.
    fn admit(&mut self, name: &str) -> Result<Option<PathBuf>, PackageError> {
        self.entries += 1;
        if self.entries > self.limits.archive_entries {
            return Err(self.too_many_entries());
        }
        let unsafe_entry = |why| PackageError::Unsafe {
            entry: name.to_string(),
            why,
        };
        if name.contains('\0') {
            return Err(unsafe_entry("the name holds a NUL byte"));
        }
        let mut relative = PathBuf::new();
        for component in Path::new(name).components() {
            match component {
                Component::Normal(part) => relative.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(unsafe_entry("'..' would leave the action folder"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(unsafe_entry("absolute paths are not allowed"));
                }
            }
        }
        Ok((!relative.as_os_str().is_empty()).then_some(relative))
    }

    /// Makes sure every folder above `relative` is a real folder inside the root.
    fn parents(&mut self, name: &str, relative: &Path) -> Result<(), PackageError> {
        let mut folder = PathBuf::new();
        let Some(parent) = relative.parent() else {
            return Ok(());
        };
        for part in parent.components() {
            folder.push(part);
            if self.folders.contains(&folder) {
                continue;
            }
            self.make_folder(name, &folder)?;
        }
        Ok(())
    }

    fn make_folder(&mut self, name: &str, folder: &Path) -> Result<(), PackageError> {
        let path = self.root.join(folder);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(PackageError::Unsafe {
                    entry: name.to_string(),
                    why: "a folder on its path is a symlink or a file",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&path).map_err(|error| io_error(name, error))?;
            }
            Err(error) => return Err(io_error(name, error)),
        }
        self.folders.insert(folder.to_path_buf());
        Ok(())
    }

    pub fn folder(&mut self, name: &str, mode: Option<u32>) -> Result<(), PackageError> {
        let Some(relative) = self.admit(name)? else {
            return Ok(());
        };
        self.parents(name, &relative)?;
        if !self.folders.contains(&relative) {
            self.make_folder(name, &relative)?;
        }
        if let Some(mode) = mode {
            let perms = fs::Permissions::from_mode((mode & 0o777) | 0o700);
            fs::set_permissions(self.root.join(&relative), perms)
                .map_err(|error| io_error(name, error))?;
        }
        Ok(())
    }

    pub fn file(
        &mut self,
        name: &str,
        mode: Option<u32>,
        content: &mut dyn Read,
    ) -> Result<(), PackageError> {
        let Some(relative) = self.admit(name)? else {
            return Err(PackageError::Unsafe {
                entry: name.to_string(),
                why: "a file needs a name",
            });
        };
        self.parents(name, &relative)?;
        let path = self.root.join(&relative);
        let mode = mode.map_or(0o644, |m| (m & 0o777) | 0o600);
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
        };
        let mut file = match open() {
            Ok(file) => file,
            // A tar may carry the same file twice (the later one wins); a link never is replaced.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&path).map_err(|error| io_error(name, error))?;
                if !meta.is_file() {
                    return Err(PackageError::Unsafe {
                        entry: name.to_string(),
                        why: "it would overwrite a symlink or a folder",
                    });
                }
                self.folders.remove(&relative);
                fs::remove_file(&path).map_err(|error| io_error(name, error))?;
                open().map_err(|error| io_error(name, error))?
            }
            Err(error) => return Err(io_error(name, error)),
        };
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(format_args!("entry '{name}': {e}"))),
            };
            self.written += n as u64;
            self.check_written()?;
            file.write_all(&buffer[..n])
                .map_err(|error| io_error(name, error))?;
        }
        // O_CREAT's mode is cut by the umask; an archive's execute bits must survive it.
        if mode & 0o111 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|error| io_error(name, error))?;
        }
        Ok(())
    }

    fn check_written(&self) -> Result<(), PackageError> {
        if self.written > self.limits.unpacked_bytes {
            return Err(PackageError::TooLarge(format!(
                "it unpacks to more than {} bytes (OW_MAX_UNPACKED_BYTES)",
                self.limits.unpacked_bytes
            )));
        }
        if self.written > RATIO_FLOOR && self.written / self.packed > self.limits.compression_ratio
        {
            return Err(PackageError::TooLarge(format!(
                "it unpacks to over {} times its size (OW_MAX_COMPRESSION_RATIO)",
                self.limits.compression_ratio
            )));
        }
        Ok(())
    }

    /// A symlink is kept as it is, wherever it points: it is the action's own business to read
    /// through it at run time, but no entry of the archive is ever written through it.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), PackageError> {
        let Some(relative) = self.admit(name)? else {
            return Err(PackageError::Unsafe {
                entry: name.to_string(),
                why: "a symlink needs a name",
            });
        };
        if target.is_empty() || target.contains('\0') {
            return Err(PackageError::Unsafe {
                entry: name.to_string(),
                why: "the symlink has no usable target",
            });
        }
        self.parents(name, &relative)?;
        std::os::unix::fs::symlink(target, self.root.join(&relative))
            .map_err(|error| io_error(name, error))
    }
}

fn io_error(entry: &str, error: io::Error) -> PackageError {
    PackageError::Io {
        entry: entry.to_string(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sink(test: impl FnOnce(&mut Sink, &Path)) {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits::default();
        let mut sink = Sink::new(dir.path(), &limits, "zip", 1000);
        test(&mut sink, dir.path());
    }

    #[test]
    fn nested_files_get_their_folders() {
        with_sink(|sink, root| {
            sink.file("a/b/c.txt", None, &mut &b"hi"[..]).unwrap();
            assert_eq!(fs::read(root.join("a/b/c.txt")).unwrap(), b"hi");
            sink.file("./a/./d.txt", Some(0o755), &mut &b"x"[..])
                .unwrap();
            let mode = fs::metadata(root.join("a/d.txt"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        });
    }

    #[test]
    fn escapes_are_refused() {
        with_sink(|sink, root| {
            for name in ["../x", "a/../../x", "/etc/passwd"] {
                let err = sink.file(name, None, &mut &b"x"[..]).unwrap_err();
                assert!(matches!(err, PackageError::Unsafe { .. }), "{name}: {err}");
            }
            sink.symlink("out", "/tmp").unwrap();
            let err = sink.file("out/x", None, &mut &b"x"[..]).unwrap_err();
            assert!(err.to_string().contains("symlink"), "{err}");
            let err = sink.file("out", None, &mut &b"x"[..]).unwrap_err();
            assert!(err.to_string().contains("symlink"), "{err}");
            assert!(fs::symlink_metadata(root.join("out")).unwrap().is_symlink());
        });
    }

    #[test]
    fn limits_hold_whatever_the_headers_say() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            unpacked_bytes: 10,
            archive_entries: 2,
            ..Limits::default()
        };
        let mut sink = Sink::new(dir.path(), &limits, "zip", 1000);
        let err = sink.file("big", None, &mut &[0u8; 11][..]).unwrap_err();
        assert!(matches!(err, PackageError::TooLarge(_)));
        sink.folder("d/", None).unwrap();
        assert!(matches!(
            sink.folder("e/", None),
            Err(PackageError::TooLarge(_))
        ));
        assert!(sink.check_declared(1, 11).is_err());
    }
}
