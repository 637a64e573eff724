//! Zip archives, read from memory entry by entry into the [`Sink`].

use std::io::{Cursor, Read};

use super::PackageError;
use super::sink::Sink;

/// Unix file type bits of a symlink, as zip tools record them in the external attributes.
const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

pub fn unpack(bytes: &[u8], sink: &mut Sink) -> Result<(), PackageError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| sink.corrupt(e))?;
    let mut declared = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| sink.corrupt(e))?;
        declared = declared.saturating_add(entry.size());
    }
    sink.check_declared(archive.len() as u64, declared)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| sink.corrupt(e))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let mode = entry.unix_mode();
        if entry.is_dir() {
            sink.folder(&name, mode)?;
        } else if entry.is_symlink() || mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
            let mut target = String::new();
            // A link target is a short path; more than 4 KiB is not one.
            (&mut entry)
                .take(4096)
                .read_to_string(&mut target)
                .map_err(|e| sink.corrupt(format_args!("entry '{name}': {e}")))?;
            sink.symlink(&name, &target)?;
        } else {
            let declared = entry.size();
            let mut capped = Capped {
                inner: &mut entry,
                left: declared,
            };
            sink.file(&name, mode, &mut capped)?;
        }
    }
    Ok(())
}

/// Holds an entry to the size its header declared, which the limits were checked against:
/// a header that lies about it is a corrupt archive.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "it holds more data than its header declares",
                )),
            };
        }
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}
