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
            sink.file(&name, mode, &mut entry)?;
        }
    }
    Ok(())
}
