//! The two request bodies of the protocol, checked once at the door.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::answer::is_json_space;
use crate::error::ProxyError;

/// The `value` of an `/init` body, every field optional.
#[derive(Debug, Default, PartialEq)]
pub struct Init {
    pub code: Option<Code>,
    pub binary: bool,
    pub main: String,
    /// Environment for the action, already turned into strings.
    pub env: Vec<(String, String)>,
}

/// Where the code is. A large package is the body's bulk, so it is not copied out of it: the
/// code string without JSON escapes is a range of the body (base64 never needs any), and only
/// one with escapes is unescaped into a string of its own.
#[derive(Debug, PartialEq)]
pub enum Code {
    InBody(std::ops::Range<usize>),
    Owned(String),
}

#[derive(Deserialize)]
struct InitBody<'a> {
    #[serde(default, borrow)]
    value: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize, Default)]
struct InitValue<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed")]
    code: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    binary: Option<bool>,
    #[serde(default)]
    main: Option<String>,
    #[serde(default)]
    env: Option<Map<String, Value>>,
}

/// A string borrowed from the body when it has no escapes. serde borrows a `Cow<str>` field
/// only when it is not inside an `Option`, hence the newtype.
fn borrowed<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::borrow::Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

fn bad(what: impl std::fmt::Display) -> ProxyError {
    ProxyError::invalid("/init", what)
}

/// The body as text, if it is UTF-8 holding a JSON object. serde skips the fields a struct
/// does not name without checking their bytes, and would read a struct from an array: both
/// are checked here, once, so that nothing malformed reaches a child.
fn object_text<'a>(body: &'a [u8], which: &str) -> Result<&'a str, ProxyError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ProxyError::invalid(which, format!("the body is not UTF-8 ({e})")))?;
    if text.bytes().find(|b| !is_json_space(*b)) != Some(b'{') {
        return Err(ProxyError::invalid(which, "the body must be a JSON object"));
    }
    Ok(text)
}

/// Parses an `/init` body. A missing or null `value` is an empty one (and fails later for
/// lack of code, as the protocol wants); a `value` of another type is refused.
pub fn parse_init(body: &[u8]) -> Result<Init, ProxyError> {
    let text = object_text(body, "/init")?;
    let parsed: InitBody = serde_json::from_str(text).map_err(|e| bad(format!("{e}")))?;
    let value: InitValue = match parsed.value.map(|raw| raw.get()) {
        None | Some("null") => InitValue::default(),
        Some(raw) if raw.starts_with('{') => {
            serde_json::from_str(raw).map_err(|e| bad(format!("in value: {e}")))?
        }
        Some(_) => return Err(bad("\"value\" must be a JSON object")),
    };
    let env = env_strings(value.env.unwrap_or_default())?;
    let code = value.code.filter(|c| !c.is_empty()).map(|code| match code {
        std::borrow::Cow::Borrowed(within) => {
            let start = within.as_ptr() as usize - body.as_ptr() as usize;
            Code::InBody(start..start + within.len())
        }
        std::borrow::Cow::Owned(own) => Code::Owned(own),
    });
    Ok(Init {
        code,
        binary: value.binary.unwrap_or(false),
        main: value
            .main
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "main".into()),
        env,
    })
}

/// Environment variables from a JSON object: strings as they are, anything else as compact JSON.
fn env_strings(map: Map<String, Value>) -> Result<Vec<(String, String)>, ProxyError> {
    let mut env = Vec::with_capacity(map.len());
    for (key, value) in map {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(bad(format!(
                "'{key}' cannot be an environment variable name"
            )));
        }
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if text.contains('\0') {
            return Err(bad(format!("the value of '{key}' holds a NUL byte")));
        }
        env.push((key, text));
    }
    Ok(env)
}

/// The `-env` flag's JSON object, as environment variables.
pub fn parse_env(json: &str) -> Result<Vec<(String, String)>, ProxyError> {
    let map: Map<String, Value> = serde_json::from_str(json).map_err(|e| bad(format!("{e}")))?;
    env_strings(map)
}

/// A `/run` body made ready for a child: one line, plus the time left before its deadline,
/// counted from when the request arrived.
pub struct Run {
    pub line: Bytes,
    pub deadline: Option<Duration>,
}

#[derive(Deserialize)]
struct RunEnvelope<'a> {
    #[serde(default, borrow)]
    deadline: Option<&'a serde_json::value::RawValue>,
}

/// Epoch milliseconds, as a number or a string of digits; anything else is no deadline.
fn millis(raw: &serde_json::value::RawValue) -> Option<u64> {
    let text = raw.get().trim_matches('"');
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|m| *m >= 0.0)
        .map(|m| m as u64)
}

/// Checks that the body is one JSON object (in a single pass that builds nothing but the
/// deadline) and folds it onto one line, in place: inside valid JSON a line break can only be
/// whitespace, so replacing it with a space changes nothing else.
pub fn parse_run(mut body: BytesMut) -> Result<Run, ProxyError> {
    let text = object_text(&body, "/run")?;
    let envelope: RunEnvelope =
        serde_json::from_str(text).map_err(|e| ProxyError::invalid("/run", e))?;
    let deadline = envelope.deadline.and_then(millis);
    let deadline = deadline.map(|at| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        Duration::from_millis(at.saturating_sub(now))
    });
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', &body[from..]) {
        body[from + i] = b' ';
        from += i + 1;
    }
    Ok(Run {
        line: body.freeze(),
        deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_fields_default_and_env_becomes_strings() {
        let body = br#"{"value":{"code":"x","env":{"A":"","B":1,"C":{"d":[1]},"D":null}}}"#;
        let init = parse_init(body).unwrap();
        let Some(Code::InBody(range)) = init.code else {
            panic!("{:?}", init.code)
        };
        assert_eq!(&body[range], b"x");
        let escaped = parse_init(br#"{"value":{"code":"a\nb"}}"#).unwrap();
        assert_eq!(escaped.code, Some(Code::Owned("a\nb".into())));
        assert_eq!(init.main, "main");
        assert!(!init.binary);
        let env: Vec<_> = init
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(env.contains(&("A", "")));
        assert!(env.contains(&("B", "1")));
        assert!(env.contains(&("C", r#"{"d":[1]}"#)));
        assert!(env.contains(&("D", "null")));
    }

    #[test]
    fn init_refuses_what_is_not_the_protocol() {
        assert_eq!(
            parse_init(b"{}").unwrap(),
            parse_init(br#"{"value":null}"#).unwrap()
        );
        for bad in [
            &b"nope"[..],
            br#"{"value":5}"#,
            br#"{"value":{"code":7}}"#,
            b"[1]",
            br#"[{"code":"x"}]"#,
            b"{\"other\":\"\xfe\"}",
        ] {
            assert!(matches!(parse_init(bad), Err(ProxyError::BadRequest(_))));
        }
    }

    #[test]
    fn run_bodies_become_one_line() {
        let run = parse_run(BytesMut::from(
            &b"{\"value\":\n {\"a\": \"b\"},\r\n \"deadline\": \"1\"}"[..],
        ))
        .unwrap();
        assert!(!run.line.contains(&b'\n'));
        assert_eq!(run.deadline, Some(Duration::ZERO));
        assert!(parse_run(BytesMut::from(&b"[1]"[..])).is_err());
        assert!(parse_run(BytesMut::from(&b"{\"value\":"[..])).is_err());
        assert!(parse_run(BytesMut::from(&b"{} {}"[..])).is_err());
        assert!(parse_run(BytesMut::from(&b"{\"value\":\"\xfe\"}"[..])).is_err());
        assert!(parse_run(BytesMut::from(&b"\x0c{}"[..])).is_err());
        let odd = parse_run(BytesMut::from(&b"{\"deadline\":true}"[..])).unwrap();
        assert_eq!(odd.deadline, None);
    }
}
