//! An initialised action: how to bring one of its children to readiness, and the pool of
//! children that `/run` requests take turns on.
//!
//! A child serves one activation at a time, so answers can never be mixed up: requests wait
//! for a free child in arrival order. A child that dies, overruns its deadline or garbles its
//! answer channel is dropped (killing its process tree) and replaced at the next request.

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::answer;
use crate::child::{Child, Spec};
use crate::error::ProxyError;
use crate::logs;

/// How a child shows that it has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Our own launchers ack with `{"ok":true}` or `{"ok":false,"kind":..,"error":..}`.
    LauncherAck,
    /// An executable asked to ack (`OW_WAIT_FOR_ACK`): `{"ok":true}`, or a Go proxy text.
    Ack,
    /// An executable that owes no ack: it has started once it waits for its first request.
    Settled,
}

/// How each child of the action is made: the process, the line that says what to load (our
/// launchers only), and how it shows it is ready.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub spec: Spec,
    pub init_line: Option<Vec<u8>>,
    /// The launcher preloads modules (`OW_PRELOAD`) and reports it before anything else.
    pub preloads: bool,
    pub ready: Ready,
    /// The answers come from one of our launchers on a channel of its own: their encoder's
    /// JSON, one line per request (see [`answer::check_from_launcher`]).
    pub trusted_answers: bool,
    pub answer_limit: u64,
}

/// A child that did not start: why, and the child itself when there was one, so that its
/// output goes into the failed activation's logs before the explanation.
pub struct Failed {
    pub error: ProxyError,
    pub child: Option<Box<Child>>,
}

impl From<ProxyError> for Failed {
    fn from(error: ProxyError) -> Failed {
        Failed { error, child: None }
    }
}

#[derive(Deserialize)]
struct LauncherAck {
    ok: bool,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl Recipe {
    /// Starts a child (or takes a prewarmed one) and waits until it is ready. A child that
    /// fails is killed and handed back for its logs.
    pub async fn start(&self, prewarmed: Option<Child>) -> Result<Child, Failed> {
        let mut child = match prewarmed {
            Some(child) => child,
            None => {
                let mut child = Child::spawn(&self.spec)
                    .map_err(|e| ProxyError::cannot_run(&self.spec.program, e))?;
                child.preload_report_due = self.preloads;
                child
            }
        };
        match self.ready(&mut child).await {
            Ok(()) => Ok(child),
            Err(error) => {
                child.kill();
                Err(Failed {
                    error,
                    child: Some(Box::new(child)),
                })
            }
        }
    }

    /// The pool: `count` children, the first from `first` if given, the others started in
    /// parallel with it. If any fails, the others are stopped (their output still reaches the
    /// logs, before the failed one's) and the first failure is the pool's.
    pub async fn start_pool(
        &self,
        first: Option<Child>,
        count: usize,
    ) -> Result<Vec<Child>, Failed> {
        let mut others = tokio::task::JoinSet::new();
        for _ in 1..count {
            let recipe = self.clone();
            others.spawn(async move { recipe.start(None).await });
        }
        let mut started = Vec::with_capacity(count);
        let mut failed = None;
        let first = self.start(first).await;
        let mut record = |outcome: Result<Child, Failed>| match outcome {
            Ok(child) => started.push(child),
            Err(f) if failed.is_none() => failed = Some(f),
            Err(_) => {}
        };
        record(first);
        while let Some(joined) = others.join_next().await {
            record(joined.unwrap_or_else(|e| Err(ProxyError::internal(e).into())));
        }
        match failed {
            None => Ok(started),
            Some(failed) => {
                drop(started);
                Err(failed)
            }
        }
    }

    async fn ready(&self, child: &mut Child) -> Result<(), ProxyError> {
        if let Some(line) = &self.init_line {
            child
                .send(line)
                .await
                .map_err(|e| ProxyError::launcher_gone(e, false))?;
        }
        match self.ready {
            Ready::LauncherAck => {
                finish_preload(child, self.answer_limit).await;
                let line = child
                    .answer(self.answer_limit)
                    .await
                    .map_err(|e| ProxyError::launcher_gone(e, true))?;
                let ack: LauncherAck = serde_json::from_slice(&line)
                    .map_err(|_| ProxyError::launcher_answered(&line))?;
                if ack.ok {
                    return Ok(());
                }
                Err(ProxyError::launcher_refused(
                    ack.kind.as_deref(),
                    ack.error.unwrap_or_default(),
                ))
            }
            Ready::Ack => {
                let line = child
                    .answer(self.answer_limit)
                    .await
                    .map_err(ProxyError::no_ack)?;
                let ok = serde_json::from_slice::<serde_json::Value>(&line)
                    .is_ok_and(|v| v.get("ok") == Some(&serde_json::Value::Bool(true)));
                if ok {
                    Ok(())
                } else {
                    Err(ProxyError::bad_ack(&line))
                }
            }
            Ready::Settled => {
                let settled = child.settled();
                tokio::select! {
                    biased;
                    exit = child.wait_exit() => Err(ProxyError::exited_during_init(exit)),
                    _ = settled => Ok(()),
                }
            }
        }
    }
}

/// Reads a launcher's preload report (`OW_PRELOAD`), if it still owes one, and logs what
/// could not be preloaded, once in the proxy's life: every child of a pool preloads the same.
/// A child that ends instead is left for the next step to find out.
pub async fn finish_preload(child: &mut Child, limit: u64) {
    if !child.preload_report_due {
        return;
    }
    child.preload_report_due = false;
    let Ok(line) = child.answer(limit).await else {
        return;
    };
    #[derive(Deserialize)]
    struct Report {
        #[serde(default)]
        preloaded: Vec<String>,
        #[serde(default)]
        failed: std::collections::BTreeMap<String, String>,
    }
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    match serde_json::from_slice::<Report>(&line) {
        Ok(report) => {
            tracing::info!("preloaded {}", report.preloaded.join(", "));
            for (name, why) in report.failed {
                tracing::warn!("cannot preload {name}: {why}");
            }
        }
        Err(_) => tracing::warn!(
            "the launcher's preload report is not one: {}",
            String::from_utf8_lossy(&line)
        ),
    }
}

/// The children of an initialised action.
pub struct Action {
    recipe: Recipe,
    slots: Vec<Mutex<Option<Child>>>,
    free: Semaphore,
}

impl Action {
    pub fn new(recipe: Recipe, children: Vec<Child>) -> Action {
        let free = Semaphore::new(children.len());
        Action {
            recipe,
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
        let _activation = logs::Activation::begin_for(&self.recipe.spec.logs);
        let free = self.free.acquire();
        let _permit = match deadline {
            None => free.await,
            Some(at) => tokio::time::timeout_at(at, free)
                .await
                .map_err(|_| ProxyError::deadline(true))?,
        }
        .map_err(|_| ProxyError::internal("the action is shutting down"))?;
        // Holding a permit means at least one slot is unlocked.
        let mut slot = self
            .slots
            .iter()
            .find_map(|s| s.try_lock().ok())
            .ok_or_else(|| ProxyError::internal("no free child"))?;

        let alive = slot.as_ref().is_some_and(|c| c.exited().is_none());
        if !alive {
            slot.take();
            match self.recipe.start(None).await {
                Ok(child) => *slot = Some(child),
                Err(failed) => {
                    let cause = failed.error.cause();
                    let to = &self.recipe.spec.logs;
                    logs::end_activation(to, failed.child.as_deref(), Some(&cause), deadline).await;
                    return Err(failed.error);
                }
            }
        }
        let Some(child) = slot.as_mut() else {
            return Err(ProxyError::internal("no child"));
        };
        let stale = child.discard_stale(!self.recipe.trusted_answers);
        if stale > 0 {
            tracing::warn!(bytes = stale, "dropped answer bytes nobody asked for");
        }

        let exchange = async {
            child.send(request).await?;
            child.answer(self.recipe.answer_limit).await
        };
        let outcome = match deadline {
            None => exchange.await.map_err(ProxyError::from),
            Some(at) => match tokio::time::timeout_at(at, exchange).await {
                Ok(answer) => answer.map_err(ProxyError::from),
                Err(_) => {
                    child.kill();
                    Err(ProxyError::deadline(false))
                }
            },
        };
        // The error body names the cause; the activation's logs stay the action's own (SPEC §4).
        logs::end_activation(&self.recipe.spec.logs, Some(child), None, deadline).await;
        match outcome {
            Ok(answer) if self.recipe.trusted_answers => answer::check_from_launcher(answer),
            Ok(answer) => answer::check(answer),
            Err(e) => {
                // Whatever state the child is in, it cannot be trusted with the next request.
                slot.take();
                Err(e)
            }
        }
    }
}
