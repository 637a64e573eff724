//! Production faults: a log reader that stops, actions that misbehave on purpose, a full disk,
//! signals at bad moments. Each is a behaviour the proxy keeps under that fault.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

/// A proxy whose stdout nobody reads until the test says so.
fn unread_stdout(runtime: &str, env: &[(&str, &str)]) -> Proxy {
    Proxy::launch_with(Options {
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
    let address = p.address();
    let run = std::thread::spawn(move || {
        address.connect().post(
            "/run",
            json!({"value": {"lines": lines}}).to_string().as_bytes(),
        )
    });
    // Stuck in its output, the action holds up neither other connections nor the memory.
    let pid = p.pid();
    let base = status_kib(pid, "VmRSS").unwrap();
    for _ in 0..20 {
        assert_eq!(p.init_code(PRINTER, "main").status, 403);
        assert_eq!(p.post("/nowhere", b"{}").status, 404);
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak = status_kib(pid, "VmHWM").unwrap();
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
    assert_eq!(answer.status, 200);
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
    assert_eq!(
        answer.status,
        502,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
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
    let address = p.address();
    let next = std::thread::spawn(move || {
        address.connect().post(
            "/run",
            json!({"value": {"lines": 3}}).to_string().as_bytes(),
        )
    });
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
    let address = p.address();
    let run = std::thread::spawn(move || {
        address.connect().post(
            "/run",
            json!({"value": {"lines": 64 * 1024}})
                .to_string()
                .as_bytes(),
        )
    });
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
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
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

/// Whether a process whose command line holds `marker` is alive (zombies count as gone).
fn alive_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Starts a daemon that leaves the action's process group and session.
fn daemon_action(marker: &str) -> String {
    format!(
        "import subprocess\ndef main(args):\n    subprocess.Popen(['setsid', 'sleep', '{marker}'])\n    return {{}}\n"
    )
}

#[test]
fn every_stop_signal_stops_the_proxy_and_whatever_its_actions_started() {
    for (i, signal) in ["TERM", "INT", "HUP", "QUIT"].into_iter().enumerate() {
        let marker = format!("300.{}{i}", std::process::id());
        let mut p = Proxy::start("python");
        init_ok(&p, &daemon_action(&marker), "main");
        run_ok(&p, json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive_with(&marker).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive_with(&marker).is_empty(), "the daemon did not start");
        p.signal(signal);
        assert!(
            p.wait_exit(Duration::from_secs(10)).is_some(),
            "SIG{signal} did not stop the proxy"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !alive_with(&marker).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = alive_with(&marker);
        for pid in &left {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
        assert!(
            left.is_empty(),
            "SIG{signal} left the daemon running: {left:?}"
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
    let address = p.address();
    let run = std::thread::spawn(move || address.connect().post("/run", b"{\"value\":{}}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.stdout().contains("working") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    p.signal("TERM");
    let answer = run.join().unwrap();
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
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
    let p = Proxy::start("python");
    init_ok(&p, "def main(args):\n    return {'got': args}\n", "main");
    for body in [&b"{\"value\":{\"a\":1}}"[..], &[b' '; 0]] {
        let mut c = p.connect();
        let head = format!(
            "POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.send_raw(head.as_bytes());
        c.send_raw(body);
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
