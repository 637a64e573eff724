//! Forward mode's server (`OW_ACTIVATE_PROXY_SERVER`): holds the actions of many clients, one
//! per code hash, each a [`Service`] of its own (its folder, its launcher, its children, every
//! limit of a normal `/init`), shared by the clients that send the same code.
//!
//! An action's runs take turns, as the fork queues them, and its children's output is
//! captured, so that each activation's logs go back to its client in the answer rather than
//! into the server's own logs (where they go too with `-debug`). A client's `/stop` removes
//! its registration; the last one stops the action and removes its folder: at once, or after
//! `OW_DELETE_DURATION` while a setup is marked in progress (`/tmp/<hash>` without
//! `/tmp/<hash>_done`), unless a client registered again meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::{CODE_HASH, RUN_HASH, Stop, ids};
use crate::error::{ForwardError, ProxyError, StartupError};
use crate::logs::{self, Capture, Destination};
use crate::service::Service;
use crate::settings::Settings;

/// Where a setup in progress is marked, as the fork looks for it.
const SETUP_MARKS: &str = "/tmp";

pub struct Server {
    settings: Settings,
    /// What each held action is made with: one child (its runs take turns anyway), not warmed
    /// before its `/init`.
    held: Arc<Settings>,
    state: Arc<Mutex<State>>,
    next_root: AtomicU64,
}

#[derive(Default)]
struct State {
    actions: HashMap<String, Slot>,
    /// Whether any `/init` came: the fork answers `/stop` before the first otherwise.
    initialised: bool,
}

enum Slot {
    /// The first client's `/init` is under way; the others wait for it (their sender is
    /// dropped when it ends).
    Starting(watch::Receiver<()>),
    Ready {
        action: Arc<Held>,
        /// The registrations, in order, one per successful `/init` (the fork's list).
        clients: Vec<String>,
    },
}

/// One held action. Its fields drop in order: the service (killing its children) before
/// its folder is removed.
struct Held {
    service: Arc<Service>,
    capture: Arc<Capture>,
    /// One run at a time: the capture holds one activation's logs.
    turn: tokio::sync::Mutex<()>,
    /// Set once the action is no longer held: a run under way, or waiting for its turn, ends
    /// at once, so that the action (on a GPU, say) does not go on for a client that left.
    stopped: watch::Sender<bool>,
    _folder: Folder,
}

impl Held {
    /// The action is no longer held: it ends with the last run that still refers to it,
    /// which ends now.
    fn stop(&self) {
        self.stopped.send_replace(true);
    }
}

/// Stops the actions taken out of the state, once its lock is released.
fn stop_all(removed: impl IntoIterator<Item = Slot>) {
    for slot in removed {
        if let Slot::Ready { action, .. } = slot {
            action.stop();
        }
    }
}

/// An action's folder, removed with the action.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let folder = std::mem::take(&mut self.0);
        let remove = move || {
            if let Err(e) = std::fs::remove_dir_all(&folder) {
                tracing::warn!("cannot remove {}: {e}", folder.display());
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

impl Server {
    pub fn new(settings: Settings) -> Result<Server, StartupError> {
        let mut held = settings.clone();
        held.concurrency = 1;
        held.prewarm = false;
        Ok(Server {
            settings,
            held: Arc::new(held),
            state: Arc::default(),
            next_root: AtomicU64::new(1),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `/init` from a client: registers it with the action of its hash, starting the action
    /// if nobody holds it yet.
    pub async fn init(&self, body: BytesMut) -> Result<(), ProxyError> {
        let (id, hash) = registration(&body)?;
        let started = loop {
            let mut waiting = {
                let mut state = self.state();
                state.initialised = true;
                let full = state.actions.len() >= self.settings.forward.max_actions;
                match state.actions.get_mut(&hash) {
                    Some(Slot::Ready { clients, .. }) => {
                        tracing::debug!("action {hash}: client {id} joins");
                        clients.push(id);
                        return Ok(());
                    }
                    Some(Slot::Starting(waiting)) => waiting.clone(),
                    None if full => {
                        return Err(ForwardError::Full(self.settings.forward.max_actions).into());
                    }
                    None => {
                        let (started, waiting) = watch::channel(());
                        state.actions.insert(hash.clone(), Slot::Starting(waiting));
                        break started;
                    }
                }
            };
            // The other client's `/init` ends either way: then this one looks again.
            let _ = waiting.changed().await;
        };
        let mut starting = Starting {
            state: &self.state,
            hash: &hash,
            done: false,
            _started: started,
        };
        let action = self.start(&hash, body).await?;
        tracing::debug!("action {hash}: started for client {id}");
        let mut state = self.state();
        let clients = vec![id];
        state
            .actions
            .insert(hash.clone(), Slot::Ready { action, clients });
        starting.done = true;
        drop(state);
        Ok(())
    }

    /// A new action in a folder of its own, initialised as `/init` would in normal mode.
    async fn start(&self, hash: &str, body: BytesMut) -> Result<Arc<Held>, ProxyError> {
        let root = self.new_root()?;
        let folder = Folder(root.clone());
        let capture = Capture::new();
        let logs = Destination::Capture(Arc::clone(&capture));
        let service = Service::in_root(Arc::clone(&self.held), root.clone(), logs)
            .map_err(|e| ProxyError::storage(&root, e))?;
        tracing::debug!("action {hash}: in {}", root.display());
        let service = Arc::new(service);
        if let Err(e) = service.init(body).await {
            // A failed start's logs belong to no activation a client will see. Those of a
            // start that went well stay for the first activation's, as in normal mode.
            self.debug_copy(&capture);
            return Err(e);
        }
        Ok(Arc::new(Held {
            service,
            capture,
            turn: tokio::sync::Mutex::new(()),
            stopped: watch::Sender::new(false),
            _folder: folder,
        }))
    }

    /// A fresh `action/<n>` folder for a new action's files.
    fn new_root(&self) -> Result<PathBuf, ProxyError> {
        let parent = self.settings.action_root();
        loop {
            let n = self.next_root.fetch_add(1, Ordering::Relaxed);
            let root = parent.join(n.to_string());
            match std::fs::create_dir_all(&parent).and_then(|_| std::fs::create_dir(&root)) {
                Ok(()) => return Ok(root),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ProxyError::storage(&root, e)),
            }
        }
    }

    /// With `-debug`, what an action wrote goes to the server's own streams too; and the
    /// capture is emptied either way.
    fn debug_copy(&self, capture: &Capture) -> (Vec<u8>, Vec<u8>) {
        let (out, err) = (capture.stdout.take(), capture.stderr.take());
        if self.settings.debug {
            logs::output::stdout().push(&out);
            logs::output::stderr().push(&err);
        }
        (out, err)
    }

    /// `/run` from a client: its action's turn, then the result with the activation's logs.
    pub async fn run(&self, body: BytesMut) -> Result<Bytes, ProxyError> {
        let (hash, line) = run_for(&body)?;
        drop(body);
        let action = match self.state().actions.get(&hash) {
            Some(Slot::Ready { action, .. }) => Arc::clone(action),
            _ => {
                tracing::debug!("action {hash}: not held");
                return Err(ForwardError::NotFound.into());
            }
        };
        let mut stopped = action.stopped.subscribe();
        let run = async {
            let _turn = action.turn.lock().await;
            let answer = action.service.run(line).await.map_err(|e| match e {
                ProxyError::NotADictionary => ForwardError::NotADictionary.into(),
                e => e,
            });
            let (out, err) = self.debug_copy(&action.capture);
            Ok(run_answer(&answer?, &out, &err))
        };
        tokio::select! {
            answer = run => answer,
            _ = stopped.wait_for(|stopped| *stopped) => {
                tracing::debug!("action {hash}: stopped during a run");
                Err(ProxyError::internal("the action was stopped: its last client left"))
            }
        }
    }

    /// `/stop` from a client that went away.
    pub fn stop(&self, body: &[u8]) -> Result<(), ProxyError> {
        super::object(body).map_err(ForwardError::RunDecode)?;
        let stop: Stop =
            serde_json::from_slice(body).map_err(|e| ForwardError::RunDecode(e.to_string()))?;
        let mut state = self.state();
        if !state.initialised {
            return Err(ForwardError::NoServerData.into());
        }
        let Some(Slot::Ready { action, clients }) = state.actions.get_mut(&stop.hash) else {
            return Err(ForwardError::StopNotFound.into());
        };
        let Some(at) = clients.iter().position(|c| *c == stop.id) else {
            return Err(ForwardError::StopNotFound.into());
        };
        clients.remove(at);
        tracing::debug!("action {}: client {} left", stop.hash, stop.id);
        if !clients.is_empty() {
            return Ok(());
        }
        if setup_in_progress(Path::new(SETUP_MARKS), &stop.hash) {
            let after = self.settings.forward.delete_after;
            tracing::debug!("action {}: setup in progress, kept {after:?}", stop.hash);
            let (state, action) = (Arc::clone(&self.state), Arc::downgrade(action));
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let removed = {
                    let mut state = lock(&state);
                    let idle = match state.actions.get(&stop.hash) {
                        Some(Slot::Ready {
                            action: held,
                            clients,
                        }) => {
                            clients.is_empty() && std::ptr::eq(Arc::as_ptr(held), action.as_ptr())
                        }
                        _ => false,
                    };
                    if idle {
                        state.actions.remove(&stop.hash)
                    } else {
                        None
                    }
                };
                if removed.is_some() {
                    tracing::debug!("action {}: stopped after its setup's wait", stop.hash);
                }
                stop_all(removed);
            });
            return Ok(());
        }
        let removed = state.actions.remove(&stop.hash);
        drop(state);
        // Dropped here, or as the run under way ends: its children killed, its folder gone.
        stop_all(removed);
        tracing::debug!("action {}: stopped", stop.hash);
        Ok(())
    }

    /// `/reset` (`-debug` only): every action stopped, every registration forgotten.
    pub fn reset(&self) {
        let actions = std::mem::take(&mut self.state().actions);
        stop_all(actions.into_values());
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A hash's start under way: if it ends without an action (failed, or the request dropped),
/// the slot goes, and those waiting for it try themselves.
struct Starting<'a> {
    state: &'a Mutex<State>,
    hash: &'a str,
    done: bool,
    /// Dropped after the slot is settled, which wakes those waiting.
    _started: watch::Sender<()>,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = lock(self.state);
            if let Some(Slot::Starting(_)) = state.actions.get(self.hash) {
                state.actions.remove(self.hash);
            }
        }
    }
}

/// The fork's test for a setup in progress: `<marks>/<hash>` exists, `<marks>/<hash>_done`
/// does not.
fn setup_in_progress(marks: &Path, hash: &str) -> bool {
    marks.join(hash).exists() && !marks.join(format!("{hash}_done")).exists()
}

/// The client's id and the action's hash, from a forwarded `/init` body.
fn registration(body: &[u8]) -> Result<(String, String), ForwardError> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "proxiedActionID", default)]
        id: Option<String>,
        #[serde(default)]
        value: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Value {
        #[serde(default)]
        env: Option<serde_json::Map<String, serde_json::Value>>,
    }
    super::object(body).map_err(ForwardError::Unmarshal)?;
    let body: Body =
        serde_json::from_slice(body).map_err(|e| ForwardError::Unmarshal(e.to_string()))?;
    let hash = body
        .value
        .and_then(|v| v.env)
        .and_then(|mut env| match env.remove(CODE_HASH) {
            Some(serde_json::Value::String(hash)) if !hash.is_empty() => Some(hash),
            _ => None,
        })
        .ok_or(ForwardError::MissingHash)?;
    let id = body
        .id
        .filter(|id| !id.is_empty())
        .ok_or(ForwardError::MissingId)?;
    if !ids::is_plain_name(&hash) {
        return Err(ForwardError::BadHash);
    }
    Ok((id, hash))
}

/// The action's hash, and the `/run` body for the action without it.
fn run_for(body: &[u8]) -> Result<(String, BytesMut), ForwardError> {
    let bad = |e: serde_json::Error| ForwardError::RunDecode(e.to_string());
    let mut fields: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(bad)?;
    super::value_is_object(&fields).map_err(ForwardError::RunDecode)?;
    let hash: String = match fields.remove(RUN_HASH) {
        Some(raw) => serde_json::from_str::<Option<String>>(raw.get())
            .map_err(bad)?
            .unwrap_or_default(),
        None => String::new(),
    };
    if hash.is_empty() {
        return Err(ForwardError::NoHash);
    }
    let line = serde_json::to_vec(&fields).map_err(bad)?;
    Ok((hash, BytesMut::from(&line[..])))
}

/// `{"response": <the action's answer as it wrote it>, "out": "...", "err": "..."}`. The
/// answer was checked to be one JSON object or array; logs that are not UTF-8 are made so,
/// as the fork's Go strings are.
fn run_answer(response: &[u8], out: &[u8], err: &[u8]) -> Bytes {
    let (out, err) = (String::from_utf8_lossy(out), String::from_utf8_lossy(err));
    let mut body = Vec::with_capacity(response.len() + out.len() + err.len() + 64);
    body.extend_from_slice(b"{\"response\":");
    body.extend_from_slice(response);
    body.extend_from_slice(b",\"out\":");
    let _ = serde_json::to_writer(&mut body, &*out);
    body.extend_from_slice(b",\"err\":");
    let _ = serde_json::to_writer(&mut body, &*err);
    body.push(b'}');
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_init_names_its_client_and_its_hash() {
        let body = |v: serde_json::Value| v.to_string().into_bytes();
        let ok = body(json!({"proxiedActionID": "c1", "value": {"env": {CODE_HASH: "abc"}}}));
        assert_eq!(registration(&ok).unwrap(), ("c1".into(), "abc".into()));
        let cases = [
            (
                body(json!({"proxiedActionID": "c1", "value": {}})),
                ForwardError::MissingHash,
            ),
            (
                body(json!({"proxiedActionID": "c1", "value": {"env": {CODE_HASH: 5}}})),
                ForwardError::MissingHash,
            ),
            (
                body(json!({"value": {"env": {CODE_HASH: "abc"}}})),
                ForwardError::MissingId,
            ),
            (
                body(json!({"proxiedActionID": "c", "value": {"env": {CODE_HASH: "../x"}}})),
                ForwardError::BadHash,
            ),
            (b"[]".to_vec(), ForwardError::Unmarshal(String::new())),
        ];
        for (bad, expected) in cases {
            let e = registration(&bad).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&e),
                std::mem::discriminant(&expected),
                "{e}"
            );
        }
    }

    #[test]
    fn a_run_loses_its_hash_on_the_way_to_the_action() {
        let (hash, line) = run_for(br#"{"actionCodeHash":"h","value":{"a":1},"x":2}"#).unwrap();
        assert_eq!(hash, "h");
        let line: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(line, json!({"value": {"a": 1}, "x": 2}));
        assert!(matches!(
            run_for(br#"{"value":{}}"#),
            Err(ForwardError::NoHash)
        ));
        assert!(matches!(
            run_for(b"{\"actionCodeHash\":1}"),
            Err(ForwardError::RunDecode(_))
        ));
        assert!(matches!(run_for(b"nope"), Err(ForwardError::RunDecode(_))));
    }

    #[test]
    fn run_answers_carry_the_result_as_it_came_and_the_logs() {
        let body = run_answer(br#"{"b":[1]}"#, b"out\n", b"\xffbad\n");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"response": {"b": [1]}, "out": "out\n", "err": "\u{fffd}bad\n"})
        );
    }

    #[test]
    fn a_setup_is_in_progress_between_its_two_marks() {
        let marks = tempfile::tempdir().unwrap();
        assert!(!setup_in_progress(marks.path(), "h"));
        std::fs::write(marks.path().join("h"), "").unwrap();
        assert!(setup_in_progress(marks.path(), "h"));
        std::fs::write(marks.path().join("h_done"), "").unwrap();
        assert!(!setup_in_progress(marks.path(), "h"));
    }
}
