//! The proxy's state across requests: the interpreter kept warm for the next `/init`, the
//! initialised action, and how `/init` turns a code package into a running child.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, OnceCell};

use crate::action::{Ack, Action, Launch};
use crate::child::{Child, Spec};
use crate::error::ProxyError;
use crate::logs;
use crate::package::{self, Layout};
use crate::request;
use crate::settings::Settings;

pub struct Proxy {
    settings: Arc<Settings>,
    /// The runtime's launcher, written out at start.
    launcher: PathBuf,
    /// A launcher already started and waiting for code, so `/init` skips interpreter start.
    prewarmed: Mutex<Option<Child>>,
    /// One `/init` at a time.
    init_lock: Mutex<()>,
    action: OnceCell<Action>,
    next_folder: AtomicU64,
}

impl Proxy {
    /// Writes the launcher next to the action folders. Needs no runtime.
    pub fn new(settings: Settings) -> Result<Proxy, String> {
        let root = settings.action_root();
        let launcher = settings
            .runtime
            .install_launcher(&root)
            .map_err(|e| format!("cannot write the launcher into {}: {e}", root.display()))?;
        Ok(Proxy {
            settings: Arc::new(settings),
            launcher,
            prewarmed: Mutex::new(None),
            init_lock: Mutex::new(()),
            action: OnceCell::new(),
            next_folder: AtomicU64::new(1),
        })
    }

    fn interpreter(&self) -> PathBuf {
        self.settings
            .interpreter
            .clone()
            .unwrap_or_else(|| PathBuf::from(self.settings.runtime.interpreter()))
    }

    /// The command that starts the runtime's launcher, with extra environment.
    fn launcher_spec(&self, cwd: &Path, env: Vec<(String, String)>) -> Spec {
        let mut env = env;
        if self.settings.debug {
            env.push(("OW_DEBUG".into(), "1".into()));
        }
        Spec {
            program: self.interpreter(),
            args: vec![self.launcher.clone().into_os_string()],
            cwd: cwd.to_path_buf(),
            env,
        }
    }

    /// Starts an interpreter for the next `/init`, unless one waits already or an action runs.
    pub async fn prewarm(&self) {
        if !self.settings.prewarm || self.action.initialized() {
            return;
        }
        let mut slot = self.prewarmed.lock().await;
        if slot.as_ref().is_some_and(|c| c.exited().is_none()) {
            return;
        }
        let spec = self.launcher_spec(&self.settings.action_root(), Vec::new());
        match Child::spawn(&spec) {
            Ok(child) => *slot = Some(child),
            Err(e) => tracing::warn!("cannot prewarm {}: {e}", spec.program.display()),
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

    /// Handles `/init`.
    pub async fn init(self: &Arc<Self>, body: &[u8]) -> Result<(), ProxyError> {
        if self.action.initialized() {
            logs::explain(crate::error::ALREADY_INITIALIZED);
            return Err(ProxyError::AlreadyInitialized);
        }
        let _one_at_a_time = self.init_lock.lock().await;
        if self.action.initialized() {
            logs::explain(crate::error::ALREADY_INITIALIZED);
            return Err(ProxyError::AlreadyInitialized);
        }
        let result = self.try_init(body).await;
        match &result {
            Ok(()) => {
                // The warm interpreter was used, or it is of no use now.
                self.prewarmed.lock().await.take();
            }
            Err(_) => {
                let this = Arc::clone(self);
                tokio::spawn(async move { this.prewarm().await });
            }
        }
        result.map_err(|e| self.compat(e))
    }

    /// With `OW_LOG_INIT_ERROR`, `/init` failures carry the Go proxy's fixed texts only.
    fn compat(&self, e: ProxyError) -> ProxyError {
        if !self.settings.log_init_error {
            return e;
        }
        match e {
            ProxyError::Locate(_) => ProxyError::Locate(String::new()),
            ProxyError::Start(_) => ProxyError::Start(String::new()),
            ProxyError::InitFailed(fixed, _) => ProxyError::InitFailed(fixed, String::new()),
            other => other,
        }
    }

    async fn try_init(&self, body: &[u8]) -> Result<(), ProxyError> {
        let init = request::parse_init(body)?;
        let code = init.code.as_deref().ok_or(ProxyError::MissingCode)?;
        let bytes = package::decode(code, init.binary)?;
        let folder = self.new_folder()?;
        let layout = {
            let folder = folder.clone();
            let settings = Arc::clone(&self.settings);
            tokio::task::spawn_blocking(move || {
                let name = settings.runtime.source_name();
                package::unpack(&bytes, &folder, name, &settings.limits)
            })
            .await
            .map_err(|e| ProxyError::Internal(e.to_string()))??
        };
        let launch = self.plan(&folder, &layout, &init);
        let first = self.take_prewarmed(&init.env).await;
        let mut children = vec![launch.start(first).await?];
        for _ in 1..self.settings.concurrency {
            children.push(launch.start(None).await?);
        }
        let action = Action::new(launch, children);
        self.action
            .set(action)
            .map_err(|_| ProxyError::AlreadyInitialized)
    }

    /// A fresh `action/<n>` folder.
    fn new_folder(&self) -> Result<PathBuf, ProxyError> {
        let root = self.settings.action_root();
        loop {
            let n = self.next_folder.fetch_add(1, Ordering::Relaxed);
            let folder = root.join(n.to_string());
            match std::fs::create_dir_all(&root).and_then(|_| std::fs::create_dir(&folder)) {
                Ok(()) => return Ok(folder),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(ProxyError::Internal(format!(
                        "cannot create {}: {e}",
                        folder.display()
                    )));
                }
            }
        }
    }

    /// How to start the action laid out in `folder`.
    fn plan(&self, folder: &Path, layout: &Layout, init: &request::Init) -> Launch {
        let file = match layout {
            Layout::File(name) => Some(name.as_str()),
            Layout::Archive => None,
        };
        let env_map: serde_json::Map<String, serde_json::Value> = init
            .env
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let line = serde_json::json!({
            "dir": folder,
            "file": file,
            "main": init.main,
            "env": env_map,
        });
        Launch {
            spec: self.launcher_spec(folder, init.env.clone()),
            init_line: Some(line.to_string().into_bytes()),
            ack: Ack::Launcher,
            answer_limit: self.settings.limits.result_bytes,
        }
    }

    /// Handles `/run`.
    pub async fn run(&self, body: &[u8]) -> Result<Vec<u8>, ProxyError> {
        let action = self.action.get().ok_or(ProxyError::NoAction)?;
        let run = request::prepare_run(body)?;
        let deadline = run.deadline.filter(|_| self.settings.enforce_deadline);
        action.run(&run.line, deadline).await
    }

    /// Kills every child: the action's and the prewarmed one.
    pub async fn stop(&self) {
        if let Some(child) = self.prewarmed.lock().await.take() {
            child.kill();
        }
        if let Some(action) = self.action.get() {
            action.stop().await;
        }
    }
}
