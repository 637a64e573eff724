//! What an action may answer: one JSON object or array on a line, passed on as it is.
//!
//! The check is the only place the proxy looks into an answer. It does not re-encode it, so
//! an answer reaches the client byte for byte as the action wrote it.

use bytes::Bytes;
use serde::Deserialize;

use crate::error::ProxyError;

/// JSON's own whitespace (RFC 8259), narrower than Rust's ASCII whitespace: a form feed or a
/// vertical tab before a JSON text makes it no JSON text.
pub fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The marker our launchers use for a result they could not serialise.
const LAUNCHER_ERROR: &[u8] = b"{\"__actionloop_error\":";

/// Accepts a JSON object or array (UTF-8, as JSON must be) as it is; anything else is the
/// action's fault.
pub fn check(answer: Bytes) -> Result<Bytes, ProxyError> {
    let Ok(text) = std::str::from_utf8(&answer) else {
        return Err(ProxyError::NotADictionary);
    };
    let body = shape(text.as_bytes())?;
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        Ok(answer)
    } else {
        Err(ProxyError::NotADictionary)
    }
}

/// The same for an answer written by one of our own launchers on a channel no user code can
/// reach: the launcher's JSON encoder made it, so it is JSON and UTF-8 already (`json.dumps`
/// with `allow_nan=False`, `JSON.stringify`), and only its shape is looked at. A full parse
/// of a 1 MiB answer costs more than any other part of relaying it.
pub fn check_from_launcher(answer: Bytes) -> Result<Bytes, ProxyError> {
    shape(&answer)?;
    Ok(answer)
}

/// The answer from its first byte that is not JSON whitespace, if it starts an object or an
/// array; the launchers' error marker is refused with its reason.
fn shape(answer: &[u8]) -> Result<&[u8], ProxyError> {
    let start = answer
        .iter()
        .position(|b| !is_json_space(*b))
        .unwrap_or(answer.len());
    let body = &answer[start..];
    if body.starts_with(LAUNCHER_ERROR) {
        #[derive(Deserialize)]
        struct Marker {
            __actionloop_error: String,
        }
        if let Ok(marker) = serde_json::from_slice::<Marker>(body) {
            return Err(ProxyError::BadAnswer(marker.__actionloop_error));
        }
    }
    match body.first() {
        Some(b'{') | Some(b'[') => Ok(body),
        _ => Err(ProxyError::NotADictionary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launchers_answer_is_checked_for_its_shape_and_marker() {
        assert!(check_from_launcher(Bytes::from_static(b"{\"a\":1}")).is_ok());
        assert!(check_from_launcher(Bytes::from_static(b"\n[1]")).is_ok());
        for bad in [&b"\"text\""[..], b"42", b"null", b"", b"\x0c{}"] {
            assert!(matches!(
                check_from_launcher(Bytes::copy_from_slice(bad)),
                Err(ProxyError::NotADictionary)
            ));
        }
        let marked = check_from_launcher(Bytes::from_static(b"{\"__actionloop_error\":\"why\"}"));
        assert!(matches!(marked, Err(ProxyError::BadAnswer(m)) if m == "why"));
    }

    #[test]
    fn only_objects_and_arrays_pass() {
        assert!(check(Bytes::from_static(b"{\"a\":1}")).is_ok());
        assert!(check(Bytes::from_static(b" [1,2]")).is_ok());
        for bad in [
            &b"\"text\""[..],
            b"42",
            b"null",
            b"{oops",
            b"{} trailing",
            b"",
            b"\x0c{}",
            b"{\"a\":\"\xfe\"}",
        ] {
            assert!(
                matches!(
                    check(Bytes::copy_from_slice(bad)),
                    Err(ProxyError::NotADictionary)
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let marked = check(Bytes::from_static(
            b"{\"__actionloop_error\":\"cannot serialise\"}",
        ));
        assert!(matches!(marked, Err(ProxyError::BadAnswer(m)) if m == "cannot serialise"));
    }
}
