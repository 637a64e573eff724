//! Gzip-compressed tar archives, streamed through the decompressor into the [`Sink`].

use tar::EntryType;

use super::PackageError;
use super::sink::Sink;

/// Room for tar's own headers and padding on top of the files' bytes.
const HEADROOM: u64 = 64 * 1024 * 1024;

pub fn unpack(bytes: &[u8], sink: &mut Sink, limit: u64) -> Result<(), PackageError> {
    // The sink counts file bytes; this also bounds what tar reads for itself (metadata
    // records, padding), so no stream inflates past the limit unseen.
    let stream = Bounded {
        inner: flate2::read::GzDecoder::new(bytes),
        left: limit.saturating_add(HEADROOM),
    };
    let mut archive = tar::Archive::new(stream);
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
    // tar stops at its end-of-archive records; the gzip trailer (CRC and size) comes after,
    // and only reading it proves the stream was not damaged.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(|e| sink.corrupt(e))?;
    Ok(())
}

struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the compressed stream inflates past the unpacked size limit",
            )
        })?;
        Ok(n)
    }
}
