//! Every failure the proxy answers or stops for, and the one place where each gets its HTTP
//! status and its exact text: [`ProxyError`] for requests (with the `OW_LOG_INIT_ERROR`
//! wording of `/init` failures), [`HttpError`] for requests that are not HTTP, the words of
//! the child and package errors, and [`StartupError`] for a proxy that cannot start.

use std::fmt;
use std::path::Path;

use crate::child::{ChildError, Exit};
use crate::install::InstallError;
use crate::package::PackageError;

/// The texts the invoker and the OpenWhisk test suites compare against.
pub const ALREADY_INITIALIZED: &str = "Cannot initialize the action more than once.";
pub const MISSING_CODE: &str = "Missing main/no code to execute.";
pub const CANNOT_LOCATE: &str =
    "The action failed to generate or locate a binary. See logs for details.";
pub const CANNOT_START: &str = "Cannot start action. Check logs for details.";
pub const NOT_A_DICTIONARY: &str = "The action did not return a dictionary or array.";
pub const NO_ACTION: &str = "no action defined yet";
pub const BAD_ACK: &str = "The action did not initialize properly.";
pub const EXITED_DURING_INIT: &str = "Command exited abruptly during initialization.";
pub const ENV_MISMATCH: &str = "Execution environment version mismatch. See logs for details.";
/// The Docker skeleton's texts (black-box mode).
pub const BLACKBOX_NO_BINARY: &str = "The action failed to locate a binary. See logs for details.";
pub const BLACKBOX_BAD_ARGUMENT: &str =
    "The action did not receive a dictionary or array as an argument.";

/// Forward mode's texts, as the OpenServerless fork of the Go proxy words them
/// (`openwhisk/forward_proxy.go`, `initHandler.go`, `runHandler.go`, `stopHandler.go`,
/// `resetHandler.go` in apache/openserverless-runtimes).
pub const SEND_INIT_FIRST: &str = "Send init first";
pub const BAD_MAIN: &str =
    "invalid value for --main flag. Must be in the form of <main>@<proxy> or @<proxy>";
pub const INIT_NOT_FORWARDED: &str = "Error forwarding init request. Check logs for details.";
pub const RUN_NOT_FORWARDED: &str = "Error forwarding run request. Check logs for details.";
pub const MISSING_HASH: &str = "Cannot identify the action in remote runtime (missing hash).";
pub const MISSING_ID: &str = "Missing action id from client.";
pub const NO_HASH: &str = "Action code hash not provided from client";
pub const REMOTE_NOT_FOUND: &str = "Action not found in remote runtime. Check logs for details.";
pub const STOP_NOT_FOUND: &str =
    "Action to be removed in remote runtime not found. Check logs for details.";
pub const STOP_NOT_SERVER: &str = "Stop is only supported in server mode";
pub const NO_SERVER_DATA: &str = "Server proxy data not initialized";
pub const RESET_NOT_SERVER: &str = "Reset allowed only in server mode";
/// The fork's server words a result that is no object or array in its own way (`doServerModeRun`
/// in `runHandler.go`), not as the invoker-facing proxy does.
pub const REMOTE_NOT_A_DICTIONARY: &str = "the action did not return a dictionary or array";

#[derive(Debug)]
pub enum ProxyError {
    /// A second `/init` after a successful one.
    AlreadyInitialized,
    /// The request is not what the protocol says.
    BadRequest(String),
    /// The request could not be read as HTTP/1.1.
    Http(HttpError),
    /// The request body is over `OW_MAX_REQUEST_BYTES`.
    TooLarge(u64),
    /// `/init` without code.
    MissingCode,
    /// The code package could not be decoded or unpacked.
    Package(PackageError),
    /// The action's files could not be written (a full disk, most likely).
    Storage(String, std::io::ErrorKind),
    /// The entry point cannot be found or built.
    Locate(String),
    /// The action failed while loading.
    Start(String),
    /// A fixed `/init` failure text of the Go proxy (ack, exec env), and the detail.
    InitFailed(&'static str, String),
    /// An `/init` failure in the Go proxy's words (`OW_LOG_INIT_ERROR`): one of its two fixed
    /// texts, the cause told in the logs only.
    Fixed(&'static str),
    /// `/run` before a successful `/init`.
    NoAction,
    /// A black box's `/run` whose `value` is neither an object nor an array.
    BadArgument,
    /// An init on the single entrypoint of a container whose action came with the image.
    DedicatedRuntime,
    /// A run on the single entrypoint before any init (the Node.js runtime's words).
    NotInitialized,
    /// A method the single entrypoint does not take (`__OW_HTTP_METHODS`).
    MethodNotAllowed(String),
    /// The action answered something other than an object or array.
    NotADictionary,
    /// The action's answer could not be used (too long, not serialisable, past its deadline).
    BadAnswer(String),
    /// The action process died during the activation.
    Exited(String),
    /// Forward mode, either end.
    Forward(ForwardError),
    /// No such route.
    NotFound,
    /// The proxy itself failed (disk full, cannot spawn).
    Internal(String),
}

impl ProxyError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::AlreadyInitialized
            | ProxyError::MissingCode
            | ProxyError::DedicatedRuntime
            | ProxyError::NotInitialized => 403,
            ProxyError::MethodNotAllowed(_) => 405,
            ProxyError::BadRequest(_) | ProxyError::Package(_) | ProxyError::Exited(_) => 400,
            ProxyError::Http(e) => e.status(),
            ProxyError::TooLarge(_) => 413,
            ProxyError::Locate(_)
            | ProxyError::Start(_)
            | ProxyError::InitFailed(..)
            | ProxyError::Fixed(_)
            | ProxyError::NotADictionary
            | ProxyError::BadAnswer(_) => 502,
            ProxyError::Storage(_, kind) => match kind {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => 507,
                _ => 500,
            },
            ProxyError::NoAction | ProxyError::Internal(_) => 500,
            ProxyError::Forward(e) => e.status(),
            ProxyError::NotFound | ProxyError::BadArgument => 404,
        }
    }

    pub fn message(&self) -> String {
        let with_detail = |fixed: &str, detail: &str| {
            if detail.is_empty() {
                fixed.to_string()
            } else {
                format!("{fixed} {detail}")
            }
        };
        match self {
            ProxyError::AlreadyInitialized => ALREADY_INITIALIZED.into(),
            ProxyError::BadRequest(why) => why.clone(),
            ProxyError::Http(e) => e.to_string(),
            ProxyError::TooLarge(limit) => {
                format!("The request body is larger than {limit} bytes (OW_MAX_REQUEST_BYTES).")
            }
            ProxyError::MissingCode => MISSING_CODE.into(),
            ProxyError::Package(e) => format!("Invalid action package: {e}."),
            ProxyError::Storage(why, _) => format!("Cannot store the action: {why}."),
            ProxyError::Locate(detail) => with_detail(CANNOT_LOCATE, detail),
            ProxyError::Start(detail) => with_detail(CANNOT_START, detail),
            // As the Go proxy words a start failure without OW_LOG_INIT_ERROR, and as SPEC
            // section 2 wants every start failure to begin.
            ProxyError::InitFailed(fixed, detail) => {
                with_detail(CANNOT_START, &with_detail(fixed, detail))
            }
            ProxyError::Fixed(text) => (*text).into(),
            ProxyError::NoAction => NO_ACTION.into(),
            ProxyError::BadArgument => BLACKBOX_BAD_ARGUMENT.into(),
            ProxyError::DedicatedRuntime => {
                "Cannot initialize a runtime with a dedicated function.".into()
            }
            ProxyError::NotInitialized => "System not initialized.".into(),
            ProxyError::MethodNotAllowed(allowed) => {
                format!("This action takes {allowed} (__OW_HTTP_METHODS).")
            }
            ProxyError::NotADictionary => NOT_A_DICTIONARY.into(),
            ProxyError::BadAnswer(why) => why.clone(),
            ProxyError::Exited(why) => why.clone(),
            ProxyError::Forward(e) => e.to_string(),
            ProxyError::NotFound => "Not found: the proxy serves POST /init and POST /run.".into(),
            ProxyError::Internal(why) => format!("Internal proxy error: {why}"),
        }
    }

    /// Which of the Go proxy's two `/init` failure texts this error falls under: building or
    /// locating the action (unpacking included), or starting it. `None` for a request refused
    /// at the door (already initialised, not JSON, no code, not base64), which the Go proxy
    /// also answers with its own words.
    fn init_stage(&self) -> Option<&'static str> {
        match self {
            ProxyError::Package(PackageError::Base64(_)) => None,
            ProxyError::Package(_) | ProxyError::Storage(..) | ProxyError::Locate(_) => {
                Some(CANNOT_LOCATE)
            }
            ProxyError::Start(_) | ProxyError::InitFailed(..) => Some(CANNOT_START),
            _ => None,
        }
    }

    /// How `/init` answers this error: with its cause, or, with `OW_LOG_INIT_ERROR`, exactly
    /// as the Go proxy does (`initHandler.go`): one fixed text per stage, status 502.
    pub fn worded_for_init(self, log_init_error: bool) -> ProxyError {
        match self.init_stage() {
            Some(text) if log_init_error => ProxyError::Fixed(text),
            _ => self,
        }
    }

    /// Whether this `/init` failure is the action's: one that reached its build or start (and
    /// with `OW_LOG_INIT_ERROR` also a package that cannot be unpacked, as in the Go proxy),
    /// whose logs end with the cause and a sentinel on each stream. A request refused at the
    /// door is nobody's activation.
    pub fn is_actions_fault(&self, log_init_error: bool) -> bool {
        match self {
            ProxyError::Package(PackageError::Base64(_)) => false,
            ProxyError::Package(_) => log_init_error,
            other => other.init_stage().is_some(),
        }
    }

    /// The cause as the logs tell it: without the fixed text that points to the logs.
    pub fn cause(&self) -> String {
        match self {
            ProxyError::Locate(detail) | ProxyError::Start(detail) if !detail.is_empty() => {
                detail.clone()
            }
            ProxyError::InitFailed(fixed, detail) => format!("{fixed} {detail}").trim().into(),
            other => other.message(),
        }
    }

    /// The JSON body `{"error": "..."}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self.message() }))
            .unwrap_or_else(|_| b"{\"error\":\"unprintable error\"}".to_vec())
    }
}

/// The named failures of bringing an action up and of running it.
impl ProxyError {
    /// A request that is not what the protocol says; `which` is `/init` or `/run`.
    pub fn invalid(which: &str, what: impl fmt::Display) -> ProxyError {
        ProxyError::BadRequest(format!("Invalid {which} request: {what}"))
    }

    /// A file or folder of the action that could not be made.
    pub fn storage(what: &Path, error: std::io::Error) -> ProxyError {
        ProxyError::Storage(format!("{}: {error}", what.display()), error.kind())
    }

    /// The process could not be started at all.
    pub fn cannot_run(program: &Path, error: std::io::Error) -> ProxyError {
        ProxyError::Start(format!("cannot run {}: {error}", program.display()))
    }

    /// Our launcher went away before (or while) it loaded the action.
    pub fn launcher_gone(error: ChildError, loading: bool) -> ProxyError {
        let when = if loading { "while" } else { "before" };
        match error {
            ChildError::Exited(exit) => ProxyError::Start(format!(
                "the interpreter exited ({exit}) {when} loading the action"
            )),
            other => ProxyError::Start(other.to_string()),
        }
    }

    /// Our launcher's ack was not one.
    pub fn launcher_answered(line: &[u8]) -> ProxyError {
        ProxyError::Start(format!(
            "the launcher answered {}",
            String::from_utf8_lossy(line)
        ))
    }

    /// Our launcher could not load the action: it could not find it (`locate`), or the code
    /// failed (anything else).
    pub fn launcher_refused(kind: Option<&str>, cause: String) -> ProxyError {
        match kind {
            Some("locate") => ProxyError::Locate(cause),
            _ => ProxyError::Start(cause),
        }
    }

    /// An executable asked to ack (`OW_WAIT_FOR_ACK`) did not: it ended, or its channel failed.
    pub fn no_ack(error: ChildError) -> ProxyError {
        match error {
            ChildError::Exited(exit) => ProxyError::exited_during_init(exit),
            other => ProxyError::InitFailed(BAD_ACK, other.to_string()),
        }
    }

    /// An executable's ack that is not `{"ok":true}`.
    pub fn bad_ack(line: &[u8]) -> ProxyError {
        ProxyError::InitFailed(
            BAD_ACK,
            format!("It answered: {}", String::from_utf8_lossy(line)),
        )
    }

    pub fn exited_during_init(exit: Exit) -> ProxyError {
        ProxyError::InitFailed(EXITED_DURING_INIT, format!("({exit})"))
    }

    /// `OW_EXECUTION_ENV` and the action's `exec.env` disagree.
    pub fn env_mismatch(expected: &str, found: &str) -> ProxyError {
        ProxyError::InitFailed(
            ENV_MISMATCH,
            format!("Expected '{expected}', the action says '{found}'."),
        )
    }

    pub fn cannot_make_executable(path: &Path, error: std::io::Error) -> ProxyError {
        ProxyError::Locate(format!(
            "cannot make {} executable: {error}",
            path.display()
        ))
    }

    pub fn compiler_cannot_run(compiler: &Path, error: std::io::Error) -> ProxyError {
        ProxyError::Locate(format!("cannot run {}: {error}", compiler.display()))
    }

    /// A compiler that printed anything has failed, as in the Go proxy: what it printed.
    pub fn compiler_said(printed: &str) -> ProxyError {
        ProxyError::Locate(printed.to_string())
    }

    pub fn compiler_failed(status: std::process::ExitStatus) -> ProxyError {
        ProxyError::Locate(format!("the compiler failed ({status}) without saying why"))
    }

    pub fn compiler_left_nothing(exec: &Path) -> ProxyError {
        ProxyError::Locate(format!("the compiler left no {}", exec.display()))
    }

    /// The activation's deadline (`OW_ENFORCE_DEADLINE`) passed: with its child running, or
    /// while it waited for one.
    pub fn deadline(while_queued: bool) -> ProxyError {
        ProxyError::BadAnswer(if while_queued {
            "The activation's deadline passed while it waited for the action to be free.".into()
        } else {
            "The action did not answer before its deadline and was stopped.".into()
        })
    }

    /// The proxy is stopping, or a pool lost track of its children: never the client's doing.
    pub fn internal(why: impl fmt::Display) -> ProxyError {
        ProxyError::Internal(why.to_string())
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Exited(exit) => write!(f, "command exited ({exit})"),
            ChildError::TooLong(limit) => write!(
                f,
                "the action's answer is longer than {limit} bytes (OW_MAX_RESULT_BYTES)"
            ),
            ChildError::Io(e) => write!(f, "cannot talk to the action: {e}"),
        }
    }
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::Base64(e) => write!(f, "the code is not valid base64: {e}"),
            PackageError::Corrupt { format, detail } => {
                write!(f, "the {format} archive is corrupt: {detail}")
            }
            PackageError::Unsafe { entry, why } => {
                write!(f, "refused archive entry '{entry}': {why}")
            }
            PackageError::TooLarge(what) => write!(f, "the archive is too large: {what}"),
            PackageError::Io { entry, error } => {
                write!(f, "could not write archive entry '{entry}': {error}")
            }
        }
    }
}

impl std::error::Error for PackageError {}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Missing(why) => f.write_str(why),
            InstallError::Failed(what) => write!(f, "installing the dependencies failed: {what}"),
            InstallError::TooSlow(what, limit) => write!(
                f,
                "installing the dependencies took longer than {} s and was stopped \
                 (OW_INIT_INSTALL_TIMEOUT_SECONDS): {what}",
                limit.as_secs()
            ),
        }
    }
}

/// A failure of forward mode, at the client (`OW_ACTIVATE_PROXY_CLIENT`) or at the server
/// (`OW_ACTIVATE_PROXY_SERVER`), in the fork's words where the fork has words for it.
#[derive(Debug)]
pub enum ForwardError {
    /// Client: `/run` before an `/init` went through.
    NoInit,
    /// Client: `main` with more than one `@`.
    BadMain,
    /// Client: `main@` with nothing after the `@`.
    EmptyUrl,
    /// Client: the server's address is no `http://` or `https://` URL with a host.
    BadUrl(String, &'static str),
    /// Client: the `/init` body is not what the fork can read.
    InitBody(String),
    /// Client: the `/run` body is not a JSON object.
    RunBody(String),
    /// Client: the server could not be reached, or its answer read (the cause is logged).
    InitNotForwarded,
    RunNotForwarded,
    /// Server: a body that is not JSON, or not of the protocol's shape.
    Unmarshal(String),
    /// Server: `/init` without `value.env.__OW_CODE_HASH`.
    MissingHash,
    /// Server: a hash that cannot name a folder.
    BadHash,
    /// Server: `/init` without `proxiedActionID`.
    MissingId,
    /// Server: `OW_FORWARD_MAX_ACTIONS` actions are held already.
    Full(usize),
    /// Server: a `/run` or `/stop` body that is not JSON (the fork words both alike).
    RunDecode(String),
    /// Server: `/run` without `actionCodeHash`.
    NoHash,
    /// Server: the action's result is no object or array.
    NotADictionary,
    /// Server: `/run` for a hash it does not hold.
    NotFound,
    /// Server: `/stop` for a hash or a client it does not hold.
    StopNotFound,
    /// Server: `/stop` before any `/init` (the fork's state is made at the first one).
    NoServerData,
    /// `/stop` to a proxy that is no server.
    StopNotServer,
    /// `/reset` (with `-debug`) to a proxy that is no server.
    ResetNotServer,
}

impl ForwardError {
    fn status(&self) -> u16 {
        match self {
            ForwardError::NoInit | ForwardError::NoServerData => 500,
            ForwardError::BadMain
            | ForwardError::EmptyUrl
            | ForwardError::BadUrl(..)
            | ForwardError::InitBody(_)
            | ForwardError::RunBody(_)
            | ForwardError::Unmarshal(_)
            | ForwardError::BadHash
            | ForwardError::RunDecode(_)
            | ForwardError::NoHash => 400,
            ForwardError::InitNotForwarded
            | ForwardError::RunNotForwarded
            | ForwardError::NotADictionary
            | ForwardError::MissingHash
            | ForwardError::MissingId => 502,
            ForwardError::NotFound | ForwardError::StopNotFound => 404,
            ForwardError::Full(_) => 503,
            ForwardError::StopNotServer => 422,
            ForwardError::ResetNotServer => 405,
        }
    }
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::NoInit => f.write_str(SEND_INIT_FIRST),
            ForwardError::BadMain => f.write_str(BAD_MAIN),
            ForwardError::EmptyUrl => f.write_str("empty URL"),
            ForwardError::BadUrl(url, why) => write!(f, "invalid proxy URL '{url}': {why}"),
            ForwardError::InitBody(e) => {
                write!(f, "Error decoding init body while forwarding request: {e}")
            }
            ForwardError::RunBody(e) => {
                write!(f, "Error decoding run body while forwarding request: {e}")
            }
            ForwardError::InitNotForwarded => f.write_str(INIT_NOT_FORWARDED),
            ForwardError::RunNotForwarded => f.write_str(RUN_NOT_FORWARDED),
            ForwardError::Unmarshal(e) => write!(f, "Error unmarshaling request: {e}"),
            ForwardError::MissingHash => f.write_str(MISSING_HASH),
            ForwardError::BadHash => f.write_str(
                "Cannot identify the action in remote runtime (the hash must be 1 to 128 letters, digits, '-' or '_').",
            ),
            ForwardError::MissingId => f.write_str(MISSING_ID),
            ForwardError::Full(n) => write!(
                f,
                "The remote runtime holds {n} actions already (OW_FORWARD_MAX_ACTIONS): stop one first."
            ),
            ForwardError::RunDecode(e) => write!(f, "Error decoding run body: {e}"),
            ForwardError::NoHash => f.write_str(NO_HASH),
            ForwardError::NotADictionary => f.write_str(REMOTE_NOT_A_DICTIONARY),
            ForwardError::NotFound => f.write_str(REMOTE_NOT_FOUND),
            ForwardError::StopNotFound => f.write_str(STOP_NOT_FOUND),
            ForwardError::NoServerData => f.write_str(NO_SERVER_DATA),
            ForwardError::StopNotServer => f.write_str(STOP_NOT_SERVER),
            ForwardError::ResetNotServer => f.write_str(RESET_NOT_SERVER),
        }
    }
}

impl From<ForwardError> for ProxyError {
    fn from(e: ForwardError) -> ProxyError {
        ProxyError::Forward(e)
    }
}

/// Why a request the proxy sent (forward mode's client) got no answer it can use. Logged,
/// never answered: the client answers the fork's fixed texts.
#[derive(Debug)]
pub enum ClientError {
    /// No connection to the server.
    Connect(std::io::Error),
    /// Connecting, or the whole exchange, took longer than it may.
    Timeout(&'static str),
    /// The TLS handshake failed, or the server's name cannot be checked.
    Tls(String),
    /// The connection failed while the request or the answer was on it.
    Io(std::io::Error),
    /// The server closed the connection before its answer was whole.
    Closed,
    /// The answer is not HTTP/1.1 as the client reads it.
    Malformed(String),
    /// The answer is larger than the client holds.
    TooLarge(u64),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot connect: {e}"),
            ClientError::Timeout(what) => write!(f, "{what} took too long"),
            ClientError::Tls(why) => write!(f, "TLS: {why}"),
            ClientError::Io(e) => write!(f, "the connection failed: {e}"),
            ClientError::Closed => {
                f.write_str("the server closed the connection before it answered")
            }
            ClientError::Malformed(what) => write!(f, "the answer is not HTTP/1.1: {what}"),
            ClientError::TooLarge(limit) => write!(f, "the answer is larger than {limit} bytes"),
        }
    }
}

/// Why the proxy cannot start (or stopped serving). A flag or setting that cannot work exits
/// with status 2, anything else with 1.
#[derive(Debug)]
pub enum StartupError {
    /// A flag the proxy does not take, or one without its value.
    Flag(String),
    /// A setting that cannot work, named with its variable.
    Setting(String),
    /// The proxy cannot do what it needs to serve: bind, write its launcher, start its runtime.
    Io(String, std::io::Error),
    /// `-compile` could not build the action.
    Compile(String),
    /// The action baked into the image cannot start.
    Baked(String),
}

impl StartupError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Flag(_) | StartupError::Setting(_) => 2,
            StartupError::Io(..) | StartupError::Compile(_) | StartupError::Baked(_) => 1,
        }
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Flag(why)
            | StartupError::Setting(why)
            | StartupError::Compile(why)
            | StartupError::Baked(why) => f.write_str(why),
            StartupError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// Why a request could not be read as HTTP/1.1. Each is answered, then the connection closes.
#[derive(Debug)]
pub enum HttpError {
    /// The request line or a header is not HTTP.
    Malformed(String),
    /// More header bytes or fields than the proxy reads.
    HeadTooLarge,
    /// A request target longer than the proxy reads.
    TargetTooLong,
    /// A `Transfer-Encoding` other than `chunked`.
    UnsupportedEncoding(String),
    /// A chunked body that is not.
    BadChunk,
    /// The connection ended before the body did.
    Truncated,
    /// The head or the body did not arrive in time.
    Timeout,
}

impl HttpError {
    fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::BadChunk | HttpError::Truncated => 400,
            HttpError::Timeout => 408,
            HttpError::TargetTooLong => 414,
            HttpError::HeadTooLarge => 431,
            HttpError::UnsupportedEncoding(_) => 501,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(what) => write!(f, "Malformed HTTP request: {what}."),
            HttpError::HeadTooLarge => {
                f.write_str("The request head is too large (at most 64 KiB and 100 header fields).")
            }
            HttpError::TargetTooLong => f.write_str("The request target is too long."),
            HttpError::UnsupportedEncoding(what) => write!(
                f,
                "Transfer-Encoding '{what}' is not supported: send Content-Length or chunked."
            ),
            HttpError::BadChunk => f.write_str("Malformed chunked request body."),
            HttpError::Truncated => f.write_str("The request ended before its body did."),
            HttpError::Timeout => f.write_str("The request did not arrive in time."),
        }
    }
}

impl From<PackageError> for ProxyError {
    /// A disk that refuses to store an entry is no fault of the package.
    fn from(e: PackageError) -> Self {
        match e {
            PackageError::Io { entry, error } => {
                ProxyError::Storage(format!("writing '{entry}' failed: {error}"), error.kind())
            }
            other => ProxyError::Package(other),
        }
    }
}

impl From<ChildError> for ProxyError {
    fn from(e: ChildError) -> Self {
        match e {
            ChildError::Exited(_) => ProxyError::Exited(e.to_string()),
            ChildError::TooLong(_) | ChildError::Io(_) => ProxyError::BadAnswer(e.to_string()),
        }
    }
}
