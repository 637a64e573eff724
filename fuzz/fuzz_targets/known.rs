//! Findings already reported, which a long run may tolerate so that it goes on looking for
//! new ones: `ACTIONLOOP_FUZZ_KNOWN=utf8,init-array`. Unset (the default), every target checks
//! the whole contract.
//!
//! - `utf8`: bytes that are not UTF-8 inside a JSON string pass `classify` and `prepare_run`
//!   (and `parse_init` outside `value`): they skip what they do not keep, unchecked.
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

/// The input is JSON but for bytes that are not UTF-8 inside its strings, and that finding
/// is tolerated: replacing them makes it parse, as the same `shape`.
pub fn known_utf8(data: &[u8], shape: fn(&serde_json::Value) -> bool) -> bool {
    tolerated("utf8")
        && std::str::from_utf8(data).is_err()
        && serde_json::from_str::<serde_json::Value>(&String::from_utf8_lossy(data))
            .is_ok_and(|v| shape(&v))
}

/// The input is a JSON array, and that finding is tolerated.
pub fn known_init_array(data: &[u8]) -> bool {
    tolerated("init-array")
        && serde_json::from_str::<serde_json::Value>(&String::from_utf8_lossy(data))
            .is_ok_and(|v| v.is_array())
}
