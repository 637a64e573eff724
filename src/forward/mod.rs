//! OpenServerless's forward mode, wire-compatible with the fork of the Go proxy in
//! apache/openserverless-runtimes (`openwhisk/forward_proxy.go` and its handlers, 1.18.4).
//!
//! A cheap container forwards its action to a proxy elsewhere, typically a GPU pod that holds
//! the actions of many such containers: `ops action create a x.py --main
//! main@http://ops-cuda-service:8080 --kind go:1.22proxy`.
//!
//! - [`client`] (`OW_ACTIVATE_PROXY_CLIENT`): `/init` and `/run` go on to the server named in
//!   `main`; the logs come back in the answer and are written to the client's own streams;
//!   on a stop signal the client tells the server it is gone (`/stop`).
//! - [`server`] (`OW_ACTIVATE_PROXY_SERVER`): one action per code hash, shared by the clients
//!   that send the same code, each run of it in turn, its logs captured per activation.
//!
//! The bodies the two ends exchange, beyond the ActionLoop ones:
//!
//! | request | body |
//! |---|---|
//! | `/init` | the invoker's, plus `proxiedActionID` (the client's UUID); `value.main` without the URL; `value.env.__OW_CODE_HASH` (md5 of the code, hex) |
//! | `/run` | the invoker's, plus `actionCodeHash`; answered `{"response": …, "out": "…", "err": "…"}` |
//! | `/stop` | `{"actionCodeHash": …, "proxiedActionID": …}`, answered `{"ok":true}` |

pub mod client;
mod ids;
pub mod server;
mod target;

use serde::{Deserialize, Serialize};

/// The init `env` variable that carries the code's hash to the server.
const CODE_HASH: &str = "__OW_CODE_HASH";
/// The top-level `/run` key that names the action at the server.
const RUN_HASH: &str = "actionCodeHash";

/// `/stop`, from a client that goes away.
#[derive(Serialize, Deserialize)]
struct Stop {
    #[serde(rename = "actionCodeHash", default)]
    hash: String,
    #[serde(rename = "proxiedActionID", default)]
    id: String,
}

/// The fork decodes `/run`'s `value` into a Go map: a value that is present, not `null` and no
/// object fails there, and is refused here with our words after the fork's prefix.
fn value_is_object(
    fields: &std::collections::BTreeMap<String, &serde_json::value::RawValue>,
) -> Result<(), String> {
    match fields.get("value").map(|v| v.get().trim_start().as_bytes()) {
        None | Some([b'{', ..]) | Some(b"null") => Ok(()),
        Some(_) => Err("the value is not a JSON object".into()),
    }
}

/// serde reads a struct from an array too; the fork's Go decoder does not. What is not an
/// object is refused with the words Go would use.
fn object(body: &[u8]) -> Result<(), String> {
    match body.iter().find(|b| !crate::answer::is_json_space(**b)) {
        Some(b'{') => Ok(()),
        _ => Err("the body is not a JSON object".into()),
    }
}
