//! The result-line check: `check` must accept exactly the lines that are one JSON object
//! or array (returned as they came), except the launchers' own error marker. The trusted
//! variant, `check_from_launcher`, looks at the shape only (our launchers write valid JSON):
//! it must never panic, and on every valid JSON line it must decide as `check` does.

#![no_main]

mod oracle;

use actionloop::answer::{check, check_from_launcher};
use libfuzzer_sys::fuzz_target;
use oracle::Json;

const MARKER: &[u8] = b"{\"__actionloop_error\":";

fuzz_target!(|data: &[u8]| {
    let shape = oracle::json(data);
    let shaped = matches!(shape, Json::Object | Json::Array);
    // The launchers' marker, `{"__actionloop_error": "<why>", ...}`: refused with the reason.
    let marker = data
        .trim_ascii_start()
        .strip_prefix(MARKER)
        .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\""));
    // `.into()`: the line is a byte slice's copy, whether the API takes a Vec or Bytes.
    #[allow(clippy::useless_conversion)]
    let classified = check(data.to_vec().into());
    #[allow(clippy::useless_conversion)]
    let trusted = check_from_launcher(data.to_vec().into());
    if shape != Json::Not {
        assert_eq!(
            classified.is_ok(),
            trusted.is_ok(),
            "the trusted check decided otherwise on valid JSON: {:?}",
            String::from_utf8_lossy(data)
        );
    }
    if let Ok(answer) = &trusted {
        assert!(answer[..] == data[..], "the trusted answer must pass unchanged");
    }
    match classified {
        Ok(answer) => {
            assert!(
                shaped,
                "accepted a line that is not a JSON object or array ({shape:?}): {:?}",
                String::from_utf8_lossy(data)
            );
            assert!(answer[..] == data[..], "the answer must pass unchanged");
        }
        Err(_) => assert!(
            !shaped || marker,
            "refused a JSON object or array: {:?}",
            String::from_utf8_lossy(data)
        ),
    }
});
