//! Black-box actions (`OW_ACTION_MODE=blackbox`): the protocol of OpenWhisk's Docker skeleton
//! (apache/openwhisk-runtime-docker, `actionproxy.py`), for images whose action is any
//! executable that reads its argument and prints its result.
//!
//! `/init` writes plain code over the executable (default `/action/exec`), or unpacks a zip
//! into its folder, which must then hold `exec`; an image that already has an executable
//! needs no code at all. Each `/run` starts the executable afresh, with the JSON of `value`
//! as its first argument (when the kernel allows an argument that long) and always on stdin,
//! and the activation's context in `__OW_*` variables. The last line of its stdout is the
//! result; everything before it, and its stderr, are the activation's logs, framed as always.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::child::reaper;
use crate::error::{ALREADY_INITIALIZED, ProxyError};
use crate::logs::{self, Destination};
use crate::package;
use crate::settings::Settings;

/// The longest argument the kernel passes to a program (MAX_ARG_STRLEN): a longer `value`
/// reaches the executable on stdin only.
const MAX_ARGUMENT: usize = 131_071;

pub struct Blackbox {
    settings: std::sync::Arc<Settings>,
    exec: PathBuf,
    initialized: AtomicBool,
    /// One activation at a time: each one's logs end with its own sentinels.
    running: Mutex<()>,
}

impl Blackbox {
    pub fn new(settings: Settings) -> Blackbox {
        Blackbox {
            exec: settings.blackbox_exec.clone(),
            settings: std::sync::Arc::new(settings),
            initialized: AtomicBool::new(false),
            running: Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn folder(&self) -> &Path {
        self.exec.parent().unwrap_or(Path::new("/"))
    }

    /// `/init`: the code, if any, in place of the executable; then the executable must be
    /// there. A second `/init` is refused unless `PROXY_ALLOW_REINIT` says otherwise.
    pub async fn init(&self, body: BytesMut) -> Result<(), ProxyError> {
        if self.initialized.load(Ordering::SeqCst) && !self.settings.allow_reinit {
            logs::proxy_line(format!("{ALREADY_INITIALIZED}\n").as_bytes());
            return Err(ProxyError::AlreadyInitialized);
        }
        let value = init_value(&body)?;
        let code = value.get("code").and_then(Value::as_str);
        let binary = value
            .get("binary")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let written = match code {
            None => Ok(()),
            Some(code) => self.write_code(code, binary).await,
        };
        let ready = written.and_then(|()| self.verify());
        match ready {
            Ok(()) => {
                self.initialized.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(cause) => {
                logs::end_activation(&Destination::Proxy, None, Some(&cause), None).await;
                Err(ProxyError::Fixed(crate::error::CANNOT_LOCATE))
            }
        }
    }

    /// Plain code over the executable (through a new file renamed into place, so a running
    /// one is never half-written), or a zip into its folder.
    async fn write_code(&self, code: &str, binary: bool) -> Result<(), String> {
        let folder = self.folder().to_path_buf();
        let exec = self.exec.clone();
        let limits = self.settings.limits.clone();
        let bytes = if binary {
            let body = BytesMut::from(code.as_bytes());
            let range = crate::request::Code::InBody(0..body.len());
            package::decode(body, range, true).map_err(|e| e.to_string())?
        } else {
            BytesMut::from(code.as_bytes())
        };
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            if binary {
                // Our unpacking never writes over a file: the old executable goes first.
                let _ = std::fs::remove_file(&exec);
                let name = exec.file_name().and_then(|n| n.to_str()).unwrap_or("exec");
                package::unpack(&bytes, &folder, name, &limits).map_err(|e| e.to_string())?;
                // Zips often carry no mode bits (or 0644, from tools that drop them); the
                // skeleton's unpacking writes into the image's executable `exec` and keeps its
                // mode, so an `exec` from a zip runs there: here too.
                if let Ok(meta) = std::fs::symlink_metadata(&exec)
                    && meta.is_file()
                    && meta.permissions().mode() & 0o111 == 0
                {
                    let mode = meta.permissions().mode() | 0o755;
                    std::fs::set_permissions(&exec, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| format!("{}: {e}", exec.display()))?;
                }
            } else {
                let fresh = folder.join(".exec.actionloop");
                std::fs::write(&fresh, &bytes).map_err(|e| format!("{}: {e}", fresh.display()))?;
                std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
                std::fs::rename(&fresh, &exec).map_err(|e| format!("{}: {e}", exec.display()))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The executable is there and may run.
    fn verify(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(&self.exec) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
            Ok(_) => Err(format!("{} is not an executable file", self.exec.display())),
            Err(e) => Err(format!("{}: {e}", self.exec.display())),
        }
    }

    /// `/run`: the executable, started for this activation alone.
    pub async fn run(&self, body: BytesMut) -> Result<Bytes, ProxyError> {
        let _one_at_a_time = self.running.lock().await;
        let _activation = logs::Activation::begin();
        let outcome = self.activate(&body).await;
        logs::end_activation(&Destination::Proxy, None, None, None).await;
        outcome
    }

    async fn activate(&self, body: &[u8]) -> Result<Bytes, ProxyError> {
        // As the skeleton reads it (`get_json(silent=True) or {}`): a body that is no JSON, or
        // JSON that Python counts as false, is an empty message; any other non-object is refused.
        let message: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(message)) => message,
            Ok(other) if is_falsy(&other) => Map::new(),
            Ok(_) => return Err(ProxyError::BadArgument),
            Err(_) => Map::new(),
        };
        let args = message
            .get("value")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        if !(args.is_object() || args.is_array()) {
            return Err(ProxyError::BadArgument);
        }
        if let Err(cause) = self.verify() {
            logs::output::stderr().line(&cause);
            return Err(ProxyError::Fixed(crate::error::BLACKBOX_NO_BINARY));
        }
        let input = args.to_string();
        let mut command = tokio::process::Command::new(&self.exec);
        if input.len() <= MAX_ARGUMENT {
            command.arg(&input);
        }
        // The context comes from a nested `activation` when there is one (the skeleton's
        // Knative shape), else from the message's own keys.
        let context = match message.get("activation") {
            Some(Value::Object(activation)) => activation,
            Some(_) => &Map::new(),
            None => &message,
        };
        for (key, value) in context.iter().filter(|(k, _)| k.as_str() != "value") {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = format!("__OW_{}", key.to_uppercase());
            if !name.contains(['=', '\0']) && !text.contains('\0') {
                command.env(name, text);
            }
        }
        command
            .current_dir(self.folder())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let deadline = deadline_of(&message);
        let result = self
            .spawn_and_wait(command, input.into_bytes(), deadline)
            .await;
        match result {
            Ok(last) => judge(last),
            Err(e) => Err(e),
        }
    }

    /// Runs the process to its end (or its deadline): stdout's lines go to the logs as they
    /// come but for the last one, which is the result; stderr is logs.
    async fn spawn_and_wait(
        &self,
        mut command: tokio::process::Command,
        input: Vec<u8>,
        deadline: Option<Duration>,
    ) -> Result<Vec<u8>, ProxyError> {
        // As the Docker skeleton: a program that cannot run is a result that is none.
        let cannot_run = |e: std::io::Error| {
            logs::output::stdout().line(&format!("{}: {e}", self.exec.display()));
            ProxyError::NotADictionary
        };
        let mut child =
            reaper::spawn(|| command.spawn(), |c| c.id().unwrap_or(0)).map_err(cannot_run)?;
        let pid = child.id().unwrap_or(0);
        let mut stdin = child.stdin.take();
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| ProxyError::internal("no stdout"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| ProxyError::internal("no stderr"))?;
        let limit = self.settings.limits.result_bytes as usize;
        let feed = async {
            if let Some(stdin) = stdin.as_mut() {
                // A program that does not read its stdin closes it: that is no failure.
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            }
            drop(stdin.take());
        };
        let mut lines = LastLine::new(limit);
        let collect = async {
            let (mut out_buf, mut err_buf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                tokio::select! {
                    read = stdout.read(&mut out_buf), if out_open => match read {
                        Ok(0) | Err(_) => out_open = false,
                        Ok(n) => lines.push(&out_buf[..n]),
                    },
                    read = stderr.read(&mut err_buf), if err_open => match read {
                        Ok(0) | Err(_) => err_open = false,
                        Ok(n) => logs::output::stderr().push(&err_buf[..n]),
                    },
                }
            }
        };
        let work = async {
            tokio::join!(feed, collect);
            child.wait().await
        };
        let ended = match deadline {
            Some(left) => tokio::time::timeout(left, work).await.ok(),
            None => Some(work.await),
        };
        reaper::release(pid);
        let Some(status) = ended else {
            reaper::kill_tree(pid);
            // What it printed before it was stopped is all log: there is no result.
            let last = lines.finish();
            if !last.is_empty() {
                emit(&last);
            }
            return Err(ProxyError::deadline(false));
        };
        status.map_err(cannot_run)?;
        Ok(lines.finish())
    }
}

/// The `value` of an `/init` body, which must be an object. As the skeleton reads it
/// (`get_json(silent=True)`): a body that is no JSON, or JSON that Python counts as false,
/// carries no value, which is no code: an image's own executable, if it has one.
fn init_value(body: &[u8]) -> Result<Map<String, Value>, ProxyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut message)) => match message.remove("value") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(value)) => Ok(value),
            Some(_) => Err(ProxyError::invalid(
                "/init",
                "\"value\" must be a JSON object",
            )),
        },
        Ok(other) if is_falsy(&other) => Ok(Map::new()),
        Ok(_) => Err(ProxyError::invalid(
            "/init",
            "the body must be a JSON object",
        )),
        Err(_) => Ok(Map::new()),
    }
}

/// What Python counts as false: `null`, `false`, `0`, `""`, `[]`, `{}`.
fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// How long until the activation's `deadline` (epoch milliseconds, a string or a number).
fn deadline_of(message: &Map<String, Value>) -> Option<Duration> {
    let at = match message.get("deadline")? {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as f64;
    Some(Duration::from_millis((at - now).max(0.0) as u64))
}

/// The result line: a JSON object or array, else the Docker skeleton's 502 (and the line in
/// the logs, as that proxy prints it).
fn judge(last: Vec<u8>) -> Result<Bytes, ProxyError> {
    let text = String::from_utf8_lossy(&last).trim().to_string();
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(Bytes::from(v.to_string())),
        _ => {
            logs::output::stdout().line(&text);
            Err(ProxyError::NotADictionary)
        }
    }
}

/// Passes stdout on to the logs a line at a time, holding back the last complete line (and
/// any unfinished one): at the end, the last line is the result.
struct LastLine {
    held: Option<Vec<u8>>,
    partial: Vec<u8>,
    limit: usize,
}

impl LastLine {
    fn new(limit: usize) -> LastLine {
        LastLine {
            held: None,
            partial: Vec::new(),
            limit,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            self.partial.extend_from_slice(&bytes[..i]);
            bytes = &bytes[i + 1..];
            let line = std::mem::take(&mut self.partial);
            if let Some(earlier) = self.held.replace(line) {
                emit(&earlier);
            }
        }
        self.partial.extend_from_slice(bytes);
        // A line too long to be a result is a log line already.
        if self.partial.len() > self.limit {
            if let Some(earlier) = self.held.take() {
                emit(&earlier);
            }
            logs::output::stdout().push(&std::mem::take(&mut self.partial));
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.partial.is_empty() {
            return self.held.take().unwrap_or_default();
        }
        if let Some(earlier) = self.held.take() {
            emit(&earlier);
        }
        std::mem::take(&mut self.partial)
    }
}

fn emit(line: &[u8]) {
    let out = logs::output::stdout();
    out.push(line);
    out.push(b"\n");
}
