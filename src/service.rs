//! The two operations of the protocol, `/init` and `/run`, and the state across them: the
//! interpreter kept warm for the next `/init`, and the initialised action.
//!
//! The proxy serves one of these, in `action/` with its logs on the proxy's streams; a forward
//! server holds one per action, each in a folder of its own with its logs captured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::{Mutex, OnceCell};

use crate::action::{Action, Failed};
use crate::child::Child;
use crate::error::{ALREADY_INITIALIZED, ProxyError, StartupError};
use crate::logs::{self, Destination};
use crate::package;
use crate::plan::{self, Folders, Plan};
use crate::request;
use crate::settings::Settings;

pub struct Service {
    settings: Arc<Settings>,
    /// Where the launcher and the `<n>` attempt folders go.
    root: PathBuf,
    /// Where the children's output goes.
    logs: Destination,
    /// The language's launcher, written out at start.
    launcher: PathBuf,
    /// A launcher already started and waiting for code, so `/init` skips interpreter start.
    prewarmed: Mutex<Option<Child>>,
    /// One `/init` at a time.
    init_lock: Mutex<()>,
    action: OnceCell<Action>,
    next_folder: AtomicU64,
}

impl Service {
    /// The proxy's service: in `action/`, its logs on the proxy's streams. Writes the launcher
    /// next to the action folders. Needs no runtime.
    pub fn new(settings: Settings) -> Result<Service, StartupError> {
        let root = settings.action_root();
        Service::in_root(Arc::new(settings), root.clone(), Destination::Proxy).map_err(|e| {
            StartupError::Io(
                format!("cannot write the launcher into {}", root.display()),
                e,
            )
        })
    }

    /// A service of its own in `root` (its launcher, its `<n>` folders), its children's output
    /// sent to `logs`: one of the actions a forward server holds.
    pub fn in_root(
        settings: Arc<Settings>,
        root: PathBuf,
        logs: Destination,
    ) -> std::io::Result<Service> {
        let launcher = settings.runtime.install_launcher(&root)?;
        Ok(Service {
            settings,
            root,
            logs,
            launcher,
            prewarmed: Mutex::new(None),
            init_lock: Mutex::new(()),
            action: OnceCell::new(),
            next_folder: AtomicU64::new(1),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Starts an interpreter for the next `/init`, unless one waits already or an action runs.
    pub async fn prewarm(self: &Arc<Self>) {
        // With a compiler every source is built into an executable: a launcher is never used.
        let useful = self.settings.prewarm && self.settings.compiler.is_none();
        if !useful || self.action.initialized() {
            return;
        }
        let mut slot = self.prewarmed.lock().await;
        if slot.as_ref().is_some_and(|c| c.exited().is_none()) {
            return;
        }
        let mut spec = plan::launcher_spec(
            &self.settings,
            &self.launcher,
            &self.root,
            plan::child_env(&self.settings, &[]),
        );
        spec.logs = self.logs.clone();
        match Child::spawn(&spec) {
            Ok(mut child) => {
                child.preload_report_due = self.settings.preload.is_some();
                *slot = Some(child);
            }
            Err(e) => {
                tracing::warn!("cannot prewarm {}: {e}", spec.program.display());
                return;
            }
        }
        drop(slot);
        if self.settings.preload.is_some() {
            // Read while the proxy already serves: an `/init` that comes first takes the child
            // once this is done (the slot stays locked), so it waits for the preload.
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let mut slot = this.prewarmed.lock().await;
                if let Some(child) = slot.as_mut() {
                    let limit = this.settings.limits.result_bytes;
                    crate::action::finish_preload(child, limit).await;
                }
            });
        }
    }

    /// Takes the prewarmed interpreter if it is alive and the init env allows it.
    async fn take_prewarmed(&self, env: &[(String, String)]) -> Option<Child> {
        let runtime = self.settings.runtime;
        if env.iter().any(|(k, _)| runtime.reads_at_start(k)) {
            return None;
        }
        let child = self.prewarmed.lock().await.take()?;
        child.exited().is_none().then_some(child)
    }

    /// Handles `/init`. A failure that is the action's ends the attempt's logs, here and
    /// nowhere else; a failed attempt does not count, and leaves no files.
    pub async fn init(self: &Arc<Self>, body: BytesMut) -> Result<(), ProxyError> {
        if self.action.initialized() {
            return Err(self.refuse_second_init());
        }
        let _one_at_a_time = self.init_lock.lock().await;
        if self.action.initialized() {
            return Err(self.refuse_second_init());
        }
        let attempt = logs::Activation::begin_for(&self.logs);
        let outcome = self.attempt(body).await;
        let outcome = match outcome {
            Ok(action) => {
                // The warm interpreter was used, or it is of no use now.
                self.prewarmed.lock().await.take();
                self.action
                    .set(action)
                    .map_err(|_| ProxyError::AlreadyInitialized)
            }
            Err(Failed { error, child }) => {
                if error.is_actions_fault(self.settings.log_init_error) {
                    let cause = error.cause();
                    logs::end_activation(&self.logs, child.as_deref(), Some(&cause), None).await;
                }
                drop(child);
                let this = Arc::clone(self);
                tokio::spawn(async move { this.prewarm().await });
                Err(error)
            }
        };
        drop(attempt);
        outcome
    }

    /// The Go proxy also logs a refused second `/init`; it belongs to no activation.
    fn refuse_second_init(&self) -> ProxyError {
        logs::proxy_line(format!("{ALREADY_INITIALIZED}\n").as_bytes());
        ProxyError::AlreadyInitialized
    }

    /// From the `/init` body to a ready action, in a fresh folder that is removed again if
    /// the attempt fails: on a small disk, its files would make the next attempt fail too.
    async fn attempt(&self, body: BytesMut) -> Result<Action, Failed> {
        let mut init = request::parse_init(&body)?;
        let code = init.code.take().ok_or(ProxyError::MissingCode)?;
        let bytes = package::decode(body, code, init.binary).map_err(ProxyError::from)?;
        let folder = self.new_folder()?;
        let started = self.start_in(&folder, &init, bytes).await;
        if started.is_err() {
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&folder));
            if let Ok(Err(e)) = removed.await {
                tracing::warn!("cannot remove a failed action's files: {e}");
            }
        }
        started
    }

    /// Unpacks, builds and starts the action in `folder`.
    async fn start_in(
        &self,
        folder: &Path,
        init: &request::Init,
        bytes: BytesMut,
    ) -> Result<Action, Failed> {
        let folders = Folders::in_attempt(folder, &self.settings);
        let plan = {
            let settings = Arc::clone(&self.settings);
            let folders = folders.clone();
            let (main, env) = (init.main.clone(), init.env.clone());
            tokio::task::spawn_blocking(move || -> Result<Plan, ProxyError> {
                folders
                    .create()
                    .map_err(|e| ProxyError::storage(&folders.code, e))?;
                let name = plan::source_name(&settings);
                let layout = package::unpack(&bytes, &folders.code, name, &settings.limits)?;
                plan::plan(&settings, &folders, &layout, &main, &env)
            })
            .await
            .map_err(ProxyError::internal)??
        };
        let mut recipe = plan::recipe(
            &self.settings,
            &self.launcher,
            &plan,
            &folders,
            &init.main,
            &init.env,
        );
        recipe.spec.logs = self.logs.clone();
        let first = match plan {
            Plan::Launcher { .. } => self.take_prewarmed(&init.env).await,
            Plan::Executable(_) => None,
        };
        let children = recipe.start_pool(first, self.settings.concurrency).await?;
        Ok(Action::new(recipe, children))
    }

    /// A fresh `<root>/<n>` folder.
    fn new_folder(&self) -> Result<PathBuf, ProxyError> {
        let root = &self.root;
        loop {
            let n = self.next_folder.fetch_add(1, Ordering::Relaxed);
            let folder = root.join(n.to_string());
            match std::fs::create_dir_all(root).and_then(|_| std::fs::create_dir(&folder)) {
                Ok(()) => return Ok(folder),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ProxyError::storage(&folder, e)),
            }
        }
    }

    /// Handles `/run`.
    pub async fn run(&self, body: BytesMut) -> Result<Bytes, ProxyError> {
        let action = self.action.get().ok_or(ProxyError::NoAction)?;
        let arrived = tokio::time::Instant::now();
        let run = request::parse_run(body)?;
        let deadline = run
            .deadline
            .filter(|_| self.settings.enforce_deadline)
            .map(|left| arrived + left);
        action.run(&run.line, deadline).await
    }
}
