//! The code package: what `/init` sent, decoded and laid out in an action folder.
//!
//! The invoker sends either source text or base64 of a zip or tar.gz. Archives are untrusted:
//! every entry goes through [`sink::Sink`], which keeps it inside the folder and within the
//! size limits, whatever the archive claims about itself.

mod sink;
mod targz;
mod zip;

use std::path::Path;

use base64::Engine;

use crate::settings::Limits;

/// What the bytes of a package are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A single file of source text (or an executable).
    Plain,
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
            Kind::Plain
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

/// Turns the `code` field into bytes: base64-decoded when `binary` is set. Code that lies in
/// the request body is decoded where it lies (base64 is longer than what it encodes, so the
/// output never overtakes the input): a 48 MiB package costs the body's memory and no more.
///
/// Line breaks and spaces are dropped (MIME-style base64 from some clients carries them), and
/// padding is optional.
pub fn decode(
    mut body: bytes::BytesMut,
    code: crate::request::Code,
    binary: bool,
) -> Result<bytes::BytesMut, PackageError> {
    use bytes::Buf;
    match code {
        crate::request::Code::InBody(range) => {
            body.truncate(range.end);
            body.advance(range.start);
            if binary {
                let n = base64_in_place(&mut body)?;
                body.truncate(n);
            }
            Ok(body)
        }
        crate::request::Code::Owned(text) if binary => {
            let mut bytes = bytes::BytesMut::from(text.as_bytes());
            drop(text);
            let n = base64_in_place(&mut bytes)?;
            bytes.truncate(n);
            Ok(bytes)
        }
        crate::request::Code::Owned(text) => Ok(bytes::BytesMut::from(text.as_bytes())),
    }
}

/// Decodes the base64 text in `buf` into its own start; the decoded length.
fn base64_in_place(buf: &mut [u8]) -> Result<usize, PackageError> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    // Whole quanta of text, whitespace left out, go through a small buffer to their place.
    const CHUNK: usize = 16 * 1024;
    let (mut text, mut decoded) = ([0u8; CHUNK], [0u8; CHUNK / 4 * 3]);
    let (mut read, mut written) = (0, 0);
    loop {
        let mut n = 0;
        while n < CHUNK && read < buf.len() {
            let b = buf[read];
            read += 1;
            if !b.is_ascii_whitespace() {
                text[n] = b;
                n += 1;
            }
        }
        if n == 0 {
            return Ok(written);
        }
        let out = engine
            .decode_slice(&text[..n], &mut decoded)
            .map_err(|e| PackageError::Base64(offset_error(e, written / 3 * 4)))?;
        // `written + out` stays behind `read`: every 4 bytes read give at most 3.
        buf[written..written + out].copy_from_slice(&decoded[..out]);
        written += out;
        if n < CHUNK {
            return Ok(written);
        }
    }
}

/// A decoding error, with its offset counted from the start of the whole text.
fn offset_error(e: base64::DecodeSliceError, before: usize) -> String {
    match e {
        base64::DecodeSliceError::DecodeError(base64::DecodeError::InvalidByte(at, byte)) => {
            format!("invalid byte {byte:#04x} at offset {}", before + at)
        }
        other => other.to_string(),
    }
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
        Kind::Plain => {
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
        assert_eq!(Kind::detect(b"def main(args): pass"), Kind::Plain);
        assert_eq!(Kind::detect(b""), Kind::Plain);
    }

    fn decoded(text: &str, binary: bool) -> Result<Vec<u8>, PackageError> {
        let body = bytes::BytesMut::from(format!("[{text}]").as_bytes());
        let code = crate::request::Code::InBody(1..1 + text.len());
        decode(body, code, binary).map(|b| b.to_vec())
    }

    #[test]
    fn base64_tolerates_line_breaks_and_missing_padding() {
        assert_eq!(decoded("aGVs\nbG8=", true).unwrap(), b"hello");
        assert_eq!(decoded("aGVsbG8", true).unwrap(), b"hello");
        assert!(matches!(
            decoded("not base64!", true),
            Err(PackageError::Base64(_))
        ));
        assert_eq!(decoded("plain", false).unwrap(), b"plain");
        let owned = crate::request::Code::Owned("aGVs bG8=".into());
        let body = bytes::BytesMut::new();
        assert_eq!(&decode(body, owned, true).unwrap()[..], b"hello");
    }

    #[test]
    fn base64_in_place_matches_the_crate_across_chunks() {
        use base64::Engine;
        for size in [0, 1, 2, 3, 12287, 12288, 12289, 100_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 13) as u8).collect();
            let mut text = base64::engine::general_purpose::STANDARD.encode(&data);
            // Line breaks every 76 characters, as MIME writes them.
            let mut wrapped = String::new();
            while text.len() > 76 {
                let rest = text.split_off(76);
                wrapped.push_str(&text);
                wrapped.push_str("\r\n");
                text = rest;
            }
            wrapped.push_str(&text);
            assert_eq!(decoded(&wrapped, true).unwrap(), data, "size {size}");
        }
    }
}
