//! OpenServerless's forward mode (issue 17), wire-compatible with the fork of the Go proxy
//! (apache/openserverless-runtimes): real proxies on loopback, a server
//! (`OW_ACTIVATE_PROXY_SERVER`) and its clients (`OW_ACTIVATE_PROXY_CLIENT`), real
//! interpreters behind the server.

mod common;

use std::time::{Duration, Instant};

use common::*;

// The fork's texts, written out here so that a change to one of them in `src/` fails a test.
const BAD_MAIN: &str =
    "invalid value for --main flag. Must be in the form of <main>@<proxy> or @<proxy>";
const SEND_INIT_FIRST: &str = "Send init first";
const INIT_NOT_FORWARDED: &str = "Error forwarding init request. Check logs for details.";
const RUN_NOT_FORWARDED: &str = "Error forwarding run request. Check logs for details.";
const MISSING_HASH: &str = "Cannot identify the action in remote runtime (missing hash).";
const MISSING_ID: &str = "Missing action id from client.";
const REMOTE_NOT_FOUND: &str = "Action not found in remote runtime. Check logs for details.";
const STOP_NOT_FOUND: &str =
    "Action to be removed in remote runtime not found. Check logs for details.";
const STOP_NOT_SERVER: &str = "Stop is only supported in server mode";
const NO_SERVER_DATA: &str = "Server proxy data not initialized";

fn server(runtime: &str, env: &[(&str, &str)]) -> Proxy {
    require(if runtime == "nodejs" {
        "node"
    } else {
        "python3"
    });
    let mut all = vec![("OW_ACTIVATE_PROXY_SERVER", "1")];
    all.extend_from_slice(env);
    Proxy::start_with(runtime, &all, &[])
}

fn client() -> Proxy {
    Proxy::start_with("python", &[("OW_ACTIVATE_PROXY_CLIENT", "1")], &[])
}

/// `main` for an action at `server`.
fn at(server: &Proxy, function: &str) -> String {
    format!("{function}@http://127.0.0.1:{}", server.port)
}

/// The md5 of the code in hex: the action's name at the server.
fn hash(code: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(code.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Python code unique to the test that calls it, so that no two tests share an action's
/// hash (nor its `/tmp` marks).
fn unique(code: &str, test: &str) -> String {
    unique_with(code, "#", test)
}

fn unique_with(code: &str, comment: &str, test: &str) -> String {
    format!("{code}\n{comment} {test} {}\n", std::process::id())
}

/// Prints on both streams, answers with its pid and what it was given.
const PYTHON: &str = r#"import os, sys
print("loaded once")
def main(args):
    print("out:", args.get("n"))
    print("err:", args.get("n"), file=sys.stderr)
    return {"pid": os.getpid(), "n": args.get("n")}
"#;

const NODE: &str = r#"console.log("loaded once");
function main(args) {
  console.log("out:", args.n);
  console.error("err:", args.n);
  return {pid: process.pid, n: args.n};
}
"#;

fn init_through(client: &Proxy, code: &str, main: &str) {
    let a = client.init_code(code, main);
    assert_status(client, "init through the client", &a, 200);
}

fn run_through(client: &Proxy, n: u64) -> Value {
    run_ok(client, json!({ "n": n }))
}

#[test]
fn python_and_node_run_through_a_client_with_their_logs_in_its_streams() {
    for (runtime, code, comment) in [("python", PYTHON, "#"), ("nodejs", NODE, "//")] {
        let code = unique_with(code, comment, "logs");
        let s = server(runtime, &[]);
        let c = client();
        init_through(&c, &code, &at(&s, "main"));
        let first = run_through(&c, 1);
        let second = run_through(&c, 2);
        assert_eq!(
            (first["n"].clone(), second["n"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(first["pid"], second["pid"], "{runtime}: one child");
        // Each activation's own lines, then its sentinel, on each of the client's streams.
        let (out, err) = c.framed_logs(2);
        assert_eq!(
            activations(&out),
            ["loaded once\nout: 1\n", "out: 2\n", ""],
            "{runtime}"
        );
        assert_eq!(activations(&err), ["err: 1\n", "err: 2\n", ""], "{runtime}");
        // None of it in the server's logs.
        let (out, err) = (s.stdout(), s.stderr());
        assert!(
            !out.contains("out:") && !out.contains(SENTINEL),
            "{runtime}: {out}"
        );
        assert!(
            !err.contains("err:") && !err.contains(SENTINEL),
            "{runtime}: {err}"
        );
    }
}

#[test]
fn a_server_with_debug_also_shows_the_logs_it_returns() {
    let s = Proxy::start_with("python", &[("OW_ACTIVATE_PROXY_SERVER", "1")], &["-debug"]);
    let c = client();
    init_through(&c, &unique(PYTHON, "debug"), &at(&s, "main"));
    run_through(&c, 7);
    c.framed_logs(1);
    let found = poll(Duration::from_secs(5), || {
        s.stdout().contains("out: 7").then_some(())
    });
    assert!(found.is_some(), "server stdout: {}", s.stdout());
}

#[test]
fn two_clients_share_one_action_and_the_last_to_leave_stops_it() {
    let s = server("python", &[]);
    let code = unique(PYTHON, "share");
    let (mut one, mut two) = (client(), client());
    init_through(&one, &code, &at(&s, "main"));
    // A second /init of the same client is allowed, as in the fork.
    init_through(&one, &code, &at(&s, "main"));
    init_through(&two, &code, &at(&s, ""));
    let pid = run_through(&one, 1)["pid"].as_u64().unwrap() as u32;
    assert_eq!(
        run_through(&two, 2)["pid"],
        json!(pid),
        "the action started once"
    );
    let roots: Vec<_> = std::fs::read_dir(s.path().join("action"))
        .unwrap()
        .collect();
    assert_eq!(roots.len(), 1, "one folder for the one action");
    // The first client goes: the action stays for the other.
    one.signal("TERM");
    assert_eq!(one.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(run_through(&two, 3)["pid"], json!(pid));
    assert!(procfs::exists(pid));
    // The last one goes: the action is stopped, its folder removed, its hash forgotten.
    two.signal("TERM");
    assert_eq!(two.wait_exit(Duration::from_secs(10)), Some(0));
    let gone = poll(Duration::from_secs(10), || {
        (!procfs::exists(pid)).then_some(())
    });
    assert!(
        gone.is_some(),
        "the action still runs: {}",
        procfs::describe(pid)
    );
    let emptied = poll(Duration::from_secs(10), || {
        let left = std::fs::read_dir(s.path().join("action")).unwrap().count();
        (left == 0).then_some(())
    });
    assert!(emptied.is_some(), "the action's folder is still there");
    let run = json!({"value": {}, "actionCodeHash": hash(&code)});
    let a = s.post_json("/run", &run);
    assert_eq!((a.status, a.error()), (404, REMOTE_NOT_FOUND.to_string()));
}

#[test]
fn a_setup_in_progress_keeps_the_action_for_the_delete_duration() {
    let s = server("python", &[("OW_DELETE_DURATION", "1500ms")]);
    let code = unique(PYTHON, "setup");
    let mark = std::path::PathBuf::from("/tmp").join(hash(&code));
    let done = std::path::PathBuf::from(format!("{}_done", mark.display()));
    std::fs::write(&mark, "").unwrap();
    let mut c = client();
    init_through(&c, &code, &at(&s, "main"));
    let pid = run_through(&c, 1)["pid"].as_u64().unwrap() as u32;
    c.signal("TERM");
    assert_eq!(c.wait_exit(Duration::from_secs(10)), Some(0));
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    assert!(procfs::exists(pid), "stopped before OW_DELETE_DURATION");
    let gone = poll(Duration::from_secs(10), || {
        (!procfs::exists(pid)).then_some(())
    });
    assert!(gone.is_some(), "the action outlived OW_DELETE_DURATION");
    assert!(stopped.elapsed() >= Duration::from_millis(1400));
    // Once the setup is marked done, the last client's stop is at once again.
    std::fs::write(&done, "").unwrap();
    let mut c = client();
    init_through(&c, &code, &at(&s, "main"));
    let pid = run_through(&c, 1)["pid"].as_u64().unwrap() as u32;
    c.signal("TERM");
    assert_eq!(c.wait_exit(Duration::from_secs(10)), Some(0));
    let gone = poll(Duration::from_millis(1000), || {
        (!procfs::exists(pid)).then_some(())
    });
    let _ = (std::fs::remove_file(&mark), std::fs::remove_file(&done));
    assert!(gone.is_some(), "a finished setup still waited");
}

#[test]
fn the_activation_context_reaches_the_action_through_the_client() {
    let s = server("python", &[]);
    let c = client();
    let code = unique(
        "import os\ndef main(args):\n    return {k: v for k, v in os.environ.items() if k.startswith('__OW_')}\n",
        "context",
    );
    init_through(&c, &code, &at(&s, "main"));
    let deadline = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000)
        .to_string();
    let run = json!({
        "value": {"x": 1},
        "namespace": "guest",
        "action_name": "/guest/forwarded",
        "action_version": "0.0.1",
        "activation_id": "a1b2c3",
        "transaction_id": "tid-1",
        "api_key": "key:secret",
        "deadline": deadline,
        "extra": {"nested": true},
    });
    let a = c.post_json("/run", &run);
    assert_status(&c, "run", &a, 200);
    let env = a.json();
    for (name, value) in [
        ("__OW_NAMESPACE", "guest"),
        ("__OW_ACTION_NAME", "/guest/forwarded"),
        ("__OW_ACTION_VERSION", "0.0.1"),
        ("__OW_ACTIVATION_ID", "a1b2c3"),
        ("__OW_TRANSACTION_ID", "tid-1"),
        ("__OW_API_KEY", "key:secret"),
        ("__OW_DEADLINE", deadline.as_str()),
        ("__OW_EXTRA", r#"{"nested":true}"#),
    ] {
        assert_eq!(env[name], json!(value), "{name} in {env}");
    }
    assert_eq!(env["__OW_CODE_HASH"], json!(hash(&code)), "{env}");
    assert!(env.get("__OW_ACTIONCODEHASH").is_none(), "{env}");
}

#[test]
fn the_client_refuses_in_the_forks_words() {
    let c = client();
    let a = c.init_code("def main(a): return a", "a@b@c");
    assert_eq!((a.status, a.error()), (400, BAD_MAIN.to_string()));
    let a = c.init_code("def main(a): return a", "main@");
    assert_eq!((a.status, a.error()), (400, "empty URL".to_string()));
    let a = c.run(json!({}));
    assert_eq!((a.status, a.error()), (500, SEND_INIT_FIRST.to_string()));
    let a = c.post("/stop", b"{}");
    assert_eq!((a.status, a.error()), (422, STOP_NOT_SERVER.to_string()));
    // Nothing listens at the server's address.
    let nowhere = format!("main@http://127.0.0.1:{}", free_port());
    let a = c.init_code("def main(a): return a", &nowhere);
    assert_eq!((a.status, a.error()), (502, INIT_NOT_FORWARDED.to_string()));
    c.framed_logs(1);
    let logged = poll(Duration::from_secs(5), || {
        let err = c.stderr();
        err.contains("Error forwarding init request to")
            .then_some(err)
    });
    let err = logged.unwrap_or_else(|| c.stderr());
    // The client's own line follows the activation's sentinel, as in normal mode.
    assert!(
        activations(&err)[1].contains("Error forwarding init request to"),
        "{err}"
    );
    // A normal proxy knows no /stop either.
    let p = Proxy::python();
    let a = p.post("/stop", b"{}");
    assert_eq!((a.status, a.error()), (422, STOP_NOT_SERVER.to_string()));
}

#[test]
fn the_server_refuses_in_the_forks_words() {
    let s = server("python", &[("OW_FORWARD_MAX_ACTIONS", "1")]);
    let a = s.post_json(
        "/stop",
        &json!({"actionCodeHash": "h", "proxiedActionID": "c"}),
    );
    assert_eq!((a.status, a.error()), (500, NO_SERVER_DATA.to_string()));
    let init = |value: Value, id: Option<&str>| {
        let mut body = json!({ "value": value });
        if let Some(id) = id {
            body["proxiedActionID"] = json!(id);
        }
        s.post_json("/init", &body)
    };
    let a = init(json!({"code": "def main(a): return a"}), Some("c1"));
    assert_eq!((a.status, a.error()), (502, MISSING_HASH.to_string()));
    let code = unique("def main(a):\n    return a\n", "refuse");
    let env = json!({"__OW_CODE_HASH": hash(&code)});
    let a = init(json!({"code": code, "env": env}), None);
    assert_eq!((a.status, a.error()), (502, MISSING_ID.to_string()));
    let a = init(json!({"code": code, "env": env}), Some("c1"));
    assert_status(&s, "init", &a, 200);
    // Full: OW_FORWARD_MAX_ACTIONS is 1.
    let other =
        json!({"code": "def main(a):\n    return {}\n", "env": {"__OW_CODE_HASH": "other"}});
    let a = init(other, Some("c2"));
    assert_eq!(a.status, 503, "{}", a.text());
    assert!(
        a.error().contains("OW_FORWARD_MAX_ACTIONS"),
        "{}",
        a.error()
    );
    let a = s.post_json("/run", &json!({"value": {}}));
    assert_eq!(
        (a.status, a.error()),
        (400, "Action code hash not provided from client".to_string())
    );
    let a = s.post_json("/run", &json!({"value": {}, "actionCodeHash": "unknown"}));
    assert_eq!((a.status, a.error()), (404, REMOTE_NOT_FOUND.to_string()));
    for stop in [
        json!({"actionCodeHash": "unknown", "proxiedActionID": "c1"}),
        json!({"actionCodeHash": hash(&code), "proxiedActionID": "nobody"}),
    ] {
        let a = s.post_json("/stop", &stop);
        assert_eq!((a.status, a.error()), (404, STOP_NOT_FOUND.to_string()));
    }
    let a = s.post("/stop", b"[1]");
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(
        a.error().starts_with("Error decoding run body: "),
        "{}",
        a.error()
    );
    // `/reset` only with -debug.
    assert_eq!(s.post("/reset", b"{}").status, 404);
    let stop = json!({"actionCodeHash": hash(&code), "proxiedActionID": "c1"});
    assert_status(&s, "stop", &s.post_json("/stop", &stop), 200);
}

#[test]
fn a_reset_with_debug_stops_every_action() {
    let s = Proxy::start_with("python", &[("OW_ACTIVATE_PROXY_SERVER", "1")], &["-debug"]);
    let c = client();
    init_through(&c, &unique(PYTHON, "reset"), &at(&s, "main"));
    let pid = run_through(&c, 1)["pid"].as_u64().unwrap() as u32;
    assert_status(&s, "reset", &s.post("/reset", b"{}"), 200);
    let gone = poll(Duration::from_secs(10), || {
        (!procfs::exists(pid)).then_some(())
    });
    assert!(gone.is_some(), "reset left the action running");
    let a = c.run(json!({"n": 2}));
    assert_eq!((a.status, a.error()), (404, REMOTE_NOT_FOUND.to_string()));
}

#[test]
fn a_server_restart_mid_way_is_a_clear_error_and_no_hang() {
    let mut s = server("python", &[]);
    let port = s.port;
    let c = client();
    let code = unique(
        "import time\ndef main(args):\n    time.sleep(args.get('sleep', 0))\n    return {'slept': args.get('sleep', 0)}\n",
        "restart",
    );
    init_through(&c, &code, &at(&s, "main"));
    let address = c.address();
    let run = std::thread::spawn(move || {
        let started = Instant::now();
        let a = address.connect().post("/run", br#"{"value":{"sleep":30}}"#);
        (a, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(700));
    s.signal("KILL");
    s.wait_exit(Duration::from_secs(10));
    let (a, took) = run.join().unwrap();
    assert_eq!((a.status, a.error()), (502, RUN_NOT_FORWARDED.to_string()));
    assert!(took < Duration::from_secs(10), "the client waited {took:?}");
    // The server comes back, empty: the client's action is no longer known there.
    let restarted = Proxy::start_as(Options {
        args: &["--runtime", "python"],
        env: &[("OW_ACTIVATE_PROXY_SERVER", "1")],
        port: Some(port),
        ..Options::default()
    });
    let a = c.run(json!({"sleep": 0}));
    assert_eq!((a.status, a.error()), (404, REMOTE_NOT_FOUND.to_string()));
    // A new /init registers the client again.
    init_through(&c, &code, &at(&restarted, "main"));
    assert_eq!(run_through(&c, 0)["slept"], json!(0));
    // Each of the three runs is framed once on each stream, whatever became of it.
    c.framed_logs(3);
}

/// Terminates TLS on a port of its own (printed on its first line) and relays each
/// connection's bytes to the plain port given as its first argument: a server behind TLS.
const TLS_RELAY: &str = r#"
import socket, ssl, sys, threading
upstream, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print(listener.getsockname()[1], flush=True)

def pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    for end in (sink, source):
        try:
            end.close()
        except OSError:
            pass

def serve(conn):
    try:
        secure = context.wrap_socket(conn, server_side=True)
    except OSError:
        conn.close()
        return
    plain = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(plain, secure), daemon=True).start()
    pipe(secure, plain)

while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// A CA (`ca.pem`) and a certificate for `localhost` it signed (`cert.pem`, `key.pem`).
fn certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=actionloop test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "leaf.csr"]);
    openssl(&csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}

/// The TLS relay in front of `upstream`, and its port.
struct Relay(std::process::Child, u16);

impl Relay {
    fn start(upstream: u16, certs: &std::path::Path) -> Relay {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args(["-c", TLS_RELAY, &upstream.to_string()])
            .arg(certs.join("cert.pem"))
            .arg(certs.join("key.pem"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the relay's port");
        Relay(child, port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_is_the_default_and_is_checked_against_the_trusted_roots() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let s = server("python", &[]);
    let relay = Relay::start(s.port, certs.path());
    // No scheme: https://, as in the fork.
    let main = format!("main@localhost:{}", relay.1);
    let ca = certs.path().join("ca.pem");
    let trusting = Proxy::start_with(
        "python",
        &[
            ("OW_ACTIVATE_PROXY_CLIENT", "1"),
            ("OW_FORWARD_CA_FILE", ca.to_str().unwrap()),
        ],
        &[],
    );
    let code = unique(PYTHON, "tls");
    init_through(&trusting, &code, &main);
    assert_eq!(run_through(&trusting, 5)["n"], json!(5));
    let (out, _) = trusting.framed_logs(1);
    assert!(out.contains("out: 5"), "{out}");
    // The built-in roots alone do not know the test's CA.
    let wary = client();
    let a = wary.init_code(&code, &main);
    assert_eq!((a.status, a.error()), (502, INIT_NOT_FORWARDED.to_string()));
    let logged = poll(Duration::from_secs(5), || {
        let err = wary.stderr();
        err.contains("certificate").then_some(err)
    });
    assert!(logged.is_some(), "{}", wary.stderr());
}

#[test]
fn a_ca_file_that_holds_no_certificate_stops_the_client_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let out = std::process::Command::new(binary())
        .env("OW_ACTIVATE_PROXY_CLIENT", "1")
        .env("OW_FORWARD_CA_FILE", &empty)
        .args(["--port", &free_port().to_string()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OW_FORWARD_CA_FILE"), "{err}");
}

#[test]
fn the_last_client_stopping_mid_run_stops_the_action_at_once() {
    let s = server("python", &[]);
    let mut c = Proxy::start_with(
        "python",
        &[
            ("OW_ACTIVATE_PROXY_CLIENT", "1"),
            ("OW_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
        &[],
    );
    let code = unique(
        "import time\ndef main(args):\n    time.sleep(60)\n    return {}\n",
        "mid-run",
    );
    init_through(&c, &code, &at(&s, "main"));
    let address = c.address();
    let run = std::thread::spawn(move || address.connect().post("/run", br#"{"value":{}}"#));
    let children = poll(Duration::from_secs(10), || {
        let found = procfs::children(s.pid());
        (!found.is_empty()).then_some(found)
    })
    .expect("the server's action runs");
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    c.signal("TERM");
    assert!(
        c.wait_exit(Duration::from_secs(20)).is_some(),
        "the client did not stop"
    );
    let gone = poll(Duration::from_secs(10), || {
        children
            .iter()
            .all(|pid| !procfs::exists(*pid))
            .then_some(())
    });
    assert!(gone.is_some(), "the action went on for a client that left");
    assert!(stopped.elapsed() < Duration::from_secs(30));
    // The run was answered all the same, with the server's error: its action is gone.
    let a = run.join().unwrap();
    assert_eq!(a.status, 500, "{}", a.text());
    assert!(a.error().contains("its last client left"), "{}", a.error());
}

/// A stand-in for the fork's server: prints its port on its first line, writes each request
/// it gets as one JSON line to the file named by its first argument, answers `/run` with the
/// body in the file named by its second and everything else with `{"ok":true}`.
const FAKE_FORK: &str = r#"
import http.server, json, sys
log, run_answer = sys.argv[1], sys.argv[2]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "body": json.loads(body or b"null")}) + "\n")
        answer = open(run_answer, "rb").read() if self.path == "/run" else b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// The stand-in fork server, running, with the folder of its request log.
struct FakeFork {
    process: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl FakeFork {
    /// Answers every `/run` with `run_answer`.
    fn start(run_answer: &Value) -> FakeFork {
        use std::io::BufRead;
        require("python3");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.json"), run_answer.to_string()).unwrap();
        let mut process = std::process::Command::new("python3")
            .arg("-c")
            .arg(FAKE_FORK)
            .arg(dir.path().join("requests.log"))
            .arg(dir.path().join("run.json"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        FakeFork { process, port, dir }
    }

    fn main(&self) -> String {
        format!("main@http://127.0.0.1:{}", self.port)
    }

    /// The requests so far: (path, body).
    fn requests(&self) -> Vec<(String, Value)> {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["path"].as_str().unwrap().to_string(), v["body"].clone())
            })
            .collect()
    }
}

impl Drop for FakeFork {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
fn a_fork_servers_leftover_sentinels_never_shift_the_clients_logs() {
    // The fork's server empties its capture only after a successful run, so the run after a
    // failed one carries the failed run's logs and sentinel ahead of its own.
    let answer = json!({
        "response": {"fine": true},
        "out": format!("failed run\n{SENTINEL}\nthis run\n{SENTINEL}\n"),
        "err": format!("{SENTINEL}\nthis run on stderr\n{SENTINEL}\n"),
    });
    let fork = FakeFork::start(&answer);
    let c = client();
    init_through(&c, "def main(a): return a", &fork.main());
    assert_eq!(run_ok(&c, json!({})), json!({"fine": true}));
    assert_eq!(run_ok(&c, json!({})), json!({"fine": true}));
    // Exactly one sentinel per stream per activation, each after all of that run's lines.
    let (out, err) = c.framed_logs(2);
    let runs = activations(&out);
    assert_eq!(runs[0], "failed run\nthis run\n", "{out}");
    assert_eq!(runs[1], "failed run\nthis run\n", "{out}");
    assert_eq!(activations(&err)[0], "this run on stderr\n", "{err}");
}

#[test]
fn sigabrt_tells_the_server_the_client_is_gone_as_the_other_stop_signals_do() {
    let fork = FakeFork::start(&json!({"response": {}, "out": "", "err": ""}));
    let mut c = client();
    init_through(&c, "def main(a): return a", &fork.main());
    let registered = fork.requests()[0].1["proxiedActionID"].clone();
    c.signal("ABRT");
    assert_eq!(
        c.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        c.stderr()
    );
    let stop = fork
        .requests()
        .into_iter()
        .find(|(path, _)| path == "/stop")
        .expect("a /stop reached the server");
    assert_eq!(stop.1["proxiedActionID"], registered);
    assert_eq!(
        stop.1["actionCodeHash"],
        json!(hash("def main(a): return a"))
    );
}

#[test]
fn a_value_that_is_no_object_is_refused_at_both_ends_as_the_forks_go_decoder_does() {
    let s = server("python", &[]);
    let c = client();
    let code = unique("def main(a):\n    return {'got': a}\n", "value-object");
    init_through(&c, &code, &at(&s, "main"));
    for value in [json!("text"), json!([1, 2]), json!(3)] {
        let a = c.post_json("/run", &json!({ "value": value }));
        assert_eq!(a.status, 400, "{value}: {}", a.text());
        assert!(
            a.error()
                .starts_with("Error decoding run body while forwarding request: "),
            "{}",
            a.error()
        );
        let a = s.post_json(
            "/run",
            &json!({"value": value, "actionCodeHash": hash(&code)}),
        );
        assert_eq!(a.status, 400, "{value}: {}", a.text());
        assert!(
            a.error().starts_with("Error decoding run body: "),
            "{}",
            a.error()
        );
    }
    // No value, or null, is the empty object's case, as in the fork.
    assert_eq!(run_ok(&c, json!(null))["got"], json!({}));
    let a = c.post_json("/run", &json!({}));
    assert_eq!(a.status, 200, "{}", a.text());
}

#[test]
fn the_server_words_a_result_that_is_no_object_as_the_forks_server_does() {
    let s = server("python", &[]);
    let c = client();
    let code = unique("def main(a):\n    return 'a string'\n", "not-a-dictionary");
    init_through(&c, &code, &at(&s, "main"));
    let a = s.post_json("/run", &json!({"value": {}, "actionCodeHash": hash(&code)}));
    assert_eq!(
        (a.status, a.error()),
        (
            502,
            "the action did not return a dictionary or array".to_string()
        )
    );
    // Passed on by the client as it came.
    let a = c.run(json!({}));
    assert_eq!(
        (a.status, a.error()),
        (
            502,
            "the action did not return a dictionary or array".to_string()
        )
    );
}
