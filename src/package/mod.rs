//! The code package: what `/init` sent, decoded and laid out in an action folder.
//!
//! The invoker sends either source text or base64 of a zip or tar.gz. Archives are untrusted:
//! every entry goes through [`sink::Sink`], which keeps it inside the folder and within the
//! size limits, whatever the archive claims about itself.

mod sink;
mod targz;
mod zip;

use std::fmt;
use std::path::Path;

use base64::Engine;

use crate::settings::Limits;

/// What the bytes of a package are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Source,
    Zip,
    TarGz,
}

impl Kind {
    /// Recognised by their first bytes, as the Go proxy does.
    pub fn detect(bytes: &[u8]) -> Kind {
        let zip_magic: [&[u8]; 3] = [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"];
        if zip_magic.iter().any(|m| bytes.starts_with(m)) {
            Kind::Zip
        } else if bytes.starts_with(b"\x1f\x8b\x08") {
            Kind::TarGz
        } else {
            Kind::Source
        }
    }
}

/// Why a package could not be laid out.
#[derive(Debug)]
pub enum PackageError {
    /// `binary` was true but `code` is not base64.
    Base64(String),
    /// The archive itself is broken.
    Corrupt {
        format: &'static str,
        detail: String,
    },
    /// An entry would land outside the action folder, or is of a kind we refuse.
    Unsafe { entry: String, why: &'static str },
    /// The archive unpacks to more than the limits allow.
    TooLarge(String),
    /// The disk said no.
    Io {
        entry: String,
        error: std::io::Error,
    },
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::Base64(e) => write!(f, "the code is not valid base64: {e}"),
            PackageError::Corrupt { format, detail } => {
                write!(f, "the {format} archive is corrupt: {detail}")
            }
            PackageError::Unsafe { entry, why } => {
                write!(f, "refused archive entry '{entry}': {why}")
            }
            PackageError::TooLarge(what) => write!(f, "the archive is too large: {what}"),
            PackageError::Io { entry, error } => {
                write!(f, "could not write archive entry '{entry}': {error}")
            }
        }
    }
}

impl std::error::Error for PackageError {}

/// Turns the `code` field into bytes: base64-decoded when `binary` is set.
///
/// Line breaks and spaces are dropped first (MIME-style base64 from some clients carries
/// them), and padding is optional.
pub fn decode(code: &str, binary: bool) -> Result<Vec<u8>, PackageError> {
    if !binary {
        return Ok(code.as_bytes().to_vec());
    }
    let compact: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(&compact)
        .map_err(|e| PackageError::Base64(e.to_string()))
}

/// What was laid out in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One source file, saved under the given name.
    File(String),
    /// An archive unpacked at the folder's root.
    Archive,
}

/// Lays out `bytes` in the (empty, existing) folder `dir`. A plain source file is saved as
/// `source_name`.
pub fn unpack(
    bytes: &[u8],
    dir: &Path,
    source_name: &str,
    limits: &Limits,
) -> Result<Layout, PackageError> {
    match Kind::detect(bytes) {
        Kind::Source => {
            let path = dir.join(source_name);
            std::fs::write(&path, bytes).map_err(|error| PackageError::Io {
                entry: source_name.to_string(),
                error,
            })?;
            Ok(Layout::File(source_name.to_string()))
        }
        Kind::Zip => {
            let mut sink = sink::Sink::new(dir, limits, "zip", bytes.len() as u64);
            zip::unpack(bytes, &mut sink)?;
            Ok(Layout::Archive)
        }
        Kind::TarGz => {
            let mut sink = sink::Sink::new(dir, limits, "tar.gz", bytes.len() as u64);
            targz::unpack(bytes, &mut sink, limits.unpacked_bytes)?;
            Ok(Layout::Archive)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_by_magic_bytes() {
        assert_eq!(Kind::detect(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(Kind::detect(b"PK\x05\x06"), Kind::Zip);
        assert_eq!(Kind::detect(b"\x1f\x8b\x08\x00"), Kind::TarGz);
        assert_eq!(Kind::detect(b"def main(args): pass"), Kind::Source);
        assert_eq!(Kind::detect(b""), Kind::Source);
    }

    #[test]
    fn base64_tolerates_line_breaks_and_missing_padding() {
        assert_eq!(decode("aGVs\nbG8=", true).unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8", true).unwrap(), b"hello");
        assert!(matches!(
            decode("not base64!", true),
            Err(PackageError::Base64(_))
        ));
        assert_eq!(decode("plain", false).unwrap(), b"plain");
    }
}
