//! Forward mode's client (`OW_ACTIVATE_PROXY_CLIENT`): runs no action, sends `/init` and
//! `/run` on to the server named in `main`, and writes the logs that come back to its own
//! streams, where its invoker reads them.
//!
//! As in the fork, `/init` may come again: each one forwarded with success makes a new
//! registration at the server. Unlike the fork, the one it replaces is stopped, so that the
//! server does not hold an action for a registration nobody will ever stop; and `/run` sends
//! the whole activation context (`activation_id`, `deadline`, `api_key`, ...), not `value`
//! alone, so that the action sees its `__OW_*` variables as it does in normal mode.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::{CODE_HASH, RUN_HASH, Stop, ids, target};
use crate::error::{ForwardError, ProxyError, StartupError};
use crate::http::Answer;
use crate::http::client::{Client as Http, Endpoint, Reply};
use crate::logs;
use crate::request;
use crate::settings::Settings;

/// How much longer than the activation's deadline the client waits for the server's answer:
/// a server that enforces deadlines answers just after it.
const DEADLINE_SLACK: Duration = Duration::from_secs(5);
/// How long the `/stop` of a stopping client may take.
const STOP_WITHIN: Duration = Duration::from_secs(2);

pub struct Client {
    settings: Settings,
    http: Arc<Http>,
    /// The registration at the server that the last successful `/init` made.
    target: Mutex<Option<Arc<Target>>>,
}

/// One registration at a server.
#[derive(Debug)]
struct Target {
    to: Endpoint,
    id: String,
    hash: String,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, StartupError> {
        // An answer holds an action's result and its logs, both bounded at the server.
        let limit = settings.limits.request_bytes + settings.limits.result_bytes;
        let http = Http::new(settings.forward.ca_file.as_deref(), limit)
            .map_err(|e| StartupError::Setting(format!("OW_FORWARD_CA_FILE: {e}")))?;
        Ok(Client {
            settings,
            http: Arc::new(http),
            target: Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn target(&self) -> Option<Arc<Target>> {
        self.target.lock().ok().and_then(|t| t.clone())
    }

    /// `/init`: forwarded, its answer passed back as the server gave it. A failure of 502
    /// (the action did not build or start, or the server was not reached) ends with a
    /// sentinel on each stream, as in normal mode, so that the invoker's log reader does not
    /// wait for it.
    pub async fn init(&self, body: BytesMut) -> Result<Answer, ProxyError> {
        let id = ids::fresh_id();
        let (to, hash, forwarded) = forwarded_init(&body, &id)?;
        drop(body);
        // The client's own log lines wait until a failure's logs are framed.
        let _attempt = logs::Activation::begin();
        tracing::debug!("forwarding /init to {to} as {id}, code hash {hash}");
        let reply = match self.http.post(&to, "/init", &forwarded, None).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!("Error forwarding init request to {to}: {e}");
                logs::end_forwarded("", "").await;
                return Err(ForwardError::InitNotForwarded.into());
            }
        };
        if reply.status == 200 {
            let new = Arc::new(Target { to, id, hash });
            let old = self.target.lock().ok().and_then(|mut t| t.replace(new));
            if let Some(old) = old {
                let http = Arc::clone(&self.http);
                tokio::spawn(async move { stop(&http, &old).await });
            }
        } else if reply.status == 502 {
            logs::end_forwarded("", "").await;
        }
        Ok(passed_on(reply))
    }

    /// `/run`: forwarded with the action's hash; the logs in a 200 answer are written to this
    /// proxy's streams, then the result alone is answered. Every activation that reaches the
    /// server, or fails to, ends with a sentinel on each stream.
    pub async fn run(&self, body: BytesMut) -> Result<Answer, ProxyError> {
        let target = self.target().ok_or(ForwardError::NoInit)?;
        let run = request::parse_run(body).map_err(|e| ForwardError::RunBody(e.message()))?;
        let forwarded = forwarded_run(&run.line, &target.hash)?;
        drop(run.line);
        let until = run
            .deadline
            .map(|left| Instant::now() + left + DEADLINE_SLACK);
        // The client's own log lines wait until the activation's logs are framed.
        let _activation = logs::Activation::begin();
        let reply = self.http.post(&target.to, "/run", &forwarded, until).await;
        let failed = |e: &dyn std::fmt::Display| {
            tracing::warn!("Error forwarding run request to {}: {e}", target.to);
            ForwardError::RunNotForwarded
        };
        match reply {
            Err(e) => {
                logs::end_forwarded("", "").await;
                Err(failed(&e).into())
            }
            Ok(reply) if reply.status == 200 => match remote_run(&reply.body) {
                Ok((response, out, err)) => {
                    logs::end_forwarded(&out, &err).await;
                    Ok(Answer::ok(reply.body.slice_ref(response)))
                }
                Err(e) => {
                    logs::end_forwarded("", "").await;
                    Err(failed(&format!("the answer is not the server's: {e}")).into())
                }
            },
            Ok(reply) => {
                logs::end_forwarded("", "").await;
                Ok(passed_on(reply))
            }
        }
    }

    /// The proxy stops: the server is told that this client is gone, so that it can stop the
    /// action once its last client has left.
    pub async fn stopping(&self) {
        let target = self.target.lock().ok().and_then(|mut t| t.take());
        if let Some(target) = target {
            stop(&self.http, &target).await;
        }
    }
}

/// Tells the server that `target` is gone; the answer is only logged.
async fn stop(http: &Http, target: &Target) {
    let body = Stop {
        hash: target.hash.clone(),
        id: target.id.clone(),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let until = Instant::now() + STOP_WITHIN;
    match http.post(&target.to, "/stop", &body, Some(until)).await {
        Ok(reply) => tracing::debug!(
            "stop request to {}: {} {}",
            target.to,
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ),
        Err(e) => tracing::warn!("Failed to send stop request to {}: {e}", target.to),
    }
}

/// A server's answer as this proxy answers it: status, body and type as they came.
fn passed_on(reply: Reply) -> Answer {
    let headers = reply
        .content_type
        .map(|t| vec![("Content-Type".to_string(), t)])
        .unwrap_or_default();
    Answer {
        status: reply.status,
        headers,
        body: reply.body,
    }
}

/// The `/init` body as the fork reads it: `value`, with its fields as they came.
#[derive(Deserialize)]
struct InitBody<'a> {
    #[serde(borrow, default)]
    value: Option<BTreeMap<String, &'a RawValue>>,
}

#[derive(Serialize)]
struct ForwardedInit<'a> {
    #[serde(rename = "proxiedActionID")]
    id: &'a str,
    value: BTreeMap<&'a str, &'a RawValue>,
}

/// The server, the code's hash, and the body to send it: `proxiedActionID` added, `main`
/// without its URL (left out when empty, as the fork does, so the server's default holds),
/// the hash added to `env`. The other fields of `value` go on as they came.
fn forwarded_init(body: &[u8], id: &str) -> Result<(Endpoint, String, Vec<u8>), ForwardError> {
    let bad = |e: serde_json::Error| ForwardError::InitBody(e.to_string());
    super::object(body).map_err(ForwardError::InitBody)?;
    let parsed: InitBody = serde_json::from_slice(body).map_err(bad)?;
    let value = parsed.value.unwrap_or_default();
    let field = |name: &str| value.get(name).map(|raw| raw.get());
    let main: Option<String> = field("main")
        .map(serde_json::from_str)
        .transpose()
        .map_err(bad)?;
    let code: Option<std::borrow::Cow<str>> = match field("code") {
        Some(raw) => serde_json::from_str(raw).map_err(bad)?,
        None => None,
    };
    let mut env: serde_json::Map<String, serde_json::Value> = match field("env") {
        Some(raw) => serde_json::from_str::<Option<_>>(raw)
            .map_err(bad)?
            .unwrap_or_default(),
        None => Default::default(),
    };
    let (function, to) = target::parse(main.as_deref().unwrap_or_default())?;
    let hash = ids::code_hash(code.as_deref().unwrap_or_default().as_bytes());
    env.insert(CODE_HASH.into(), hash.clone().into());
    let function = serde_json::value::to_raw_value(&function).map_err(bad)?;
    let env = serde_json::value::to_raw_value(&env).map_err(bad)?;
    let mut fields: BTreeMap<&str, &RawValue> = value
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "main" | "env"))
        .map(|(name, raw)| (name.as_str(), *raw))
        .collect();
    if function.get() != "\"\"" {
        fields.insert("main", &function);
    }
    fields.insert("env", &env);
    let forwarded = serde_json::to_vec(&ForwardedInit { id, value: fields }).map_err(bad)?;
    Ok((to, hash, forwarded))
}

/// The `/run` body with the action's hash added: every key of the invoker's, the activation
/// context with `value`, goes on.
fn forwarded_run(line: &[u8], hash: &str) -> Result<Vec<u8>, ForwardError> {
    let bad = |e: serde_json::Error| ForwardError::RunBody(e.to_string());
    let mut fields: BTreeMap<String, &RawValue> = serde_json::from_slice(line).map_err(bad)?;
    super::value_is_object(&fields).map_err(ForwardError::RunBody)?;
    let hash = serde_json::value::to_raw_value(hash).map_err(bad)?;
    fields.insert(RUN_HASH.into(), &hash);
    serde_json::to_vec(&fields).map_err(bad)
}

/// The server's `/run` answer: where the result is in it, and the logs.
fn remote_run(body: &Bytes) -> Result<(&[u8], String, String), serde_json::Error> {
    #[derive(Deserialize)]
    struct RemoteRun<'a> {
        #[serde(borrow)]
        response: &'a RawValue,
        #[serde(default)]
        out: String,
        #[serde(default)]
        err: String,
    }
    let remote: RemoteRun = serde_json::from_slice(body)?;
    Ok((remote.response.get().as_bytes(), remote.out, remote.err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn init_goes_on_with_the_id_the_hash_and_main_alone() {
        let body = json!({"value": {
            "code": "def main(a):\n  return a",
            "binary": false,
            "main": "handler@http://gpu:8080",
            "env": {"A": "1"},
            "extra": [1]
        }, "other": true});
        let (to, hash, sent) = forwarded_init(body.to_string().as_bytes(), "the-id").unwrap();
        assert_eq!((to.tls, to.host.as_str(), to.port), (false, "gpu", 8080));
        assert_eq!(hash, ids::code_hash(b"def main(a):\n  return a"));
        let sent: Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(
            sent,
            json!({"proxiedActionID": "the-id", "value": {
                "code": "def main(a):\n  return a",
                "binary": false,
                "main": "handler",
                "env": {"A": "1", "__OW_CODE_HASH": hash},
                "extra": [1]
            }})
        );
        // `@url`: no main at all, the server's default.
        let (_, _, sent) = forwarded_init(br#"{"value":{"code":"x","main":"@gpu"}}"#, "i").unwrap();
        let sent: Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(sent["value"].get("main"), None);
        assert_eq!(sent["value"]["env"][CODE_HASH], ids::code_hash(b"x"));
    }

    #[test]
    fn init_bodies_the_fork_cannot_read_are_refused() {
        for bad in [
            &b"nope"[..],
            br#"{"value":{"main":7}}"#,
            br#"{"value":{"env":[1],"main":"@h"}}"#,
            br#"{"value":[]}"#,
            b"[]",
        ] {
            let e = forwarded_init(bad, "i").unwrap_err();
            assert!(matches!(e, ForwardError::InitBody(_)), "{e}");
        }
        let e = forwarded_init(br#"{"value":{"main":"a@b@c"}}"#, "i").unwrap_err();
        assert!(matches!(e, ForwardError::BadMain));
    }

    #[test]
    fn run_goes_on_whole_with_the_hash() {
        let line =
            br#"{"value":{"x":1},"activation_id":"a1","deadline":"123","actionCodeHash":"forged"}"#;
        let sent: Value = serde_json::from_slice(&forwarded_run(line, "h").unwrap()).unwrap();
        assert_eq!(
            sent,
            json!({"value": {"x": 1}, "activation_id": "a1", "deadline": "123", "actionCodeHash": "h"})
        );
    }

    #[test]
    fn the_servers_run_answer_gives_the_result_as_it_came() {
        let body = Bytes::from_static(br#"{"response": {"b": [1, 2]}, "out": "o\n", "err": ""}"#);
        let (response, out, err) = remote_run(&body).unwrap();
        assert_eq!(response, br#"{"b": [1, 2]}"#);
        assert_eq!((out.as_str(), err.as_str()), ("o\n", ""));
        assert!(remote_run(&Bytes::from_static(b"{\"out\":\"\"}")).is_err());
    }
}
