//! From unpacked code to a way of starting it: an executable that speaks ActionLoop itself
//! (a precompiled zip, a script with `#!`), code built by `OW_COMPILER` into one, or source
//! for the language's embedded launcher.
//!
//! Shared by `/init` and by `-compile`, so that an offline build is exactly what `/init`
//! would have run.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::action::{Ready, Recipe};
use crate::child::Spec;
use crate::error::ProxyError;
use crate::package::Layout;
use crate::settings::Settings;

/// Where one `/init` attempt keeps its files.
#[derive(Debug, Clone)]
pub struct Folders {
    /// The unpacked code.
    pub code: PathBuf,
    /// The compiler's output (`OW_COMPILER` only).
    pub bin: PathBuf,
}

impl Folders {
    /// The Go proxy's layout with a compiler (`<n>/src`, `<n>/bin`), else the code right in `<n>`.
    pub fn in_attempt(attempt: &Path, settings: &Settings) -> Folders {
        if settings.compiler.is_some() {
            Folders {
                code: attempt.join("src"),
                bin: attempt.join("bin"),
            }
        } else {
            Folders {
                code: attempt.to_path_buf(),
                bin: attempt.join("bin"),
            }
        }
    }

    pub fn create(&self) -> std::io::Result<()> {
        fs::create_dir_all(&self.code)
    }
}

/// The name a single source file gets. With a compiler it is `exec`, which is what the
/// compile scripts of existing ActionLoop images look for.
pub fn source_name(settings: &Settings) -> &'static str {
    if settings.compiler.is_some() {
        "exec"
    } else {
        settings.runtime.source_name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Elf,
    Script,
    Other,
}

fn format_of(path: &Path) -> Format {
    let mut head = [0u8; 4];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    match &head[..n] {
        [0x7f, b'E', b'L', b'F'] => Format::Elf,
        [b'#', b'!', ..] => Format::Script,
        _ => Format::Other,
    }
}

/// What `/init` (or `-compile`) will start, given the unpacked code.
#[derive(Debug)]
pub enum Plan {
    /// `path` speaks ActionLoop by itself.
    Executable(PathBuf),
    /// The runtime's launcher loads the code; `file` is the single source file, if any.
    Launcher { file: Option<String> },
}

/// Decides how to start the code, running the compiler if there is one. Blocking: call it
/// off the async threads.
pub fn plan(
    settings: &Settings,
    folders: &Folders,
    layout: &Layout,
    main: &str,
    env: &[(String, String)],
) -> Result<Plan, ProxyError> {
    let exec = folders.code.join("exec");
    let prebuilt = match layout {
        // A lone file is prebuilt when it is a binary; a script only counts when no compiler
        // waits for source (a Python file with `#!` is still Python to a compile script).
        Layout::File(name) => {
            let path = folders.code.join(name);
            match format_of(&path) {
                Format::Elf => Some(path),
                Format::Script if settings.compiler.is_none() => Some(path),
                _ => None,
            }
        }
        Layout::Archive => (format_of(&exec) != Format::Other).then(|| exec.clone()),
    };
    if let Some(path) = prebuilt {
        if path != exec {
            fs::rename(&path, &exec).map_err(|e| ProxyError::storage(&exec, e))?;
        }
        make_executable(&exec)?;
        if matches!(layout, Layout::Archive) {
            check_execution_env(settings, &folders.code)?;
        }
        return Ok(Plan::Executable(exec));
    }
    if let Some(compiler) = &settings.compiler {
        let built = build(settings, compiler, main, folders, env)?;
        check_execution_env(settings, &folders.bin)?;
        return Ok(Plan::Executable(built));
    }
    let file = match layout {
        Layout::File(name) => Some(name.clone()),
        Layout::Archive => None,
    };
    if settings.init_install {
        // The installer's words belong to this attempt's logs, as it would say them.
        let mut to_logs = |bytes: &[u8]| crate::logs::output::stderr().push(bytes);
        let language = settings.runtime;
        crate::install::install(
            language,
            language.install.init,
            &settings.interpreter,
            &folders.code,
            &action_env(settings, env),
            settings.init_install_timeout,
            &mut to_logs,
        )
        .map_err(|e| ProxyError::Locate(e.to_string()))?;
    }
    Ok(Plan::Launcher { file })
}

fn make_executable(path: &Path) -> Result<(), ProxyError> {
    // Zips made on other systems carry no mode bits.
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| ProxyError::cannot_make_executable(path, e))
}

/// `OW_EXECUTION_ENV`: a prebuilt action must say it was built for this image.
fn check_execution_env(settings: &Settings, folder: &Path) -> Result<(), ProxyError> {
    let Some(expected) = &settings.execution_env else {
        return Ok(());
    };
    let found = fs::read_to_string(folder.join("exec.env")).unwrap_or_default();
    if found.trim() == expected.trim() {
        return Ok(());
    }
    Err(ProxyError::env_mismatch(expected.trim(), found.trim()))
}

/// Builds the action: `$OW_COMPILER <main> <src> <bin>`. As with the Go proxy, a compiler
/// that prints anything has failed, whatever its exit status.
fn build(
    settings: &Settings,
    compiler: &Path,
    main: &str,
    folders: &Folders,
    env: &[(String, String)],
) -> Result<PathBuf, ProxyError> {
    fs::create_dir_all(&folders.bin).map_err(|e| ProxyError::storage(&folders.bin, e))?;
    // Exactly what the Go proxy gives its compiler: PATH and the action's variables. The
    // official compile scripts write `bin/exec.env` from `__OW_EXECUTION_ENV`.
    let mut command = Command::new(compiler);
    command.env_clear();
    if let Some(path) = &settings.path {
        command.env("PATH", path);
    }
    command
        .arg(main)
        .arg(&folders.code)
        .arg(&folders.bin)
        .envs(action_env(settings, env))
        .stdin(Stdio::null());
    let output = crate::child::reaper::output(&mut command)
        .map_err(|e| ProxyError::compiler_cannot_run(compiler, e))?;
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    let printed = printed.trim();
    if !printed.is_empty() {
        return Err(ProxyError::compiler_said(printed));
    }
    if !output.status.success() {
        return Err(ProxyError::compiler_failed(output.status));
    }
    let exec = folders.bin.join("exec");
    if !exec.is_file() {
        return Err(ProxyError::compiler_left_nothing(&exec));
    }
    make_executable(&exec)?;
    Ok(exec)
}

/// The variables an action and its compiler get from the proxy, as the Go proxy sets them:
/// its version, `OW_EXECUTION_ENV` and `OW_WAIT_FOR_ACK` as `__OW_*`, the proxy's own
/// `__OW_*` variables, then the init `env` (later entries win).
pub fn action_env(settings: &Settings, env: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = vec![(
        "__OW_PROXY_VERSION".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )];
    if let Some(version) = &settings.execution_env {
        all.push(("__OW_EXECUTION_ENV".into(), version.clone()));
    }
    if let Some(ack) = &settings.wait_for_ack {
        all.push(("__OW_WAIT_FOR_ACK".into(), ack.clone()));
    }
    all.extend(settings.ow_vars.iter().cloned());
    all.extend(env.iter().cloned());
    all
}

/// The environment a child gets on top of the proxy's: the action's, and `OW_DEBUG`.
pub fn child_env(settings: &Settings, env: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = action_env(settings, env);
    if settings.debug {
        all.push(("OW_DEBUG".into(), "1".into()));
    }
    all
}

/// How to make each child, once the plan is made.
pub fn recipe(
    settings: &Settings,
    launcher: &Path,
    plan: &Plan,
    folders: &Folders,
    main: &str,
    env: &[(String, String)],
) -> Recipe {
    let child_env = child_env(settings, env);
    match plan {
        Plan::Executable(exec) => {
            Recipe {
                preloads: false,
                spec: Spec {
                    program: exec.clone(),
                    args: Vec::new(),
                    // The Go proxy starts executables where it runs itself; the official
                    // `exec` scripts change to their own folder.
                    cwd: settings.workdir.clone(),
                    env: child_env,
                    logs: Default::default(),
                },
                init_line: None,
                ready: if settings.wait_for_ack.is_some() {
                    Ready::Ack
                } else {
                    Ready::Settled
                },
                trusted_answers: false,
                answer_limit: settings.limits.result_bytes,
            }
        }
        Plan::Launcher { file } => {
            let env_map: serde_json::Map<String, serde_json::Value> = env
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let line = serde_json::json!({
                "dir": folders.code,
                "file": file,
                "main": main,
                "env": env_map,
            });
            Recipe {
                spec: launcher_spec(settings, launcher, &folders.code, child_env),
                init_line: Some(line.to_string().into_bytes()),
                preloads: settings.preload.is_some(),
                ready: Ready::LauncherAck,
                trusted_answers: settings.runtime.private_answers,
                answer_limit: settings.limits.result_bytes,
            }
        }
    }
}

/// The command that starts the runtime's launcher (prewarmed, or for an action).
pub fn launcher_spec(
    settings: &Settings,
    launcher: &Path,
    cwd: &Path,
    env: Vec<(String, String)>,
) -> Spec {
    let program = settings.interpreter.clone();
    let mut env = env;
    if settings.runtime.tune_malloc && settings.tune_child_malloc {
        env.push(("GLIBC_TUNABLES".into(), crate::memory::glibc_tunables()));
    }
    Spec {
        program,
        args: vec![launcher.as_os_str().to_os_string()],
        cwd: cwd.to_path_buf(),
        env,
        logs: Default::default(),
    }
}
