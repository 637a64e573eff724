//! Shared helpers for the integration tests: start the real `actionloop` binary on a free port
//! in a temporary directory, talk HTTP/1.1 to it over a plain TCP socket, read what it logged.
//!
//! The client is hand-made on purpose: it lets tests check the exact bytes the proxy sends
//! (`Content-Length`, no chunking) and keep one connection alive across requests.
#![allow(dead_code)]

pub mod archive;
pub mod image;
pub mod procfs;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Not every test file builds archives.
#[allow(unused_imports)]
pub use archive::Archive;
pub use serde_json::{Value, json};

pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

// The SPEC's exact error texts, written out here rather than taken from the crate, so that a
// change to one of them in `src/` fails the tests.
pub const CANNOT_START: &str = "Cannot start action. Check logs for details.";
pub const CANNOT_LOCATE: &str =
    "The action failed to generate or locate a binary. See logs for details.";
pub const NOT_A_DICTIONARY: &str = "The action did not return a dictionary or array.";
pub const MISSING_CODE: &str = "Missing main/no code to execute.";
pub const ALREADY_INITIALIZED: &str = "Cannot initialize the action more than once.";
pub const BAD_ACK: &str = "The action did not initialize properly.";
pub const EXITED_DURING_INIT: &str = "Command exited abruptly during initialization.";
pub const ENV_MISMATCH: &str = "Execution environment version mismatch. See logs for details.";

/// The header field of a JSON request body.
pub const JSON_BODY: (&str, &str) = ("Content-Type", "application/json");

/// A running proxy. Its stdout and stderr go to files so tests can read the logs at any time.
pub struct Proxy {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Child,
}

/// Everything a test may vary about how the proxy is started.
#[derive(Default)]
pub struct Options<'a> {
    /// A command the proxy is started through (e.g. `unshare ...`); empty for none.
    pub wrapper: &'a [&'a str],
    /// Variables added to the environment.
    pub env: &'a [(&'a str, &'a str)],
    /// Flags after `--port N`.
    pub args: &'a [&'a str],
    /// The proxy's folder (logs, and its working directory unless `cwd`); default a fresh one.
    pub dir: Option<tempfile::TempDir>,
    /// The working directory; default the proxy's folder.
    pub cwd: Option<PathBuf>,
    /// The program to start; default the binary under test.
    pub program: Option<PathBuf>,
    /// Start from an empty environment (then `env` is all the proxy gets).
    pub clear_env: bool,
    /// The proxy's stdout is a pipe that the test reads when it chooses ([`Proxy::take_stdout`])
    /// instead of a file: a log driver that stops reading.
    pub stdout_pipe: bool,
    /// The port to listen on (a proxy started again where another was); default a free one.
    pub port: Option<u16>,
}

/// What the proxy answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` field of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }

    /// The body as text, for failure messages.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// A port nothing listens on, never handed out twice in this test process: two proxies started
/// at the same moment by two tests cannot be given the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The binary under test: the one cargo built, or `ACTIONLOOP_BIN` (e.g. a release build, or a
/// copy that stays put while the tree is rebuilt during a long loop of runs).
pub fn binary() -> PathBuf {
    std::env::var_os("ACTIONLOOP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_actionloop")))
}

impl Proxy {
    /// The proxy with the given runtime (`python`, `nodejs`, `php`) and default settings.
    pub fn start(runtime: &str) -> Proxy {
        Proxy::start_with(runtime, &[], &[])
    }

    /// `Proxy::start("python")`.
    pub fn python() -> Proxy {
        Proxy::start("python")
    }

    /// `Proxy::start("nodejs")`.
    pub fn node() -> Proxy {
        Proxy::start("nodejs")
    }

    /// `Proxy::start("php")`.
    pub fn php() -> Proxy {
        Proxy::start("php")
    }

    /// The proxy with extra environment variables and extra command-line flags.
    pub fn start_with(runtime: &str, env: &[(&str, &str)], args: &[&str]) -> Proxy {
        let mut all = vec!["--runtime", runtime];
        all.extend_from_slice(args);
        Proxy::start_args(env, &all)
    }

    /// The proxy started with exactly these flags (no `--runtime` added), e.g. to check the
    /// default runtime.
    pub fn start_args(env: &[(&str, &str)], args: &[&str]) -> Proxy {
        Proxy::start_through(&[], env, args)
    }

    /// The proxy started through `wrapper` (e.g. `unshare ...`, empty for none) with exactly
    /// these flags after `--port`.
    pub fn start_through(wrapper: &[&str], env: &[(&str, &str)], args: &[&str]) -> Proxy {
        Proxy::start_as(Options {
            wrapper,
            env,
            args,
            ..Options::default()
        })
    }

    /// The proxy started as `options` say; its logs go to `stdout.log` and `stderr.log` in its
    /// folder. A port that another process took between [`free_port`] and the proxy's bind is
    /// no test failure: the proxy is started again on another.
    pub fn start_as(options: Options) -> Proxy {
        let mut dir = options.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let program = options.program.clone().unwrap_or_else(binary);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = options.port.unwrap_or_else(free_port);
            let mut words: Vec<&std::ffi::OsStr> =
                options.wrapper.iter().map(|w| w.as_ref()).collect();
            words.push(program.as_os_str());
            let mut command = Command::new(words[0]);
            if options.clear_env {
                command.env_clear();
            }
            command
                .args(&words[1..])
                .current_dir(options.cwd.as_deref().unwrap_or(dir.path()))
                .arg("--port")
                .arg(port.to_string())
                .args(options.args)
                .stdin(Stdio::null())
                .stdout(if options.stdout_pipe {
                    Stdio::piped()
                } else {
                    std::fs::File::create(dir.path().join("stdout.log"))
                        .unwrap()
                        .into()
                })
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
            for (k, v) in options.env {
                command.env(k, v);
            }
            let process = command.spawn().expect("start actionloop");
            let mut proxy = Proxy { port, dir, process };
            match proxy.wait_listening() {
                Ok(()) => return proxy,
                Err(stderr) if stderr.contains("in use") && attempts < 5 => {
                    if options.port.is_some() {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    dir = std::mem::replace(&mut proxy.dir, tempfile::tempdir().unwrap());
                }
                Err(stderr) => panic!("the proxy did not start listening; stderr:\n{stderr}"),
            }
        }
    }

    /// Waits until this proxy listens: its port is listened on by the process started (or one
    /// below it, through a wrapper), and a connection reaches it (not one that met itself,
    /// which a free port allows), while the process lives. The proxy's stderr if not. Whoever
    /// else may take the port meanwhile (any process on the machine can) is not taken for it.
    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(format!("(exited: {status})\n{}", self.stderr()));
            }
            if self.listens()
                && let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port))
                && stream.local_addr().ok() != stream.peer_addr().ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("(not listening after 10 s)\n{}", self.stderr()))
    }

    /// Whether the listening socket on the port is held by the process started or one below it.
    fn listens(&self) -> bool {
        let listeners = procfs::listeners(self.port);
        if listeners.is_empty() {
            return false;
        }
        procfs::tree(self.process.id())
            .into_iter()
            .any(|p| procfs::sockets(p).iter().any(|i| listeners.contains(i)))
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The read end of the proxy's stdout, with [`Options::stdout_pipe`].
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.process
            .stdout
            .take()
            .expect("started with Options::stdout_pipe")
    }

    pub fn connect(&self) -> Connection {
        self.address().connect()
    }

    /// Where this proxy listens and logs, for threads that open their own connections.
    pub fn address(&self) -> Address {
        Address {
            port: self.port,
            dir: self.dir.path().to_path_buf(),
            pid: self.pid(),
        }
    }

    /// One JSON request on a fresh connection.
    pub fn post(&self, path: &str, body: &[u8]) -> Answer {
        self.connect().post(path, body)
    }

    /// Any method on a fresh connection (e.g. `GET`), with an optional body.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        self.connect().request(method, path, body)
    }

    /// `post` on a connection and a thread of their own; joining the thread gives the answer.
    pub fn post_in_background(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
    ) -> std::thread::JoinHandle<Answer> {
        let (address, path, body) = (self.address(), path.to_string(), body.into());
        std::thread::spawn(move || address.connect().post(&path, &body))
    }

    /// `/run` with `{"value": value}` in the background ([`Proxy::post_in_background`]).
    pub fn run_in_background(&self, value: Value) -> std::thread::JoinHandle<Answer> {
        self.post_in_background("/run", json!({ "value": value }).to_string())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post(path, body.to_string().as_bytes())
    }

    /// `/init` with `{"value": value}`.
    pub fn init(&self, value: Value) -> Answer {
        self.post_json("/init", &json!({ "value": value }))
    }

    /// `/init` with plain source code and the given entry point name.
    pub fn init_code(&self, code: &str, main: &str) -> Answer {
        self.init(json!({"code": code, "main": main, "binary": false}))
    }

    /// `/init` with an archive (zip or tar.gz bytes) sent as base64.
    pub fn init_binary(&self, bytes: &[u8], main: &str) -> Answer {
        self.init(json!({"code": b64(bytes), "main": main, "binary": true}))
    }

    /// `/run` with `{"value": value}`.
    pub fn run(&self, value: Value) -> Answer {
        self.post_json("/run", &json!({ "value": value }))
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits up to 10 s until stdout holds `text` (e.g. an action's word that it has started);
    /// fails if it never does.
    pub fn wait_stdout(&self, text: &str) {
        let what = format!("{text:?} never came on stdout");
        wait_until(&what, Duration::from_secs(10), || {
            self.stdout().contains(text)
        });
    }

    /// [`Proxy::wait_stdout`] on stderr.
    pub fn wait_stderr(&self, text: &str) {
        let what = format!("{text:?} never came on stderr");
        wait_until(&what, Duration::from_secs(10), || {
            self.stderr().contains(text)
        });
    }

    /// Waits until both streams hold `n` sentinels (or 10 s pass), then returns (stdout, stderr).
    pub fn logs_after(&self, n: usize) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (out, err) = (self.stdout(), self.stderr());
            let done = count_sentinels(&out) >= n && count_sentinels(&err) >= n;
            if done || Instant::now() > deadline {
                return (out, err);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits like [`Proxy::logs_after`], then asserts that each stream holds exactly `n`
    /// sentinels: every activation framed once, nothing else framed.
    pub fn framed_logs(&self, n: usize) -> (String, String) {
        let (out, err) = self.logs_after(n);
        assert_eq!(count_sentinels(&out), n, "sentinels on stdout: {out}");
        assert_eq!(count_sentinels(&err), n, "sentinels on stderr: {err}");
        (out, err)
    }

    /// Sends a signal to the proxy process.
    pub fn signal(&self, signal: &str) {
        kill(self.process.id(), signal);
    }

    /// Waits for the proxy to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Sends `signal` (`TERM`, `KILL`...) to `pid` with kill(1), which must succeed.
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

pub fn count_sentinels(text: &str) -> usize {
    text.lines().filter(|l| *l == SENTINEL).count()
}

/// The stream's text before its first sentinel line.
pub fn before_first_sentinel(text: &str) -> &str {
    match text.find(&format!("{SENTINEL}\n")) {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The stream cut at its sentinel lines: what each activation wrote, in order, and last what
/// follows the last sentinel.
pub fn activations(text: &str) -> Vec<&str> {
    text.split(&format!("{SENTINEL}\n")).collect()
}

/// JSON content type, an explicit length, no chunking, a JSON body.
pub fn assert_json_answer(what: &str, a: &Answer) {
    let content_type = a
        .header("content-type")
        .unwrap_or_else(|| panic!("{what}: no Content-Type in {:?}", a.headers));
    assert!(
        content_type.starts_with("application/json"),
        "{what}: Content-Type is {content_type}"
    );
    let length: usize = a
        .header("content-length")
        .unwrap_or_else(|| panic!("{what}: no Content-Length in {:?}", a.headers))
        .parse()
        .unwrap();
    assert_eq!(length, a.body.len(), "{what}");
    assert!(
        a.header("transfer-encoding").is_none(),
        "{what}: chunked answer {:?}",
        a.headers
    );
    let _ = a.json();
}

/// Asserts that an answer has `status`, failing loudly with the answer and the proxy's stderr.
pub fn assert_status(p: &Proxy, what: &str, a: &Answer, status: u16) {
    assert_eq!(
        a.status,
        status,
        "{what}: {} / stderr: {}",
        a.text(),
        p.stderr()
    );
}

/// Asserts that `/init` answered 200, failing loudly with the answer and the proxy's stderr.
pub fn assert_initialised(p: &Proxy, a: &Answer) {
    assert_status(p, "init", a, 200);
}

/// Initialises plain code and fails loudly with the proxy's answer and logs.
pub fn init_ok(p: &Proxy, code: &str, main: &str) {
    assert_initialised(p, &p.init_code(code, main));
}

/// Initialises an archive (or base64 source) and fails loudly with the answer and logs.
pub fn init_binary_ok(p: &Proxy, bytes: &[u8], main: &str) {
    assert_initialised(p, &p.init_binary(bytes, main));
}

/// `/run` that must answer 200; returns the result.
pub fn run_ok(p: &Proxy, value: Value) -> Value {
    let a = p.run(value);
    assert_status(p, "run", &a, 200);
    a.json()
}

/// The head of a well-formed HTTP/1.1 request: the request line, `Host`, `headers` in their
/// order, then `Content-Length` when a length is given. Requests malformed on purpose are
/// written out byte by byte where they are sent.
pub fn request_head(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = body_len {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// `clients` threads started together, each with a kept-alive connection of its own to `p`:
/// what `client(index, connection)` gives, in the clients' order. A client that panics fails
/// the test.
pub fn concurrently<T: Send + 'static>(
    p: &Proxy,
    clients: usize,
    client: impl Fn(usize, &mut Connection) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let client = std::sync::Arc::new(client);
    let start = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|index| {
            let (client, start, address) = (client.clone(), start.clone(), p.address());
            std::thread::spawn(move || {
                start.wait();
                client(index, &mut address.connect())
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("a client failed"))
        .collect()
}

/// A keep-alive HTTP/1.1 connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
    /// The proxy's port, which a failure tries again.
    port: u16,
    /// The proxy's folder, whose stderr a failure shows.
    logs: Option<PathBuf>,
    /// The process the test started, which a failure describes.
    started: Option<u32>,
    /// Answers read so far, which a failure counts.
    answers: usize,
}

/// Where a proxy listens and logs: what a thread needs to open connections of its own.
#[derive(Debug, Clone)]
pub struct Address {
    pub port: u16,
    pub dir: PathBuf,
    /// The process the test started (the proxy, or the wrapper it runs under).
    pub pid: u32,
}

impl Address {
    pub fn connect(&self) -> Connection {
        let mut connection = Connection::open(self.port);
        connection.logs = Some(self.dir.clone());
        connection.started = Some(self.pid);
        connection
    }
}

impl Connection {
    pub fn open(port: u16) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        Connection {
            reader: BufReader::new(stream),
            port,
            logs: None,
            started: None,
            answers: 0,
        }
    }

    /// Fails the test with what went wrong and, when known, what the proxy said on stderr.
    fn fail(&self, what: impl std::fmt::Display) -> ! {
        let stderr = self
            .logs
            .as_ref()
            .map(|dir| std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default())
            .unwrap_or_else(|| "(unknown: a bare connection)".into());
        // Whether the proxy is still there tells a closed connection from a dead proxy, and
        // who holds the port a proxy that never held it.
        let listening = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        let describe = |pids: Vec<u32>| {
            let lines: Vec<String> = pids.into_iter().map(procfs::describe).collect();
            if lines.is_empty() {
                " none".to_string()
            } else {
                format!("\n  {}", lines.join("\n  "))
            }
        };
        let holders = describe(procfs::listening_on(self.port));
        let started = match self.started {
            Some(pid) if procfs::exists(pid) => describe(procfs::tree(pid)),
            Some(pid) => format!(" {pid} is gone"),
            None => " (unknown: a bare connection)".to_string(),
        };
        panic!(
            "{what}\nafter {} answers on this connection\nproxy still listening: {listening}\n\
             listening on port {}:{holders}\nthe proxy's processes:{started}\n\
             proxy stderr:\n{stderr}",
            self.answers, self.port
        );
    }

    /// A JSON request, and its answer.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Answer {
        self.send_request("POST", path, &[JSON_BODY], body);
        self.read_answer()
    }

    /// `/run` with `{"value": value}` on this connection.
    pub fn run(&mut self, value: Value) -> Answer {
        self.post("/run", json!({ "value": value }).to_string().as_bytes())
    }

    /// A request with any method and no `Content-Type`, and its answer.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Answer {
        self.send_request(method, path, &[], body);
        self.read_answer()
    }

    /// Sends a well-formed request ([`request_head`] with the body's length, then the body)
    /// without reading anything back.
    pub fn send_request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        self.send_raw(&request_head(method, target, headers, Some(body.len())));
        self.send_raw(body);
    }

    /// The socket, e.g. to clone a handle that writes while this connection reads.
    pub fn socket(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends raw bytes (e.g. a request cut short) without reading anything back.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.reader.get_mut().write_all(bytes) {
            self.fail(format!("cannot send the request: {e}"));
        }
    }

    pub fn read_answer(&mut self) -> Answer {
        let mut line = String::new();
        if let Err(e) = self.reader.read_line(&mut line) {
            self.fail(format!("no answer: {e}"));
        }
        let Some(status) = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
        else {
            self.fail(format!("bad status line {line:?}"));
        };
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if let Err(e) = self.reader.read_line(&mut h) {
                self.fail(format!("answer cut short in its head: {e}"));
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                self.fail(format!("bad header line {h:?}"));
            };
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .expect("every answer carries Content-Length")
            .1
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        if let Err(e) = self.reader.read_exact(&mut body) {
            self.fail(format!("answer cut short in its body: {e}"));
        }
        self.answers += 1;
        Answer {
            status,
            headers,
            body,
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether an interpreter is on PATH (tests of a missing language fail loudly instead).
pub fn require(program: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{program} must be installed to run these tests (.ci/run installs it)"
    );
}

/// Builds `<package>-0.1-py3-none-any.whl` in `dir` with Python's zipfile, RECORD hashes
/// included (no setuptools, no network): one module, `package`, whose `VALUE` is `value`.
pub fn local_wheel(dir: &Path, package: &str, value: &str) {
    let script = r#"
import base64, hashlib, os, sys, zipfile
name, version, value = sys.argv[2], "0.1", sys.argv[3]
info = "%s-%s.dist-info" % (name, version)
files = {
    name + "/__init__.py": ("VALUE = %r\n" % value).encode(),
    info + "/METADATA": ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name.replace("_", "-"), version)).encode(),
    info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: actionloop-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
record.append(info + "/RECORD,,")
files[info + "/RECORD"] = ("\n".join(record) + "\n").encode()
with zipfile.ZipFile(os.path.join(sys.argv[1], "%s-%s-py3-none-any.whl" % (name, version)), "w") as whl:
    for path, data in files.items():
        whl.writestr(path, data)
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .args([package, value])
        .status()
        .expect("python3");
    assert!(status.success(), "building the wheel of {package}");
}

/// Calls `f` every 20 ms until it gives a value or `within` passes.
pub fn poll<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `within` for `ready` (asked every 20 ms); fails saying `what` if it never is.
pub fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    if poll(within, || ready().then_some(())).is_none() {
        panic!("{what} (waited {within:?})");
    }
}

/// Reads a stream until a line equal to the sentinel (inclusive), with the text before it.
pub fn read_through_sentinel(stream: &mut impl Read) -> String {
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return text;
        }
        text.push_str(&line);
        if line.trim_end_matches('\n') == SENTINEL {
            return text;
        }
    }
}
