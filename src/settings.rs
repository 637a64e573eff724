//! Everything the proxy can be told, read once at start into [`Settings`].
//!
//! Flags come from the command line (one or two dashes, as the Go proxy's images pass them);
//! the rest from the environment, with the names the OpenWhisk images already use. Nothing
//! else in the crate reads `std::env` for configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::StartupError;
use crate::language::Language;

const MIB: u64 = 1024 * 1024;

/// What the command line asked for.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub port: Option<u16>,
    pub runtime: Option<String>,
    pub debug: bool,
    pub version: bool,
    pub compile: Option<String>,
    pub env: Option<String>,
}

impl Flags {
    /// Accepts `-flag`, `--flag`, `--flag value` and `--flag=value`.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Flags, StartupError> {
        Flags::read(args).map_err(StartupError::Flag)
    }

    fn read<I: IntoIterator<Item = String>>(args: I) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!("unexpected argument '{arg}'"));
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let mut value = |what: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("-{name} needs {what}"))
            };
            match name {
                "port" => {
                    let v = value("a port number")?;
                    flags.port = Some(v.parse().map_err(|_| format!("bad port '{v}'"))?);
                }
                "runtime" => flags.runtime = Some(value(&Language::names())?),
                "compile" => flags.compile = Some(value("the name of the main function")?),
                "env" => flags.env = Some(value("a JSON object")?),
                "debug" => flags.debug = true,
                "version" => flags.version = true,
                _ => return Err(format!("unknown flag '{arg}'")),
            }
        }
        Ok(flags)
    }
}

/// Size limits that keep a hostile or broken input from exhausting memory or disk.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (`OW_MAX_REQUEST_BYTES`); beyond it, 413.
    pub request_bytes: u64,
    /// Largest total unpacked size of an archive (`OW_MAX_UNPACKED_BYTES`).
    pub unpacked_bytes: u64,
    /// Most entries in an archive (`OW_MAX_ARCHIVE_ENTRIES`).
    pub archive_entries: u64,
    /// Largest ratio of unpacked to packed size (`OW_MAX_COMPRESSION_RATIO`), checked once the
    /// unpacked size passes 16 MiB, so that small, very compressible files stay welcome.
    pub compression_ratio: u64,
    /// Longest answer line from an action (`OW_MAX_RESULT_BYTES`).
    pub result_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_bytes: 128 * MIB,
            unpacked_bytes: 512 * MIB,
            archive_entries: 100_000,
            compression_ratio: 200,
            result_bytes: 64 * MIB,
        }
    }
}

/// How long the HTTP server waits for a client.
#[derive(Debug, Clone)]
pub struct HttpTimeouts {
    /// `OW_HTTP_HEAD_TIMEOUT_SECONDS`: from a request's first byte to the end of its head, and
    /// the longest pause while its body arrives.
    pub head_timeout: Duration,
    /// `OW_HTTP_IDLE_TIMEOUT_SECONDS`: how long a kept-alive connection may wait for its next
    /// request.
    pub idle_timeout: Duration,
}

/// Whether the proxy runs its action itself or takes part in OpenServerless's forward mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// An ActionLoop proxy that runs its action (the default).
    Off,
    /// `OW_ACTIVATE_PROXY_CLIENT`: `/init` and `/run` go on to the server named by `main`.
    Client,
    /// `OW_ACTIVATE_PROXY_SERVER`: holds the actions of many clients, one per code hash.
    Server,
}

/// Forward mode's settings.
#[derive(Debug, Clone)]
pub struct Forward {
    pub mode: ForwardMode,
    /// `OW_DELETE_DURATION` (a Go duration, e.g. `90s`, `1h30m`): how long the server keeps
    /// an action whose last client left while its setup is marked in progress.
    pub delete_after: Duration,
    /// `OW_FORWARD_MAX_ACTIONS`: the most actions a server holds at once.
    pub max_actions: usize,
    /// `OW_FORWARD_CA_FILE`: PEM certificates a client trusts for `https://` besides the
    /// built-in Mozilla roots (a cluster's own CA, say).
    pub ca_file: Option<PathBuf>,
}

/// The proxy's whole configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub runtime: &'static Language,
    /// The interpreter to start: `OW_INTERPRETER`, else the runtime's own, found on the
    /// proxy's `PATH` once, at start, so that an action's `PATH` cannot hide it later.
    pub interpreter: PathBuf,
    pub debug: bool,
    /// `-compile MAIN`: build the action read on stdin instead of serving.
    pub compile: Option<String>,
    /// `-env JSON`: the environment of `-compile`'s compiler and installers, parsed at start.
    pub compile_env: Vec<(String, String)>,
    /// `OW_WAIT_FOR_ACK`, as set: executables must answer `{"ok":true}` before `/init`
    /// succeeds, and they see the value as `__OW_WAIT_FOR_ACK`.
    pub wait_for_ack: Option<String>,
    /// `OW_EXECUTION_ENV`: what an executable zip's `exec.env` must say.
    pub execution_env: Option<String>,
    /// `OW_LOG_INIT_ERROR`: fixed `/init` error texts, the cause only in the logs.
    pub log_init_error: bool,
    /// `OW_COMPILER`: the build step for non-executable code.
    pub compiler: Option<PathBuf>,
    /// `PATH`, the one variable of the proxy's own that a compiler gets besides the action's.
    pub path: Option<String>,
    /// The proxy's own `__OW_*` variables (e.g. `__OW_API_HOST`), which every action and
    /// compiler gets, as the Go proxy passes them on.
    pub ow_vars: Vec<(String, String)>,
    /// `OW_CONCURRENCY` (or `__OW_ALLOW_CONCURRENT` with no number: 4): children per action.
    pub concurrency: usize,
    /// `OW_ENFORCE_DEADLINE`: kill an activation whose `deadline` has passed.
    pub enforce_deadline: bool,
    /// `OW_SHUTDOWN_GRACE_SECONDS`: how long SIGTERM waits for a running activation.
    pub shutdown_grace: Duration,
    /// `OW_PREWARM` (default on): start the interpreter before `/init` arrives.
    pub prewarm: bool,
    /// `OW_PRELOAD`: modules the launcher loads before any code arrives (comma-separated;
    /// Python import names, Node.js packages, PHP files). The launcher reads it itself.
    pub preload: Option<String>,
    /// `OW_ENABLE_INIT_INSTALL` (default on): install an action's declared dependencies at
    /// `/init` when it does not bundle them, for at most `OW_INIT_INSTALL_TIMEOUT_SECONDS`.
    pub init_install: bool,
    pub init_install_timeout: Duration,
    /// Whether the proxy may give its Python children allocator tunables: only when the
    /// environment sets no `GLIBC_TUNABLES` of its own.
    pub tune_child_malloc: bool,
    pub limits: Limits,
    pub http: HttpTimeouts,
    /// `OW_ACTION_MODE`: what kind of action the container holds.
    pub mode: Mode,
    /// `OW_BLACKBOX_EXEC` (default `/action/exec`): a black box's executable.
    pub blackbox_exec: PathBuf,
    /// `PROXY_ALLOW_REINIT`: a black box accepts a second `/init`.
    pub allow_reinit: bool,
    /// `OW_PLATFORM` (or `__OW_RUNTIME_PLATFORM`, the Node.js runtime's name): who calls.
    pub platform: Platform,
    /// An action that came with the image, initialised at start: `__OW_ACTION_CODE` (with
    /// `__OW_ACTION_MAIN`, `__OW_ACTION_BINARY`, `__OW_ACTION_NAME`) or `OW_ACTION_FILE`.
    pub baked: Option<Baked>,
    /// `__OW_ACTION_RAW`: a web action on the single entrypoint gets its HTTP body raw.
    pub action_raw: bool,
    /// `RUST_LOG`: the level of the proxy's own log lines when not `-debug`.
    pub log_level: Option<String>,
    /// Where `action/<n>` folders go: the working directory at start.
    pub workdir: PathBuf,
    pub forward: Forward,
}

impl Settings {
    /// Settings from the flags, the process environment and the working directory.
    pub fn load(flags: Flags) -> Result<Settings, StartupError> {
        let workdir = std::env::current_dir()
            .map_err(|e| StartupError::Io("no working directory".into(), e))?;
        let env = std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        });
        Settings::from_env(flags, env, workdir)
    }

    /// Settings from the flags, an environment (the process's, or a test's) and the folder
    /// that holds the action folders.
    pub fn from_env(
        flags: Flags,
        env: impl IntoIterator<Item = (String, String)>,
        workdir: PathBuf,
    ) -> Result<Settings, StartupError> {
        Settings::read(flags, env.into_iter().collect(), workdir).map_err(StartupError::Setting)
    }

    fn read(
        flags: Flags,
        env: BTreeMap<String, String>,
        workdir: PathBuf,
    ) -> Result<Settings, String> {
        let vars = Vars(&env);
        let var = |name: &str| vars.get(name);
        let runtime_name = flags
            .runtime
            .clone()
            .or_else(|| var("OW_RUNTIME"))
            .unwrap_or_else(|| "python".into());
        let runtime = Language::find(&runtime_name)
            .ok_or_else(|| format!("unknown runtime '{runtime_name}' ({})", Language::names()))?;
        let defaults = Limits::default();
        let limits = Limits {
            request_bytes: vars.number("OW_MAX_REQUEST_BYTES", defaults.request_bytes, 256)?,
            unpacked_bytes: vars.number("OW_MAX_UNPACKED_BYTES", defaults.unpacked_bytes, 4096)?,
            archive_entries: vars.number("OW_MAX_ARCHIVE_ENTRIES", defaults.archive_entries, 1)?,
            compression_ratio: vars.number(
                "OW_MAX_COMPRESSION_RATIO",
                defaults.compression_ratio,
                1,
            )?,
            // Room for an ack with a line of cause.
            result_bytes: vars.number("OW_MAX_RESULT_BYTES", defaults.result_bytes, 256)?,
        };
        let concurrency = match var("__OW_ALLOW_CONCURRENT") {
            _ if var("OW_CONCURRENCY").is_some() => vars.number("OW_CONCURRENCY", 1, 1)?,
            Some(v) if v.trim().parse::<u64>().is_ok() => {
                vars.number("__OW_ALLOW_CONCURRENT", 1, 1)?
            }
            Some(_) if vars.flag("__OW_ALLOW_CONCURRENT", false)? => 4,
            _ => 1,
        };
        if concurrency > 256 {
            return Err(format!("OW_CONCURRENCY is at most 256, not {concurrency}"));
        }
        let concurrency = concurrency as usize;
        // On, its value itself reaches the action, as the Go proxy passes it.
        let wait_for_ack = match vars.flag("OW_WAIT_FOR_ACK", false)? {
            true => var("OW_WAIT_FOR_ACK"),
            false => None,
        };
        // A baked action's code is no variable for the action: it may be megabytes, more
        // than a process may be given.
        let ow_vars = env
            .iter()
            .filter(|(k, _)| k.starts_with("__OW_") && k.as_str() != "__OW_ACTION_CODE")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let settings = Settings {
            port: flags.port.unwrap_or(8080),
            runtime,
            interpreter: find_program(
                &var("OW_INTERPRETER").unwrap_or_else(|| runtime.interpreter.into()),
                env.get("PATH").map(String::as_str),
            ),
            debug: flags.debug,
            compile: flags.compile,
            compile_env: match &flags.env {
                Some(json) => {
                    crate::request::parse_env(json).map_err(|e| format!("-env: {}", e.message()))?
                }
                None => Vec::new(),
            },
            wait_for_ack,
            execution_env: var("OW_EXECUTION_ENV"),
            log_init_error: vars.flag("OW_LOG_INIT_ERROR", false)?,
            compiler: var("OW_COMPILER").map(PathBuf::from),
            path: env.get("PATH").cloned(),
            ow_vars,
            concurrency,
            enforce_deadline: vars.flag("OW_ENFORCE_DEADLINE", false)?,
            shutdown_grace: Duration::from_secs(vars.number("OW_SHUTDOWN_GRACE_SECONDS", 10, 0)?),
            prewarm: vars.flag("OW_PREWARM", true)?,
            preload: var("OW_PRELOAD").filter(|v| !v.trim().is_empty()),
            init_install: vars.flag("OW_ENABLE_INIT_INSTALL", true)?,
            init_install_timeout: Duration::from_secs(vars.number(
                "OW_INIT_INSTALL_TIMEOUT_SECONDS",
                120,
                1,
            )?),
            tune_child_malloc: !env.contains_key("GLIBC_TUNABLES"),
            limits,
            http: HttpTimeouts {
                head_timeout: Duration::from_secs(vars.number(
                    "OW_HTTP_HEAD_TIMEOUT_SECONDS",
                    30,
                    1,
                )?),
                idle_timeout: Duration::from_secs(vars.number(
                    "OW_HTTP_IDLE_TIMEOUT_SECONDS",
                    300,
                    1,
                )?),
            },
            mode: match var("OW_ACTION_MODE").map(|m| m.trim().to_ascii_lowercase()) {
                None => Mode::ActionLoop,
                Some(m) if m == "actionloop" => Mode::ActionLoop,
                Some(m) if m == "blackbox" => Mode::Blackbox,
                Some(m) => {
                    return Err(format!(
                        "OW_ACTION_MODE must be actionloop or blackbox, not '{m}'"
                    ));
                }
            },
            blackbox_exec: var("OW_BLACKBOX_EXEC")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/action/exec")),
            // The Docker skeleton's own variable: it allows a re-init when "1" and refuses one
            // otherwise, whatever it says; our other words for yes count too.
            allow_reinit: vars.get("PROXY_ALLOW_REINIT").is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            }),
            platform: platform(&vars)?,
            baked: baked(&vars)?,
            action_raw: vars.flag("__OW_ACTION_RAW", false)?,
            log_level: var("RUST_LOG"),
            workdir,
            forward: forward(&vars)?,
        };
        // A forward end serves no action of its own: it cannot also be a black box, the
        // single entrypoint or an image with its action baked in.
        if settings.forward.mode != ForwardMode::Off {
            let other = if settings.mode == Mode::Blackbox {
                Some("OW_ACTION_MODE=blackbox")
            } else if matches!(settings.platform, Platform::Knative { .. }) {
                Some("OW_PLATFORM=knative")
            } else if settings.baked.is_some() {
                Some("a baked action (__OW_ACTION_CODE, OW_ACTION_FILE)")
            } else {
                None
            };
            if let Some(other) = other {
                return Err(format!("forward mode cannot be combined with {other}"));
            }
        }
        Ok(settings)
    }

    /// The folder holding the `action/<n>` folders and the launchers.
    pub fn action_root(&self) -> PathBuf {
        self.workdir.join("action")
    }
}

/// What kind of action the container holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A long-lived child speaking ActionLoop (the default).
    ActionLoop,
    /// An executable started for every activation (the Docker skeleton's protocol).
    Blackbox,
}

/// An action that came with the image.
#[derive(Debug, Clone)]
pub struct Baked {
    pub code: BakedCode,
    pub main: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub enum BakedCode {
    /// Source text.
    Text(String),
    /// Base64 of an archive (or of any code).
    Base64(String),
    /// A file or a folder in the image.
    Path(PathBuf),
}

fn baked(vars: &Vars) -> Result<Option<Baked>, String> {
    let code = match (vars.get("__OW_ACTION_CODE"), vars.get("OW_ACTION_FILE")) {
        (Some(_), Some(_)) => {
            return Err("__OW_ACTION_CODE and OW_ACTION_FILE name two actions: set one".into());
        }
        (Some(code), None) if vars.flag("__OW_ACTION_BINARY", false)? => BakedCode::Base64(code),
        (Some(code), None) => BakedCode::Text(code),
        (None, Some(path)) => BakedCode::Path(PathBuf::from(path)),
        (None, None) => return Ok(None),
    };
    Ok(Some(Baked {
        code,
        main: vars
            .get("__OW_ACTION_MAIN")
            .unwrap_or_else(|| "main".into()),
        name: vars.get("__OW_ACTION_NAME"),
    }))
}

/// Who calls the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// OpenWhisk's invoker: `POST /init`, `POST /run`.
    OpenWhisk,
    /// A single entrypoint, `/`, with init and activation in its body; the methods it takes.
    Knative { methods: Vec<String> },
}

fn platform(vars: &Vars) -> Result<Platform, String> {
    let named = vars
        .get("OW_PLATFORM")
        .or_else(|| vars.get("__OW_RUNTIME_PLATFORM"));
    match named.map(|p| p.trim().to_ascii_lowercase()).as_deref() {
        None | Some("openwhisk") => Ok(Platform::OpenWhisk),
        Some("knative") => {
            // `[GET,POST]`, `GET,POST` or one name; the Node.js runtime's default is POST.
            let listed = vars
                .get("__OW_HTTP_METHODS")
                .unwrap_or_else(|| "POST".into());
            let mut methods = Vec::new();
            for m in listed.trim_matches(|c| c == '[' || c == ']').split(',') {
                let m = m.trim().trim_matches('"').to_ascii_uppercase();
                match m.as_str() {
                    "" => {}
                    "GET" | "POST" | "PUT" | "DELETE" | "OPTIONS" => methods.push(m),
                    _ => return Err(format!("__OW_HTTP_METHODS names an unknown method '{m}'")),
                }
            }
            if methods.is_empty() {
                methods.push("POST".into());
            }
            Ok(Platform::Knative { methods })
        }
        Some(other) => Err(format!(
            "OW_PLATFORM must be openwhisk or knative, not '{other}'"
        )),
    }
}

/// The environment, read with the project's rules: an empty variable is an unset one.
struct Vars<'a>(&'a BTreeMap<String, String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A whole number of at least `min`: a setting too small to work is refused at start.
    fn number(&self, name: &str, default: u64, min: u64) -> Result<u64, String> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: u64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not '{v}'"))?;
        if n < min {
            return Err(format!("{name} must be at least {min}, not {n}"));
        }
        Ok(n)
    }

    /// On or off: 1/0, true/false, yes/no, on/off, in any case.
    fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(format!(
                "{name} must be one of 1, 0, true, false, yes, no, on, off, not '{v}'"
            )),
        }
    }
}

/// The forward mode's settings; both ends at once is refused, as a mistake nobody means.
fn forward(vars: &Vars) -> Result<Forward, String> {
    let client = vars.flag("OW_ACTIVATE_PROXY_CLIENT", false)?;
    let server = vars.flag("OW_ACTIVATE_PROXY_SERVER", false)?;
    let mode = match (client, server) {
        (false, false) => ForwardMode::Off,
        (true, false) => ForwardMode::Client,
        (false, true) => ForwardMode::Server,
        (true, true) => {
            return Err(
                "OW_ACTIVATE_PROXY_CLIENT and OW_ACTIVATE_PROXY_SERVER cannot both be on".into(),
            );
        }
    };
    let delete_after = match vars.get("OW_DELETE_DURATION") {
        None => Duration::from_secs(10 * 60),
        Some(text) => go_duration(text.trim()).ok_or_else(|| {
            format!("OW_DELETE_DURATION must be a duration such as 90s or 1h30m, not '{text}'")
        })?,
    };
    Ok(Forward {
        mode,
        delete_after,
        max_actions: vars.number("OW_FORWARD_MAX_ACTIONS", 16, 1)? as usize,
        ca_file: vars.get("OW_FORWARD_CA_FILE").map(PathBuf::from),
    })
}

/// A duration as Go's `time.ParseDuration` reads it, the format the fork documents for
/// `OW_DELETE_DURATION`: an optional sign, then numbers with an optional fraction, each with
/// a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), or a bare `0`. A negative one is none.
fn go_duration(text: &str) -> Option<Duration> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = tail;
    }
    if negative {
        return Some(Duration::ZERO);
    }
    Duration::try_from_secs_f64(total).ok()
}

/// `name` as the shell would find it on `path`; as it is when it names a path, or when it is
/// not found (starting it then fails with a clear error).
fn find_program(name: &str, path: Option<&str>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let executable = |p: &PathBuf| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    path.unwrap_or_default()
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(dir).join(name))
        .find(executable)
        .unwrap_or_else(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, StartupError> {
        Flags::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn programs_are_found_on_path_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("tool");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());
        // Not executable: not a program.
        assert_eq!(find_program("tool", Some(&path)), PathBuf::from("tool"));
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("tool", Some(&path)), program);
        assert_eq!(find_program("tool", None), PathBuf::from("tool"));
        assert_eq!(
            find_program("./x/tool", Some(&path)),
            PathBuf::from("./x/tool")
        );
    }

    #[test]
    fn go_durations_read_as_the_fork_documents_them() {
        let secs = |s: f64| Some(Duration::from_secs_f64(s));
        assert_eq!(go_duration("10m"), secs(600.0));
        assert_eq!(go_duration("300ms"), secs(0.3));
        assert_eq!(go_duration("2h45m"), secs(9900.0));
        assert_eq!(go_duration("1.5h"), secs(5400.0));
        assert_eq!(go_duration("+1s"), secs(1.0));
        assert_eq!(go_duration("-1.5h"), Some(Duration::ZERO));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("1µs"), Some(Duration::from_micros(1)));
        assert_eq!(go_duration("5ns"), Some(Duration::from_nanos(5)));
        for bad in ["", "10", "1x", "m", "1..5s", "s1", "-", "1h 2m"] {
            assert_eq!(go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn forward_mode_is_one_end_or_none() {
        let load = |env: &[(&str, &str)]| {
            let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            Settings::from_env(Flags::default(), env, PathBuf::from("/"))
        };
        let s = load(&[]).unwrap();
        assert_eq!(s.forward.mode, ForwardMode::Off);
        assert_eq!(s.forward.delete_after, Duration::from_secs(600));
        assert_eq!(s.forward.max_actions, 16);
        let client = load(&[("OW_ACTIVATE_PROXY_CLIENT", "1")]).unwrap();
        assert_eq!(client.forward.mode, ForwardMode::Client);
        let server = load(&[
            ("OW_ACTIVATE_PROXY_SERVER", "1"),
            ("OW_DELETE_DURATION", "90s"),
            ("OW_FORWARD_MAX_ACTIONS", "2"),
        ])
        .unwrap();
        assert_eq!(server.forward.mode, ForwardMode::Server);
        assert_eq!(server.forward.delete_after, Duration::from_secs(90));
        assert_eq!(server.forward.max_actions, 2);
        for bad in [
            &[
                ("OW_ACTIVATE_PROXY_CLIENT", "1"),
                ("OW_ACTIVATE_PROXY_SERVER", "1"),
            ][..],
            &[("OW_DELETE_DURATION", "ten minutes")],
            &[("OW_FORWARD_MAX_ACTIONS", "0")],
            // A forward end holds no action of its own.
            &[
                ("OW_ACTIVATE_PROXY_CLIENT", "1"),
                ("OW_ACTION_MODE", "blackbox"),
            ],
            &[
                ("OW_ACTIVATE_PROXY_SERVER", "1"),
                ("OW_PLATFORM", "knative"),
            ],
            &[
                ("OW_ACTIVATE_PROXY_CLIENT", "1"),
                ("__OW_ACTION_CODE", "def main(a): return a"),
            ],
        ] {
            assert!(load(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_take_one_or_two_dashes_and_inline_values() {
        let f = parse(&[
            "-debug",
            "--port",
            "9000",
            "-runtime=nodejs",
            "--compile",
            "main",
        ])
        .unwrap();
        assert!(f.debug);
        assert_eq!(f.port, Some(9000));
        assert_eq!(f.runtime.as_deref(), Some("nodejs"));
        assert_eq!(f.compile.as_deref(), Some("main"));
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["stray"]).is_err());
    }

    #[test]
    fn environment_fills_in_what_flags_leave() {
        let vars = || {
            [
                ("OW_RUNTIME", "php"),
                ("OW_MAX_RESULT_BYTES", "2000"),
                ("__OW_ALLOW_CONCURRENT", "true"),
                ("__OW_API_HOST", "https://host=1"),
                ("PATH", "/bin"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec()
        };
        let load =
            |flags, env: Vec<(String, String)>| Settings::from_env(flags, env, PathBuf::from("/"));
        let s = load(Flags::default(), vars()).unwrap();
        assert_eq!(s.runtime.name, "php");
        assert_eq!(s.limits.result_bytes, 2000);
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.port, 8080);
        assert_eq!(s.path.as_deref(), Some("/bin"));

        assert!(
            s.ow_vars
                .contains(&("__OW_API_HOST".into(), "https://host=1".into()))
        );
        let flags = Flags {
            runtime: Some("python".into()),
            ..Flags::default()
        };
        assert_eq!(load(flags, vars()).unwrap().runtime.name, "python");
        for (name, value) in [
            ("OW_MAX_REQUEST_BYTES", "lots"),
            ("OW_MAX_RESULT_BYTES", "10"),
            ("OW_CONCURRENCY", "0"),
            ("OW_CONCURRENCY", "1000"),
            ("OW_PREWARM", "maybe"),
            ("OW_LOG_INIT_ERROR", "2"),
        ] {
            let bad = vec![(name.to_string(), value.to_string())];
            let error = load(Flags::default(), bad).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
        for (value, on) in [
            ("1", true),
            ("TRUE", true),
            ("Yes", true),
            ("on", true),
            ("0", false),
            ("false", false),
            ("NO", false),
            ("off", false),
            ("", false),
        ] {
            let env = vec![("OW_ENFORCE_DEADLINE".to_string(), value.to_string())];
            assert_eq!(
                load(Flags::default(), env).unwrap().enforce_deadline,
                on,
                "{value}"
            );
        }
        let ack = vec![("OW_WAIT_FOR_ACK".to_string(), "true".to_string())];
        assert_eq!(
            load(Flags::default(), ack).unwrap().wait_for_ack.as_deref(),
            Some("true")
        );
        let no_ack = vec![("OW_WAIT_FOR_ACK".to_string(), "off".to_string())];
        assert_eq!(load(Flags::default(), no_ack).unwrap().wait_for_ack, None);
    }
}
