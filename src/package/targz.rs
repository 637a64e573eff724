//! Gzip-compressed tar archives, streamed through the decompressor into the [`Sink`].

use tar::EntryType;

use super::PackageError;
use super::sink::Sink;

pub fn unpack(bytes: &[u8], sink: &mut Sink) -> Result<(), PackageError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let entries = archive.entries().map_err(|e| sink.corrupt(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| sink.corrupt(e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header();
        let mode = header.mode().ok();
        match header.entry_type() {
            EntryType::Directory => sink.folder(&name, mode)?,
            EntryType::Regular | EntryType::Continuous => sink.file(&name, mode, &mut entry)?,
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                sink.symlink(&name, &target)?;
            }
            EntryType::Link => {
                return Err(PackageError::Unsafe {
                    entry: name,
                    why: "hard links are not supported",
                });
            }
            // Metadata records (pax, GNU long names) are consumed by the tar reader itself.
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            _ => {
                return Err(PackageError::Unsafe {
                    entry: name,
                    why: "only files, folders and symlinks are allowed",
                });
            }
        }
    }
    Ok(())
}
