//! The oracle the targets judge the crate by: what a JSON text is, read independently of the
//! proxy's own checks.

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
