//! The request bodies, as the invoker (or anyone who can reach the port) sends them:
//! `/init` through `parse_init` (and the base64 decoding of its code), `/run` through
//! `parse_run`. Neither may panic, and what they accept must keep its promises: a JSON
//! object, its environment usable, and the `/run` line the very same JSON on one line.

#![no_main]

mod oracle;

use actionloop::request::Code;
use libfuzzer_sys::fuzz_target;
use oracle::Json;

fuzz_target!(|data: &[u8]| {
    if let Ok(init) = actionloop::request::parse_init(data) {
        assert_eq!(
            oracle::json(data),
            Json::Object,
            "parse_init accepted a body that is not a JSON object"
        );
        assert!(!init.main.is_empty(), "main defaults to 'main'");
        match &init.code {
            Some(Code::InBody(range)) => assert!(!range.is_empty(), "empty code counts as none"),
            Some(Code::Owned(text)) => assert!(!text.is_empty(), "empty code counts as none"),
            None => {}
        }
        for (key, value) in &init.env {
            assert!(
                !key.is_empty() && !key.contains(['=', '\0']),
                "env key {key:?}"
            );
            assert!(!value.contains('\0'), "env value of {key:?} holds NUL");
        }
        if let Some(code) = init.code {
            let _ = actionloop::package::decode(data.into(), code, init.binary);
        }
    }

    // The body, as the HTTP server hands it over: a buffer of its own.
    let prepared = actionloop::request::parse_run(data.into());
    if let Ok(run) = prepared {
        // One line for the child, and still the very same JSON object.
        assert!(!run.line.contains(&b'\n') && !run.line.contains(&b'\r'));
        assert_eq!(
            oracle::json(data),
            Json::Object,
            "parse_run accepted a body that is not a JSON object"
        );
        // Folding changed nothing but whitespace: compare as values where serde_json can.
        assert_eq!(
            oracle::json(&run.line),
            Json::Object,
            "the folded line is not JSON"
        );
        if let (Ok(sent), Ok(folded)) = (
            serde_json::from_slice::<serde_json::Value>(data),
            serde_json::from_slice::<serde_json::Value>(&run.line),
        ) {
            assert_eq!(sent, folded, "folding onto one line changed the request");
        }
    }
});
