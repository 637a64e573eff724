//! The result-line check: `classify` must accept exactly the lines that are one JSON object
//! or array (returned as they came), except the launchers' own error marker.

#![no_main]

mod known;

use actionloop::action::classify;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn shaped(v: &Value) -> bool {
    v.is_object() || v.is_array()
}

fuzz_target!(|data: &[u8]| {
    let value = serde_json::from_slice::<Value>(data).ok();
    let is_shaped = value.as_ref().is_some_and(shaped);
    let marker = value
        .as_ref()
        .and_then(|v| v.get("__actionloop_error"))
        .is_some_and(Value::is_string)
        && data
            .trim_ascii_start()
            .starts_with(b"{\"__actionloop_error\":");
    match classify(data.to_vec()) {
        Ok(answer) => {
            assert!(
                is_shaped || known::known_utf8(data, shaped),
                "accepted a line that is not a JSON object or array: {:?}",
                String::from_utf8_lossy(data)
            );
            assert_eq!(answer, data, "the answer must pass unchanged");
        }
        Err(_) => assert!(
            !is_shaped || marker,
            "refused a JSON object or array: {:?}",
            String::from_utf8_lossy(data)
        ),
    }
});
