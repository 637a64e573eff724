//! Well-formed code packages, zip or tar.gz, built entry by entry:
//!
//! ```ignore
//! Archive::zip().file("__main__.py", code).symlink("link", "data.txt").build()
//! Archive::targz().file("exec", script).build()
//! Archive::zip_of_dir(folder)
//! ```
//!
//! Entries are written in the order they are given. Archives that must be invalid on purpose
//! (lying headers, names that climb out, bombs) are hand-made in tests/hardening.rs instead:
//! the crates refuse to write them.

use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy)]
enum Format {
    Zip,
    TarGz,
}

enum Entry {
    /// A regular file; `mode` None: none recorded in a zip, 0644 in a tar.
    File {
        name: String,
        bytes: Vec<u8>,
        mode: Option<u32>,
    },
    Folder {
        name: String,
        mode: Option<u32>,
    },
    /// `name -> target`: in a zip the way `zip -y` stores it (file type bits in the external
    /// attributes, the target as content).
    Symlink {
        name: String,
        target: String,
    },
}

/// A zip or tar.gz archive being put together; [`Archive::build`] gives its bytes.
pub struct Archive {
    format: Format,
    entries: Vec<Entry>,
}

impl Archive {
    pub fn zip() -> Archive {
        Archive {
            format: Format::Zip,
            entries: Vec::new(),
        }
    }

    pub fn targz() -> Archive {
        Archive {
            format: Format::TarGz,
            entries: Vec::new(),
        }
    }

    /// A regular file with no permissions of its own.
    pub fn file(self, name: &str, bytes: impl AsRef<[u8]>) -> Archive {
        self.entry(Entry::File {
            name: name.to_string(),
            bytes: bytes.as_ref().to_vec(),
            mode: None,
        })
    }

    /// Regular files, in order.
    pub fn files(self, files: &[(&str, &[u8])]) -> Archive {
        files
            .iter()
            .fold(self, |archive, (name, bytes)| archive.file(name, bytes))
    }

    /// A regular file with unix permissions (e.g. 0o755).
    pub fn file_mode(self, name: &str, bytes: impl AsRef<[u8]>, mode: u32) -> Archive {
        self.entry(Entry::File {
            name: name.to_string(),
            bytes: bytes.as_ref().to_vec(),
            mode: Some(mode),
        })
    }

    /// A folder entry (`name` ending in `/`).
    pub fn folder(self, name: &str) -> Archive {
        self.entry(Entry::Folder {
            name: name.to_string(),
            mode: None,
        })
    }

    pub fn symlink(self, name: &str, target: &str) -> Archive {
        self.entry(Entry::Symlink {
            name: name.to_string(),
            target: target.to_string(),
        })
    }

    fn entry(mut self, entry: Entry) -> Archive {
        self.entries.push(entry);
        self
    }

    pub fn build(self) -> Vec<u8> {
        match self.format {
            Format::Zip => build_zip(&self.entries),
            Format::TarGz => build_targz(&self.entries),
        }
    }

    /// A zip of everything under `root` (names relative to it): folders (0755), regular files
    /// with their permissions, and symlinks kept as symlinks.
    pub fn zip_of_dir(root: &Path) -> Vec<u8> {
        let mut entries = Vec::new();
        walk(root, root, &mut entries);
        build_zip(&entries)
    }
}

/// The entries under `dir`, sorted by path, a folder's entry before what it holds.
fn walk(root: &Path, dir: &Path, entries: &mut Vec<Entry>) {
    use std::os::unix::fs::PermissionsExt;
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            entries.push(Entry::Symlink {
                name,
                target: target.to_string_lossy().into_owned(),
            });
        } else if meta.is_dir() {
            entries.push(Entry::Folder {
                name: format!("{name}/"),
                mode: Some(0o755),
            });
            walk(root, &path, entries);
        } else {
            entries.push(Entry::File {
                name,
                bytes: std::fs::read(&path).unwrap(),
                mode: Some(meta.permissions().mode() & 0o777),
            });
        }
    }
}

fn build_zip(entries: &[Entry]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let with_mode = |mode: &Option<u32>| match mode {
        Some(mode) => deflated.unix_permissions(*mode),
        None => deflated,
    };
    for entry in entries {
        match entry {
            Entry::File { name, bytes, mode } => {
                writer.start_file(name.as_str(), with_mode(mode)).unwrap();
                writer.write_all(bytes).unwrap();
            }
            Entry::Folder { name, mode } => {
                writer
                    .add_directory(name.as_str(), with_mode(mode))
                    .unwrap();
            }
            Entry::Symlink { name, target } => {
                writer
                    .add_symlink(name.as_str(), target.as_str(), deflated)
                    .unwrap();
            }
        }
    }
    writer.finish().unwrap().into_inner()
}

fn build_targz(entries: &[Entry]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        match entry {
            Entry::File { name, bytes, mode } => {
                header.set_size(bytes.len() as u64);
                header.set_mode(mode.unwrap_or(0o644));
                header.set_entry_type(tar::EntryType::Regular);
                builder
                    .append_data(&mut header, name, bytes.as_slice())
                    .unwrap();
            }
            Entry::Folder { name, mode } => {
                header.set_size(0);
                header.set_mode(mode.unwrap_or(0o755));
                header.set_entry_type(tar::EntryType::Directory);
                builder
                    .append_data(&mut header, name, std::io::empty())
                    .unwrap();
            }
            Entry::Symlink { name, target } => {
                header.set_size(0);
                header.set_mode(0o777);
                header.set_entry_type(tar::EntryType::Symlink);
                builder.append_link(&mut header, name, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}
