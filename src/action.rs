//! An initialised action: how to bring one of its children to readiness, and the pool of
//! children that `/run` requests take turns on.
//!
//! A child serves one activation at a time, so answers can never be mixed up: requests wait
//! for a free child in arrival order. A child that dies, overruns its deadline or garbles its
//! answer channel is dropped (killing its process group) and replaced at the next request.

use tokio::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{Mutex, Semaphore};

use crate::answer;
use crate::child::{Child, ChildError, Spec};
use crate::error::{self, ProxyError};
use crate::logs;

/// What a child must say before it counts as started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Our own launchers: `{"ok":true}` or `{"ok":false,"kind":..,"error":..}`.
    Launcher,
    /// `OW_WAIT_FOR_ACK` for an executable: `{"ok":true}` or a fixed error.
    Required,
    /// An executable that is not asked to ack: running a moment after start is enough.
    None,
}

/// How each child of the action is started.
#[derive(Debug, Clone)]
pub struct Launch {
    pub spec: Spec,
    /// For launchers: the line that says what to load.
    pub init_line: Option<Vec<u8>>,
    pub ack: Ack,
    pub answer_limit: u64,
}

#[derive(Deserialize)]
struct LauncherAck {
    ok: bool,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl Launch {
    /// Starts a child (or takes a prewarmed one) and waits until it is ready. On failure the
    /// child's logs are framed, so the cause it printed ends the failed attempt's logs.
    pub async fn start(&self, prewarmed: Option<Child>) -> Result<Child, ProxyError> {
        let mut child = match prewarmed {
            Some(child) => child,
            None => Child::spawn(&self.spec).map_err(|e| {
                let cause = format!("cannot run {}: {e}", self.spec.program.display());
                logs::frame_without_child(&cause);
                ProxyError::Start(cause)
            })?,
        };
        match self.ready(&mut child).await {
            Ok(()) => Ok(child),
            Err(e) => {
                child.kill();
                child.frame_logs_explained(&e.cause()).await;
                Err(e)
            }
        }
    }

    async fn ready(&self, child: &mut Child) -> Result<(), ProxyError> {
        if let Some(line) = &self.init_line {
            child.send(line).await.map_err(|e| match e {
                ChildError::Exited(exit) => ProxyError::Start(format!(
                    "the interpreter exited ({exit}) before loading the action"
                )),
                other => ProxyError::Start(other.to_string()),
            })?;
        }
        match self.ack {
            Ack::Launcher => {
                let line = child.answer(self.answer_limit).await.map_err(|e| match e {
                    ChildError::Exited(exit) => ProxyError::Start(format!(
                        "the interpreter exited ({exit}) while loading the action"
                    )),
                    other => ProxyError::Start(other.to_string()),
                })?;
                let ack: LauncherAck = serde_json::from_slice(&line).map_err(|_| {
                    ProxyError::Start(format!(
                        "the launcher answered {}",
                        String::from_utf8_lossy(&line)
                    ))
                })?;
                if ack.ok {
                    return Ok(());
                }
                let detail = ack.error.unwrap_or_default();
                Err(match ack.kind.as_deref() {
                    Some("locate") => ProxyError::Locate(detail),
                    _ => ProxyError::Start(detail),
                })
            }
            Ack::Required => {
                let line = child.answer(self.answer_limit).await.map_err(|e| match e {
                    ChildError::Exited(exit) => {
                        ProxyError::InitFailed(error::EXITED_DURING_INIT, format!("({exit})"))
                    }
                    other => ProxyError::InitFailed(error::BAD_ACK, other.to_string()),
                })?;
                let ok = serde_json::from_slice::<serde_json::Value>(&line)
                    .is_ok_and(|v| v.get("ok") == Some(&serde_json::Value::Bool(true)));
                if ok {
                    Ok(())
                } else {
                    Err(ProxyError::InitFailed(
                        error::BAD_ACK,
                        format!("It answered: {}", String::from_utf8_lossy(&line)),
                    ))
                }
            }
            Ack::None => {
                let settled = child.settled();
                tokio::select! {
                    biased;
                    exit = child.wait_exit() => Err(ProxyError::InitFailed(
                        error::EXITED_DURING_INIT,
                        format!("({exit})"),
                    )),
                    _ = settled => Ok(()),
                }
            }
        }
    }
}

/// The children of an initialised action.
pub struct Action {
    launch: Launch,
    slots: Vec<Mutex<Option<Child>>>,
    free: Semaphore,
}

impl Action {
    pub fn new(launch: Launch, children: Vec<Child>) -> Action {
        let free = Semaphore::new(children.len());
        Action {
            launch,
            slots: children.into_iter().map(|c| Mutex::new(Some(c))).collect(),
            free,
        }
    }

    /// Runs one activation: `request` is the `/run` body on one line. The answer is returned
    /// as the child wrote it, checked but not re-encoded. A `deadline` counts from the
    /// request's arrival: time spent waiting for a free child is part of it.
    pub async fn run(
        &self,
        request: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Bytes, ProxyError> {
        let _activation = logs::Activation::begin();
        let free = self.free.acquire();
        let _permit = match deadline {
            None => free.await,
            Some(at) => tokio::time::timeout_at(at, free)
                .await
                .map_err(|_| ProxyError::BadAnswer(DEADLINE_IN_QUEUE.into()))?,
        }
        .map_err(|_| ProxyError::Internal("the action is shutting down".into()))?;
        // Holding a permit means at least one slot is unlocked.
        let mut slot = self
            .slots
            .iter()
            .find_map(|s| s.try_lock().ok())
            .ok_or_else(|| ProxyError::Internal("no free child".into()))?;

        let alive = slot.as_ref().is_some_and(|c| c.exited().is_none());
        if !alive {
            slot.take();
            *slot = Some(self.launch.start(None).await?);
        }
        let Some(child) = slot.as_mut() else {
            return Err(ProxyError::Internal("no child".into()));
        };
        let stale = child.discard_stale();
        if stale > 0 {
            tracing::warn!(bytes = stale, "dropped answer bytes nobody asked for");
        }

        let exchange = async {
            child.send(request).await?;
            child.answer(self.launch.answer_limit).await
        };
        let outcome = match deadline {
            None => exchange.await.map_err(ProxyError::from),
            Some(at) => match tokio::time::timeout_at(at, exchange).await {
                Ok(answer) => answer.map_err(ProxyError::from),
                Err(_) => {
                    child.kill();
                    Err(ProxyError::BadAnswer(DEADLINE_PASSED.into()))
                }
            },
        };
        // The error body names the cause; the activation's logs stay the action's own (SPEC §4).
        child.frame_logs(deadline).await;
        match outcome {
            Ok(answer) => answer::check(answer),
            Err(e) => {
                // Whatever state the child is in, it cannot be trusted with the next request.
                slot.take();
                Err(e)
            }
        }
    }
}

const DEADLINE_PASSED: &str = "The action did not answer before its deadline and was stopped.";
const DEADLINE_IN_QUEUE: &str =
    "The activation's deadline passed while it waited for the action to be free.";
