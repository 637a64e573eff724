//! Findings already reported, which a long run may tolerate so that it goes on looking for
//! new ones: `ACTIONLOOP_FUZZ_KNOWN=utf8,formfeed,init-array`. Unset (the default), every
//! target checks the whole contract.
//!
//! - `utf8`: bytes that are not UTF-8 inside a JSON string pass `check` and `parse_run`
//!   (and `parse_init` outside `value`): they skip what they do not keep, unchecked.
//! - `formfeed`: `check` skips leading form feeds (and vertical tabs: ASCII whitespace,
//!   not JSON whitespace) before it checks, then passes the line on with them.
//! - `init-array`: `parse_init` takes a JSON array as the body (`[{"code": ..}]` is read as
//!   `{"value": {"code": ..}}`), as serde reads a struct from a sequence.

// Each target uses what it needs.
#![allow(dead_code)]

use std::sync::OnceLock;

fn tolerated(class: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("ACTIONLOOP_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .collect()
        })
        .iter()
        .any(|k| k == class)
}

/// What a JSON text (RFC 8259) is, as the oracle of the targets: serde_json's syntax check
/// and UTF-8 throughout, with no limit on numbers (`1e999` is JSON, though no `f64`).
/// The shape is that of the outermost value: `{` or `[`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    Not,
    Object,
    Array,
    Scalar,
}

pub fn json(data: &[u8]) -> Json {
    if serde_json::from_slice::<&serde_json::value::RawValue>(data).is_err() {
        return Json::Not;
    }
    match data.trim_ascii_start().first() {
        Some(b'{') => Json::Object,
        Some(b'[') => Json::Array,
        _ => Json::Scalar,
    }
}

/// The input would be JSON of one of `shapes` but for bytes that are not UTF-8 inside its
/// strings, and that finding is tolerated.
pub fn known_utf8(data: &[u8], shapes: &[Json]) -> bool {
    tolerated("utf8")
        && std::str::from_utf8(data).is_err()
        && shapes.contains(&json(String::from_utf8_lossy(data).as_bytes()))
}

/// The input is JSON of one of `shapes` once leading ASCII whitespace (form feed included)
/// is cut, it has a form feed or vertical tab there, and that finding is tolerated.
pub fn known_formfeed(data: &[u8], shapes: &[Json]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    tolerated("formfeed")
        && data[..start].iter().any(|b| matches!(b, b'\x0b' | b'\x0c'))
        && shapes.contains(&json(String::from_utf8_lossy(&data[start..]).as_bytes()))
}

/// The input is a JSON array, and that finding is tolerated.
pub fn known_init_array(data: &[u8]) -> bool {
    tolerated("init-array") && json(String::from_utf8_lossy(data).as_bytes()) == Json::Array
}
