//! Production faults: a log reader that stops, actions that misbehave on purpose, a full disk,
//! signals at bad moments. Each is a behaviour the proxy keeps under that fault.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

/// A proxy whose stdout nobody reads until the test says so.
fn unread_stdout(runtime: &str, env: &[(&str, &str)]) -> Proxy {
    Proxy::start_as(Options {
        args: &["--runtime", runtime],
        env,
        stdout_pipe: true,
        ..Options::default()
    })
}

/// Prints `lines` numbered lines of 1 KiB on stdout, then answers.
const PRINTER: &str = r#"import sys
def main(args):
    pad = "x" * 1000
    for i in range(args["lines"]):
        sys.stdout.write("%08d %s\n" % (i, pad))
    return {"printed": args["lines"]}
"#;

#[test]
fn a_stalled_log_reader_holds_back_only_the_action_that_prints() {
    let mut p = unread_stdout("python", &[]);
    init_ok(&p, PRINTER, "main");
    // 32 MiB: far more than any pipe or buffer between the action and the reader.
    let lines = 32 * 1024;
    let run = p.run_in_background(json!({ "lines": lines }));
    // Stuck in its output, the action holds up neither other connections nor the memory.
    let pid = p.pid();
    let base = procfs::status_kib(pid, "VmRSS").unwrap();
    for _ in 0..20 {
        assert_eq!(p.init_code(PRINTER, "main").status, 403);
        assert_eq!(p.post("/nowhere", b"{}").status, 404);
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak = procfs::status_kib(pid, "VmHWM").unwrap();
    assert!(
        peak < base + 16 * 1024,
        "proxy memory grew from {base} KiB to a peak of {peak} KiB while the reader stalled"
    );
    assert!(
        !run.is_finished(),
        "the activation cannot end before its output is read"
    );
    // The reader comes back: every line, in order, then the sentinel; then the answer.
    let mut out = p.take_stdout();
    let text = read_through_sentinel(&mut out);
    let printed: Vec<&str> = text.lines().collect();
    assert_eq!(printed.len(), lines + 1, "every line, then the sentinel");
    for (i, line) in printed[..lines].iter().enumerate() {
        assert!(
            line.starts_with(&format!("{i:08} ")),
            "line {i}: {line:.20}"
        );
    }
    assert_eq!(printed[lines], SENTINEL);
    let answer = run.join().unwrap();
    assert_status(&p, "run", &answer, 200);
    assert_eq!(answer.json(), json!({"printed": lines}));
}

#[test]
fn a_stalled_log_reader_does_not_stop_a_deadline() {
    let mut p = unread_stdout("python", &[("OW_ENFORCE_DEADLINE", "1")]);
    init_ok(&p, PRINTER, "main");
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1500;
    let started = Instant::now();
    let answer = p.post_json(
        "/run",
        &json!({"value": {"lines": 64 * 1024}, "deadline": deadline.to_string()}),
    );
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(answer.error().contains("deadline"), "{}", answer.error());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the deadline must end the activation although nobody reads its output"
    );
    // Later readers see what was kept, in order, a note for what was not, and the sentinel.
    let mut out = p.take_stdout();
    let text = read_through_sentinel(&mut out);
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some(SENTINEL));
    let note = lines.pop().unwrap_or_default();
    assert!(note.contains("dropped"), "{note}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("{i:08} ")),
            "line {i}: {line:.20}"
        );
    }
    // The action comes back for the next activation, whose logs follow.
    let next = p.run_in_background(json!({"lines": 3}));
    let text = read_through_sentinel(&mut out);
    assert!(
        text.starts_with("00000000 ") && text.ends_with(&format!("{SENTINEL}\n")),
        "{text:.200}"
    );
    assert_eq!(next.join().unwrap().status, 200);
}

#[test]
fn sigterm_stops_the_proxy_while_its_log_reader_stalls() {
    let mut p = unread_stdout("python", &[("OW_SHUTDOWN_GRACE_SECONDS", "1")]);
    init_ok(&p, PRINTER, "main");
    let run = p.run_in_background(json!({"lines": 64 * 1024}));
    std::thread::sleep(Duration::from_millis(300));
    p.signal("TERM");
    // Grace, then a few seconds for the killed activation to answer: far less than this.
    let code = p.wait_exit(Duration::from_secs(20));
    assert!(
        code.is_some(),
        "the proxy did not stop; stderr: {}",
        p.stderr()
    );
    // The killed activation was still answered, with a JSON error.
    let answer = run.join().unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.error().contains("command exited"),
        "{}",
        answer.error()
    );
    let mut rest = String::new();
    let _ = p.take_stdout().read_to_string(&mut rest);
}

// ---------------------------------------------------------------------------------------------
// The interpreter is the proxy's, whatever PATH an action sets
// ---------------------------------------------------------------------------------------------

const PATH_ACTION: &str = r#"import os
def main(args):
    if args.get("crash"):
        os._exit(7)
    return {"path": os.environ.get("PATH")}
"#;

#[test]
fn an_init_env_that_sets_path_does_not_hide_the_interpreter() {
    let settings: [&[(&str, &str)]; 3] = [&[], &[("OW_PREWARM", "0")], &[("OW_CONCURRENCY", "2")]];
    // python3 on the proxy's PATH is a link to the real interpreter: a shell shim (pyenv's)
    // would itself need a PATH, which the action takes away from it.
    let bin = tempfile::tempdir().unwrap();
    let real = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap();
    std::os::unix::fs::symlink(real.trim(), bin.path().join("python3")).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    for env in settings {
        let mut env = env.to_vec();
        env.push(("PATH", &path));
        let p = Proxy::start_with("python", &env, &[]);
        let init = p.init(json!({"code": PATH_ACTION, "env": {"PATH": "/nowhere"}}));
        assert_initialised(&p, &init);
        assert_eq!(
            run_ok(&p, json!({})),
            json!({"path": "/nowhere"}),
            "{env:?}"
        );
        // A crash, then a restart that must find python3 again.
        let crash = p.run(json!({"crash": true}));
        assert_eq!(crash.status, 400, "{env:?}");
        assert_eq!(
            run_ok(&p, json!({})),
            json!({"path": "/nowhere"}),
            "{env:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------------

/// Starts a daemon that leaves the action's process group and session.
fn daemon_action(marker: &str) -> String {
    format!(
        "import subprocess\ndef main(args):\n    subprocess.Popen(['setsid', 'sleep', '{marker}'])\n    return {{}}\n"
    )
}

#[test]
fn every_stop_signal_stops_the_proxy_and_whatever_its_actions_started() {
    for (i, signal) in ["TERM", "INT", "HUP", "QUIT", "ABRT"]
        .into_iter()
        .enumerate()
    {
        let marker = format!("300.{}{i}", std::process::id());
        let mut p = Proxy::python();
        init_ok(&p, &daemon_action(&marker), "main");
        run_ok(&p, json!({}));
        wait_until("the daemon did not start", Duration::from_secs(5), || {
            !procfs::sleeping_with(&marker).is_empty()
        });
        p.signal(signal);
        // Stopped, not killed by the signal: its own exit, status 0.
        assert_eq!(
            p.wait_exit(Duration::from_secs(10)),
            Some(0),
            "SIG{signal} did not stop the proxy cleanly"
        );
        let left = left_running(&marker);
        assert!(
            left.is_empty(),
            "SIG{signal} left the daemon running: {left:?}"
        );
    }
}

/// The processes with `marker` in their command line still running 5 s from now, if any;
/// killed, so that a failing test leaves none behind.
fn left_running(marker: &str) -> Vec<u32> {
    poll(Duration::from_secs(5), || {
        procfs::running_with(marker).is_empty().then_some(())
    });
    let left = procfs::running_with(marker);
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    left
}

/// An action that dies in the middle of an activation takes what it started in its process
/// group with it at once, not at the next request: a Python, Node.js and PHP child alike.
#[test]
fn an_action_that_dies_takes_its_background_processes_with_it() {
    let dying = [
        (
            "python",
            "import os, subprocess\ndef main(args):\n    subprocess.Popen(['sleep', args['marker']])\n    os._exit(3)\n",
        ),
        (
            "nodejs",
            "const { spawn } = require('child_process');\nfunction main(args) {\n  spawn('sleep', [args.marker], { stdio: 'ignore' });\n  process.exit(3);\n}\n",
        ),
        (
            "php",
            "<?php\nfunction main(array $args): array {\n    exec('sleep ' . $args['marker'] . ' > /dev/null 2>&1 &');\n    exit(3);\n}\n",
        ),
    ];
    for (i, (runtime, code)) in dying.into_iter().enumerate() {
        let marker = format!("300.{}{i}7", std::process::id());
        let p = Proxy::start(runtime);
        init_ok(&p, code, "main");
        let answer = p.run(json!({ "marker": marker }));
        assert_eq!(answer.status, 400, "{runtime}: {}", answer.text());
        let left = left_running(&marker);
        assert!(
            left.is_empty(),
            "{runtime}: its sleep outlived the dead action: {left:?}; stderr: {}",
            p.stderr()
        );
    }
}

#[test]
fn a_stop_does_not_wait_for_idle_or_half_sent_connections() {
    let mut p = Proxy::start_with("python", &[("OW_SHUTDOWN_GRACE_SECONDS", "60")], &[]);
    init_ok(&p, "def main(args):\n    return {}\n", "main");
    let _idle = p.connect();
    let mut half = p.connect();
    half.send_raw(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"val");
    let mut head_only = p.connect();
    head_only.send_raw(b"POST /run HTTP/1.1\r\nHost: x\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    p.signal("TERM");
    assert!(
        p.wait_exit(Duration::from_secs(20)).is_some(),
        "did not stop"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "waited for connections that were not being answered"
    );
}

#[test]
fn past_the_grace_period_a_killed_activation_still_ends_with_an_answer_and_sentinels() {
    let mut p = Proxy::start_with("python", &[("OW_SHUTDOWN_GRACE_SECONDS", "1")], &[]);
    let code = "import sys, time\ndef main(args):\n    print('working', flush=True)\n    time.sleep(60)\n    return {}\n";
    init_ok(&p, code, "main");
    let run = p.run_in_background(json!({}));
    p.wait_stdout("working");
    p.signal("TERM");
    let answer = run.join().unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_json_answer("killed activation", &answer);
    assert!(
        answer.error().contains("command exited"),
        "{}",
        answer.error()
    );
    assert!(p.wait_exit(Duration::from_secs(10)).is_some());
    let (out, _) = p.framed_logs(1);
    assert!(before_first_sentinel(&out).contains("working"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let p = Proxy::python();
    init_ok(&p, "def main(args):\n    return {'got': args}\n", "main");
    for body in [&b"{\"value\":{\"a\":1}}"[..], &[b' '; 0]] {
        let mut c = p.connect();
        c.send_request("POST", "/run", &[], body);
        c.socket().shutdown(std::net::Shutdown::Write).unwrap();
        let answer = c.read_answer();
        assert_json_answer("after a half-close", &answer);
        if body.is_empty() {
            assert_eq!(answer.status, 400);
        } else {
            assert_eq!(answer.json(), json!({"got": {"a": 1}}));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile actions and hostile context: every launcher answers, and stays warm
// ---------------------------------------------------------------------------------------------

/// Per language: an action that, on request, closes fd 1 or 2, builds a 5000-deep result,
/// throws an exception with no message, and else reports its `__OW_*` variables and a counter
/// that only a warm child keeps.
fn hostile(runtime: &str) -> &'static str {
    match runtime {
        "python" => {
            r#"import os
count = 0
def main(a):
    global count
    count += 1
    if a.get("close"):
        os.close(a["close"])
        return {"closed": a["close"]}
    if a.get("deep"):
        v = {}; r = v
        for i in range(5000):
            r["x"] = {}; r = r["x"]
        return v
    if a.get("empty"):
        raise MemoryError()
    print("printing works")
    return {"count": count, "keys": sorted(k for k in os.environ if k.startswith("__OW_") and k != "__OW_PROXY_VERSION")}
"#
        }
        "nodejs" => {
            r#"let count = 0;
function main(a) {
  count += 1;
  if (a.close) { require('fs').closeSync(a.close); return {closed: a.close}; }
  if (a.deep) { const v = {}; let r = v; for (let i = 0; i < 5000; i++) { r.x = {}; r = r.x; } return v; }
  if (a.empty) throw new Error('');
  console.log('printing works');
  return {count, keys: Object.keys(process.env).filter(k => k.startsWith('__OW_') && k !== '__OW_PROXY_VERSION').sort()};
}
"#
        }
        _ => {
            r#"<?php
$count = 0;
function main(array $a): array {
  global $count;
  $count += 1;
  if (isset($a['close'])) { fclose($a['close'] == 1 ? STDOUT : STDERR); return ['closed' => $a['close']]; }
  if (isset($a['deep'])) { $v = []; $r = &$v; for ($i = 0; $i < 5000; $i++) { $r['x'] = []; $r = &$r['x']; } return $v; }
  if (isset($a['empty'])) throw new Exception('');
  echo "printing works\n";
  $keys = array_values(array_filter(array_keys(getenv()), fn($k) => str_starts_with($k, '__OW_') && $k !== '__OW_PROXY_VERSION'));
  sort($keys);
  return ['count' => $count, 'keys' => $keys];
}
"#
        }
    }
}

/// The counter must have grown by one since the last report: the child stayed warm.
fn report(p: &Proxy, body: &str) -> Value {
    let answer = p.post("/run", body.as_bytes());
    assert_status(p, body, &answer, 200);
    answer.json()
}

#[test]
fn each_activation_sees_exactly_its_own_context() {
    for runtime in ["python", "nodejs", "php"] {
        let p = Proxy::start(runtime);
        init_ok(&p, hostile(runtime), "main");
        let first = report(
            &p,
            r#"{"value":{},"activation_id":"a1","extra":"only here"}"#,
        );
        assert_eq!(
            first["keys"],
            json!(["__OW_ACTIVATION_ID", "__OW_EXTRA"]),
            "{runtime}"
        );
        let second = report(&p, r#"{"value":{},"activation_id":"a2"}"#);
        assert_eq!(
            second["keys"],
            json!(["__OW_ACTIVATION_ID"]),
            "{runtime}: a key of the last activation stayed"
        );
        let third = report(&p, r#"{"value":{}}"#);
        assert_eq!(third["keys"], json!([]), "{runtime}");
        assert_eq!(third["count"], json!(3), "{runtime}");
    }
}

#[test]
fn context_that_cannot_be_an_environment_variable_is_left_out_and_the_action_runs() {
    for runtime in ["python", "nodejs", "php"] {
        let p = Proxy::start(runtime);
        init_ok(&p, hostile(runtime), "main");
        for (i, body) in [
            r#"{"value":{},"nul_value":"a\u0000b"}"#,
            r#"{"value":{},"a=b":"equals in the name"}"#,
            r#"{"value":{},"nul\u0000key":"x"}"#,
        ]
        .into_iter()
        .enumerate()
        {
            let got = report(&p, body);
            assert_eq!(got["keys"], json!([]), "{runtime}: {body}");
            assert_eq!(
                got["count"],
                json!(i + 1),
                "{runtime}: the child restarted at {body}"
            );
        }
        // A lone surrogate: Python and Node.js leave it out or keep it; PHP's decoder refuses
        // the request with a clear 502. None of them dies.
        let answer = p.post("/run", br#"{"value":{},"sur":"\ud800"}"#);
        assert!(
            answer.status == 200 || answer.status == 502,
            "{runtime}: {}",
            answer.status
        );
        let count = report(&p, r#"{"value":{}}"#)["count"].as_u64().unwrap();
        assert!(count >= 4, "{runtime}: the child restarted ({count})");
    }
}

#[test]
fn a_deep_request_or_result_is_answered_and_the_action_stays_warm() {
    let deep_value = format!(
        "{{\"value\":{}{}{}}}",
        "{\"x\":".repeat(5000),
        "{}",
        "}".repeat(5000)
    );
    for runtime in ["python", "nodejs", "php"] {
        let p = Proxy::start(runtime);
        init_ok(&p, hostile(runtime), "main");
        let before = report(&p, r#"{"value":{}}"#)["count"].as_u64().unwrap();
        // A deep argument reaches the action (which reports), a deep result comes back whole
        // (deeper than the test's own JSON reader goes), or either is refused clearly.
        for (body, whole) in [
            (deep_value.as_str(), "{\"count\":"),
            (r#"{"value":{"deep":true}}"#, "{\"x\":{\"x\":"),
        ] {
            let answer = p.post("/run", body.as_bytes());
            let start = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]);
            assert_eq!(
                answer.header("content-type"),
                Some("application/json"),
                "{runtime}"
            );
            match answer.status {
                200 => assert!(start.starts_with(whole), "{runtime}: {start}"),
                // A clear refusal from the launcher, not a dead child.
                502 => {
                    let error = answer.error();
                    assert!(!error.contains("command exited"), "{runtime}: {error}");
                }
                other => panic!("{runtime}: {other} {start}"),
            }
        }
        let after = report(&p, r#"{"value":{}}"#)["count"].as_u64().unwrap();
        assert!(
            after > before,
            "{runtime}: the child restarted ({before} then {after})"
        );
    }
}

#[test]
fn an_exception_without_a_message_names_its_class() {
    for (runtime, class) in [
        ("python", "MemoryError"),
        ("nodejs", "Error"),
        ("php", "Exception"),
    ] {
        let p = Proxy::start(runtime);
        init_ok(&p, hostile(runtime), "main");
        assert_eq!(
            run_ok(&p, json!({"empty": true})),
            json!({"error": class}),
            "{runtime}"
        );
    }
}

#[test]
fn an_action_that_closes_its_stdout_or_stderr_does_not_take_the_launcher_with_it() {
    for runtime in ["python", "nodejs", "php"] {
        for fd in [1, 2] {
            let p = Proxy::start(runtime);
            init_ok(&p, hostile(runtime), "main");
            let closed = p.run(json!({"close": fd}));
            assert_status(&p, &format!("{runtime} fd {fd}"), &closed, 200);
            // Warm, and answering. Python also gives the next activation its stream back.
            let next = report(&p, r#"{"value":{}}"#);
            assert_eq!(next["count"], json!(2), "{runtime} fd {fd}: {next}");
            let (out, _) = p.framed_logs(2);
            if runtime == "python" || fd == 2 {
                assert!(out.contains("printing works"), "{runtime} fd {fd}: {out}");
            }
        }
    }
}

/// Asked to (`{"leave": "first"}`), `code` answers and leaves work behind that fails a moment
/// later; the next activation waits until that failure has come. Both answers are the
/// activations' own, and the failure is logged with `logged`.
fn assert_late_failures_are_only_logged(runtime: &str, code: &str, logged: &[&str]) {
    let p = Proxy::start(runtime);
    init_ok(&p, code, "main");
    assert_eq!(
        run_ok(&p, json!({"leave": "first"})),
        json!({"left": "first"})
    );
    assert_eq!(run_ok(&p, json!({})), json!({"waited": true}));
    let (_, err) = p.framed_logs(2);
    for text in logged {
        assert!(err.contains(text), "{runtime}: {text}: {err}");
    }
}

#[test]
fn work_an_action_leaves_behind_never_becomes_another_activations_answer() {
    // Node.js: a timer that throws and a promise that rejects, both after the answer.
    let code = r#"function main(a) {
  if (a.leave) {
    setTimeout(() => { throw new Error('late timer of ' + a.leave); }, 100);
    setTimeout(() => { Promise.reject(new Error('late rejection of ' + a.leave)); }, 150);
    return {left: a.leave};
  }
  return new Promise((resolve) => setTimeout(() => resolve({waited: true}), 400));
}
"#;
    let logged = ["late timer of first", "late rejection of first"];
    assert_late_failures_are_only_logged("nodejs", code, &logged);
    // An escaped error of the activation's own still ends it, with that error.
    let p = Proxy::node();
    let own = "function main(a) { setTimeout(() => { throw new Error('mine'); }, 10); return new Promise(() => {}); }\n";
    init_ok(&p, own, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"error": "Error: mine"}));

    // Python: a thread that fails after the answer is logged, never answered.
    let code = r#"import threading, time
def late(tag):
    time.sleep(0.1)
    raise RuntimeError("late thread of " + tag)
def main(a):
    if a.get("leave"):
        threading.Thread(target=late, args=(a["leave"],)).start()
        return {"left": a["leave"]}
    time.sleep(0.4)
    return {"waited": True}
"#;
    assert_late_failures_are_only_logged("python", code, &["late thread of first"]);
}

// ---------------------------------------------------------------------------------------------
// A full disk
// ---------------------------------------------------------------------------------------------

/// A proxy whose working directory is a 4 MiB filesystem of its own (tmpfs, in a mount
/// namespace: the test runs as root, as CI does).
fn on_a_small_disk(env: &[(&str, &str)]) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let script = "mount -t tmpfs -o size=4m tmpfs \"$0\" && cd \"$0\" && exec \"$@\"";
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        &root,
    ];
    Proxy::start_as(Options {
        wrapper: &wrapper,
        env,
        args: &["--runtime", "python"],
        dir: Some(dir),
        ..Options::default()
    })
}

/// Bytes no compressor can shrink.
fn noise(n: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_package_larger_than_the_disk_fails_as_such_and_leaves_room_for_the_next() {
    for compat in [false, true] {
        let env: &[(&str, &str)] = if compat {
            &[("OW_LOG_INIT_ERROR", "1")]
        } else {
            &[]
        };
        let p = on_a_small_disk(env);
        let big = noise(3 * 1024 * 1024);
        let archive = Archive::zip()
            .file("__main__.py", "def main(a):\n    return {}\n")
            .file("data.bin", &big)
            .file("more.bin", &big)
            .build();
        let init = p.init_binary(&archive, "main");
        assert_json_answer("disk full", &init);
        if compat {
            assert_eq!(
                (init.status, init.error()),
                (502, CANNOT_LOCATE.to_string())
            );
        } else {
            assert_eq!(init.status, 507, "{}", init.text());
            let error = init.error();
            assert!(error.contains("No space left on device"), "{error}");
            assert!(!error.contains("Invalid action package"), "{error}");
        }
        let (_, err) = p.framed_logs(1);
        assert!(
            before_first_sentinel(&err).contains("No space left on device"),
            "{err}"
        );
        // The failed attempt's files are gone: a small action fits again, twice over.
        let small = Archive::zip()
            .file("__main__.py", "def main(a):\n    return {'small': True}\n")
            .file("data.bin", &big)
            .build();
        init_binary_ok(&p, &small, "main");
        assert_eq!(run_ok(&p, json!({})), json!({"small": true}));
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol errors get JSON answers too; slow and idle connections are closed
// ---------------------------------------------------------------------------------------------

#[test]
fn every_http_error_is_a_json_answer_with_its_status() {
    let p = Proxy::python();
    let long_header = format!("X-Long: {}\r\n", "h".repeat(70 * 1024));
    let many_headers: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
    let long_target = format!("/run?{}", "q".repeat(10 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a bad Content-Length",
            b"POST /run HTTP/1.1\r\nContent-Length: ten\r\n\r\n".to_vec(),
            400,
            "Content-Length",
        ),
        (
            "two Content-Lengths",
            b"POST /run HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
            400,
            "conflicting",
        ),
        (
            "Content-Length and chunked",
            b"POST /run HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            400,
            "Transfer-Encoding",
        ),
        (
            "an unknown Transfer-Encoding",
            b"POST /run HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            501,
            "gzip",
        ),
        (
            "a header over 64 KiB",
            format!("POST /run HTTP/1.1\r\n{long_header}\r\n").into_bytes(),
            431,
            "too large",
        ),
        (
            "150 header fields",
            format!("POST /run HTTP/1.1\r\n{many_headers}\r\n").into_bytes(),
            431,
            "too large",
        ),
        (
            "a 10 KiB target",
            format!("POST {long_target} HTTP/1.1\r\n\r\n").into_bytes(),
            414,
            "too long",
        ),
        (
            "a garbage request line",
            b"HELLO THERE\r\n\r\n".to_vec(),
            400,
            "Malformed",
        ),
        (
            "a broken chunk",
            b"POST /run HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
                .to_vec(),
            400,
            "chunked",
        ),
        (
            "a chunk longer than said",
            b"POST /run HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}xx\r\n0\r\n\r\n"
                .to_vec(),
            400,
            "chunked",
        ),
    ];
    for (what, request, status, says) in cases {
        let mut c = p.connect();
        c.send_raw(&request);
        let answer = c.read_answer();
        assert_json_answer(what, &answer);
        assert_eq!(answer.status, status, "{what}: {}", answer.text());
        assert!(answer.error().contains(says), "{what}: {}", answer.error());
        assert_eq!(answer.header("connection"), Some("close"), "{what}");
    }
    // None of it reached an action or the logs, and the proxy serves on.
    init_ok(&p, "def main(a):\n    return {'fine': True}\n", "main");
    assert_eq!(run_ok(&p, json!({})), json!({"fine": true}));
    let (out, err) = p.framed_logs(1);
    assert!(
        !err.contains("Malformed") && !out.contains("Malformed"),
        "{err}"
    );
}

#[test]
fn a_chunked_request_with_trailers_is_read_whole() {
    let p = Proxy::python();
    init_ok(&p, "def main(a):\n    return {'got': a}\n", "main");
    let mut c = p.connect();
    c.send_raw(b"POST /run HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{\"val\r\n9\r\nue\":{\"a\":\r\n3\r\n1}}\r\n0\r\nX-Trailer: t\r\n\r\n");
    let answer = c.read_answer();
    assert_status(&p, "chunked", &answer, 200);
    assert_eq!(answer.json(), json!({"got": {"a": 1}}));
    // And the connection is still in step for the next request.
    assert_eq!(
        c.post("/run", b"{\"value\":{\"b\":2}}").json(),
        json!({"got": {"b": 2}})
    );
}

#[test]
fn a_client_that_asks_to_continue_is_told_to() {
    let p = Proxy::python();
    init_ok(&p, "def main(a):\n    return {'got': a}\n", "main");
    let mut c = p.connect();
    let body = b"{\"value\":{\"c\":3}}";
    c.send_raw(&request_head(
        "POST",
        "/run",
        &[("Expect", "100-continue")],
        Some(body.len()),
    ));
    let mut interim = [0u8; 25];
    use std::io::Read as _;
    c.socket().read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send_raw(body);
    assert_eq!(c.read_answer().json(), json!({"got": {"c": 3}}));
}

#[test]
fn a_slow_request_head_is_answered_408_and_an_idle_connection_is_closed() {
    let p = Proxy::start_with(
        "python",
        &[
            ("OW_HTTP_HEAD_TIMEOUT_SECONDS", "1"),
            ("OW_HTTP_IDLE_TIMEOUT_SECONDS", "1"),
        ],
        &[],
    );
    let mut slow = p.connect();
    slow.send_raw(b"POST /run HTTP/1.1\r\nHost: x\r\n");
    let answer = slow.read_answer();
    assert_json_answer("slow head", &answer);
    assert_eq!(answer.status, 408);
    // An idle keep-alive connection: closed without a word.
    let idle = p.connect();
    let mut rest = Vec::new();
    use std::io::Read as _;
    let n = idle.socket().read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&rest));
}

#[test]
fn settings_that_cannot_work_are_refused_at_start() {
    for (name, value) in [
        ("OW_MAX_RESULT_BYTES", "10"),
        ("OW_MAX_REQUEST_BYTES", "0"),
        ("OW_CONCURRENCY", "0"),
        ("OW_ENFORCE_DEADLINE", "sometimes"),
        ("OW_HTTP_HEAD_TIMEOUT_SECONDS", "0"),
    ] {
        let output = std::process::Command::new(binary())
            .args(["--port", &free_port().to_string()])
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}={value}: {stderr}");
    }
}
