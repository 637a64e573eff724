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
