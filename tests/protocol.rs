//! The HTTP and log protocol of SPEC §1–4: the rows that do not depend on the language, driven
//! through the default Python runtime against the real binary and the real `python3`. The rows
//! that are also canonical runtime cases (missing code, a second /init, a result that is not an
//! object) run for every language in tests/canonical.rs.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Returns its argument's `r` field, or the arguments themselves.
const ECHO: &str = "def main(args):\n    return args.get('r', args)\n";

/// A started proxy with the echo action initialised.
fn echo_proxy() -> Proxy {
    let p = Proxy::python();
    init_ok(&p, ECHO, "main");
    p
}

#[test]
fn every_answer_is_json_with_type_and_length_including_errors() {
    let p = Proxy::python();
    let mut seen = Vec::new();
    let mut check = |what: &str, expected: u16, a: Answer| {
        assert_json_answer(what, &a);
        assert_eq!(a.status, expected, "{what}: {}", a.json());
        seen.push(what.to_string());
    };
    check("unknown path", 404, p.post("/nope", b"{}"));
    check("GET /", 404, p.request("GET", "/", b""));
    check("run before init", 500, p.run(json!({})));
    check("init not JSON", 400, p.post("/init", b"not json"));
    check("init without code", 403, p.init(json!({})));
    check(
        "init with bad base64",
        400,
        p.init(json!({"code": "not base64 !!", "binary": true})),
    );
    check(
        "init with syntax error",
        502,
        p.init_code("def main(args)\n", "main"),
    );
    check(
        "init of a zip without entry",
        502,
        p.init_binary(&Archive::zip().file("other.py", "x = 1\n").build(), "main"),
    );
    check("init", 200, p.init_code(ECHO, "main"));
    check("run", 200, p.run(json!({"r": {"ok": 1}})));
    check("run with a string result", 502, p.run(json!({"r": "text"})));
    check("run not JSON", 400, p.post("/run", b"garbage"));
    check("second init", 403, p.init_code(ECHO, "main"));
    assert_eq!(seen.len(), 13);
}

#[test]
fn answers_on_one_kept_alive_connection_each_carry_their_length() {
    let p = echo_proxy();
    let mut connection = p.connect();
    for i in 0..5 {
        let good = connection.run(json!({"r": {"i": i}}));
        assert_json_answer("run", &good);
        assert_eq!(good.json(), json!({"i": i}));
        let bad = connection.post("/run", b"{broken");
        assert_json_answer("bad run", &bad);
        assert_eq!(bad.status, 400);
    }
}

#[test]
fn unknown_paths_are_json_404() {
    let p = Proxy::python();
    for (method, path) in [
        ("POST", "/nope"),
        ("POST", "/init/extra"),
        ("POST", "/"),
        ("GET", "/"),
        ("GET", "/nope"),
        ("PUT", "/whatever"),
    ] {
        let a = p.request(method, path, b"{}");
        assert_json_answer(path, &a);
        assert_eq!(a.status, 404, "{method} {path}: {}", a.json());
        assert!(!a.error().is_empty(), "{method} {path}");
    }
}

#[test]
fn init_body_that_is_not_json_is_400_and_does_not_count() {
    let p = Proxy::python();
    for body in [
        &b"not json"[..],
        b"",
        b"{\"value\":",
        b"{\"value\": {\"code\": \"x\"}} trailing",
        b"[1, 2]",
    ] {
        let a = p.post("/init", body);
        assert_eq!(
            a.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            a.json()
        );
        assert!(!a.error().is_empty());
    }
    init_ok(&p, ECHO, "main");
    assert_eq!(
        p.run(json!({"r": {"ok": true}})).json(),
        json!({"ok": true})
    );
    p.framed_logs(1);
}

#[test]
fn init_value_that_is_not_an_object_is_400() {
    let p = Proxy::python();
    for value in [
        json!(5),
        json!("def main(a): return a"),
        json!([1]),
        json!(true),
    ] {
        let a = p.post_json("/init", &json!({ "value": value }));
        assert_eq!(a.status, 400, "value {value}: {}", a.json());
        assert!(!a.error().is_empty());
    }
    init_ok(&p, ECHO, "main");
}

#[test]
fn run_before_init_is_500() {
    let p = Proxy::python();
    let a = p.run(json!({"x": 1}));
    assert_json_answer("run before init", &a);
    assert_eq!(a.status, 500);
    assert!(!a.error().is_empty());
    // Also after an /init that failed.
    assert_eq!(p.init(json!({})).status, 403);
    assert_eq!(p.run(json!({})).status, 500);

    init_ok(&p, ECHO, "main");
    assert_eq!(p.run(json!({"r": [1]})).json(), json!([1]));
    p.framed_logs(1);
}

#[test]
fn run_body_that_is_not_json_is_400_without_sentinel() {
    let p = echo_proxy();
    for body in [&b"nope"[..], b"", b"{\"value\":", b"{\"value\": {}} {}"] {
        let a = p.post("/run", body);
        assert_json_answer("bad run", &a);
        assert_eq!(
            a.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            a.json()
        );
        assert!(!a.error().is_empty());
    }
    assert_eq!(p.run(json!({"r": {"fine": 1}})).json(), json!({"fine": 1}));
    p.framed_logs(1);
}

#[test]
fn failed_init_does_not_count_and_the_next_one_gets_a_fresh_folder() {
    let p = Proxy::python();
    let no_entry = Archive::zip()
        .file("leftover.txt", "from the failed attempt")
        .build();
    assert_eq!(p.init_binary(&no_entry, "main").status, 502);
    assert_eq!(p.init_code("def main(args:\n", "main").status, 502);
    let lister =
        "import os\ndef main(args):\n    return {'files': os.listdir('.'), 'cwd': os.getcwd()}\n";
    init_ok(&p, lister, "main");
    let result = p.run(json!({})).json();
    let files = result["files"].as_array().unwrap();
    assert!(
        !files.contains(&json!("leftover.txt")),
        "the action folder holds files of an earlier attempt: {result}"
    );
    // Two failed inits and one run, each framed once.
    p.framed_logs(3);
}

#[test]
fn failing_import_is_502_with_the_first_line_of_the_cause() {
    let p = Proxy::python();
    let code = "import no_such_module_for_actionloop\n\ndef main(args):\n    return {}\n";
    let a = p.init_code(code, "main");
    assert_json_answer("failing import", &a);
    assert_eq!(a.status, 502);
    assert_eq!(
        a.error(),
        format!(
            "{CANNOT_START} ModuleNotFoundError: No module named 'no_such_module_for_actionloop'"
        )
    );
    let (_, err) = p.framed_logs(1);
    let cause = before_first_sentinel(&err);
    assert!(cause.contains("Traceback"), "stderr: {err}");
    assert!(
        cause.contains("ModuleNotFoundError: No module named 'no_such_module_for_actionloop'"),
        "stderr: {err}"
    );
}

#[test]
fn exit_before_the_ack_is_502_cannot_start() {
    let p = Proxy::python();
    for code in [
        "import os\nos._exit(3)\n",
        "import sys\nsys.exit(4)\n",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    ] {
        let a = p.init_code(code, "main");
        assert_json_answer("exit at load", &a);
        assert_eq!(a.status, 502, "{code}: {}", a.json());
        assert!(a.error().starts_with(CANNOT_START), "{code}: {}", a.error());
    }
    // Each failed attempt is framed once, and none of them counted.
    p.framed_logs(3);
    init_ok(&p, ECHO, "main");
}

#[test]
fn binary_code_that_is_not_base64_is_400_saying_base64() {
    let p = Proxy::python();
    for code in ["this is not base64 !!", "@@@@", "UEsDBA=x"] {
        let a = p.init(json!({"code": code, "binary": true, "main": "main"}));
        assert_json_answer("bad base64", &a);
        assert_eq!(a.status, 400, "{code}: {}", a.json());
        assert!(
            a.error().to_lowercase().contains("base64"),
            "{code}: {}",
            a.error()
        );
    }
    init_ok(&p, ECHO, "main");
    assert_eq!(p.run(json!({"r": {}})).json(), json!({}));
    p.framed_logs(1);
}

#[test]
fn version_flag_prints_the_version_and_exits_0() {
    for flag in ["-version", "--version"] {
        let mut child = Command::new(binary())
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{flag}: the binary did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("actionloop"), "{flag}: {text}");
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{flag}: {text}");
    }
}

#[test]
fn action_exit_during_run_is_400_command_exited_and_the_next_run_restarts() {
    let p = Proxy::python();
    let code = r#"import os, signal, sys
def main(args):
    how = args.get("how")
    if how == "exit":
        sys.stderr.write("last words before exiting\n")
        sys.stderr.flush()
        os._exit(7)
    if how == "sysexit":
        sys.exit(5)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid()}
"#;
    init_ok(&p, code, "main");
    let first = p.run(json!({})).json()["pid"].clone();
    assert!(first.is_u64(), "{first}");

    let mut runs = 1;
    let mut previous = first;
    for (how, expected) in [("exit", "7"), ("sysexit", "5"), ("kill", "9")] {
        let a = p.run(json!({ "how": how }));
        runs += 1;
        assert_json_answer("exit during run", &a);
        assert_eq!(a.status, 400, "{how}: {}", a.json());
        let error = a.error();
        assert!(error.contains("command exited"), "{how}: {error}");
        assert!(
            error.contains(expected),
            "{how}: no status {expected} in {error}"
        );
        if how == "kill" {
            assert!(error.to_lowercase().contains("signal"), "{how}: {error}");
        } else {
            assert!(error.to_lowercase().contains("status"), "{how}: {error}");
        }
        // The next run is served by a new child.
        let next = p.run(json!({}));
        runs += 1;
        assert_eq!(next.status, 200, "after {how}: {}", next.json());
        let pid = next.json()["pid"].clone();
        assert!(pid.is_u64(), "{pid}");
        assert_ne!(pid, previous, "after {how} the same process answered");
        previous = pid;
    }
    // Every activation reached the action, so every one is framed, the fatal ones too.
    let (_, err) = p.framed_logs(runs);
    // What the dying activation wrote is in its own part of the logs.
    let second = activations(&err)[1];
    assert!(
        second.contains("last words before exiting"),
        "stderr: {err}"
    );
}

#[test]
fn four_concurrent_clients_times_50_runs_get_their_own_answers() {
    let p = Proxy::python();
    let code = r#"import sys, time
def main(args):
    me = args["id"]
    print("begin " + me)
    print("begin " + me, file=sys.stderr)
    time.sleep(0.001)
    print("end " + me)
    print("end " + me, file=sys.stderr)
    return {"id": me, "echo": args["payload"]}
"#;
    init_ok(&p, code, "main");
    concurrently(&p, 4, |c, connection| {
        for i in 0..50 {
            let id = format!("client{c}-run{i}");
            let payload = format!("{}", c * 1000 + i).repeat(c + 1);
            let a = connection.run(json!({"id": id, "payload": payload}));
            assert_eq!(a.status, 200, "{id}: {}", a.text());
            assert_eq!(a.json(), json!({"id": id, "echo": payload}));
        }
    });

    let (out, err) = p.logs_after(200);
    for (name, text) in [("stdout", &out), ("stderr", &err)] {
        assert_eq!(count_sentinels(text), 200, "{name}");
        let mut ids = std::collections::BTreeSet::new();
        let mut segment = Vec::new();
        for line in text.lines() {
            if line != SENTINEL {
                segment.push(line);
                continue;
            }
            // Each activation's logs are its own two lines, not interleaved with another's.
            assert_eq!(segment.len(), 2, "{name}: {segment:?}");
            let id = segment[0]
                .strip_prefix("begin ")
                .unwrap_or_else(|| panic!("{name}: {segment:?}"));
            assert_eq!(segment[1], format!("end {id}"), "{name}");
            assert!(ids.insert(id.to_string()), "{name}: {id} twice");
            segment.clear();
        }
        assert!(segment.is_empty(), "{name}: unframed {segment:?}");
        assert_eq!(ids.len(), 200, "{name}");
    }
}

#[test]
fn sentinel_is_on_its_own_line_when_output_lacks_a_final_newline() {
    let p = Proxy::python();
    let code = r#"import sys
def main(args):
    sys.stdout.write("out without newline")
    sys.stderr.write("err without newline")
    return {}
"#;
    init_ok(&p, code, "main");
    run_ok(&p, json!({}));
    run_ok(&p, json!({}));
    let (out, err) = p.logs_after(2);
    for (name, text, line) in [
        ("stdout", &out, "out without newline"),
        ("stderr", &err, "err without newline"),
    ] {
        assert_eq!(count_sentinels(text), 2, "{name}: {text:?}");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines.iter().filter(|l| **l == line).count(),
            2,
            "{name}: {text:?}"
        );
        assert!(
            text.ends_with(&format!("{line}\n{SENTINEL}\n")),
            "{name}: {text:?}"
        );
    }
}

#[test]
fn module_level_output_lands_before_the_first_sentinel() {
    let p = Proxy::python();
    let code = r#"import sys
print("module-level stdout")
print("module-level stderr", file=sys.stderr)
def main(args):
    print("run stdout")
    print("run stderr", file=sys.stderr)
    return {}
"#;
    init_ok(&p, code, "main");
    run_ok(&p, json!({}));
    let (out, err) = p.logs_after(1);
    for (name, text, loaded, ran) in [
        ("stdout", &out, "module-level stdout", "run stdout"),
        ("stderr", &err, "module-level stderr", "run stderr"),
    ] {
        assert_eq!(count_sentinels(text), 1, "{name}: {text}");
        let first = before_first_sentinel(text);
        let at_load = first
            .find(loaded)
            .unwrap_or_else(|| panic!("{name}: module output after the sentinel: {text}"));
        let at_run = first
            .find(ran)
            .unwrap_or_else(|| panic!("{name}: run output after the sentinel: {text}"));
        assert!(at_load < at_run, "{name}: {text}");
    }
}

#[test]
fn proxy_writes_nothing_between_activation_start_and_sentinel_by_default() {
    let p = Proxy::python();
    let code = r#"import sys
def main(args):
    n = args["n"]
    print("out %d" % n)
    print("err %d" % n, file=sys.stderr)
    return args.get("r", {"n": n})
"#;
    init_ok(&p, code, "main");
    // The action printed nothing while loading; whatever is there now is not an activation's.
    let (out_base, err_base) = (p.stdout().len(), p.stderr().len());
    run_ok(&p, json!({"n": 1}));
    assert_eq!(p.run(json!({"n": 2, "r": "not an object"})).status, 502);
    assert_eq!(p.post("/run", b"refused").status, 400);
    run_ok(&p, json!({"n": 3, "r": [3]}));
    let (out, err) = p.logs_after(3);
    let expected = |stream: &str| {
        (1..=3)
            .map(|n| format!("{stream} {n}\n{SENTINEL}\n"))
            .collect::<String>()
    };
    assert_eq!(&out[out_base..], expected("out"));
    assert_eq!(&err[err_base..], expected("err"));
}

/// With `-debug` the proxy talks on stderr (the OpenServerless PHP image runs `/bin/proxy
/// -debug`), but never while an activation runs: what it has to say waits for the sentinel.
#[test]
fn with_debug_proxy_lines_wait_for_the_running_activations_sentinel() {
    let p = Proxy::start_with("python", &[], &["-debug"]);
    let marks = tempfile::tempdir().unwrap();
    let code = r#"import os, sys, time
def main(args):
    print("err begin", file=sys.stderr, flush=True)
    open(os.path.join(args["dir"], "started"), "w").close()
    while not os.path.exists(os.path.join(args["dir"], "go")):
        time.sleep(0.01)
    print("err end", file=sys.stderr)
    return {}
"#;
    init_ok(&p, code, "main");
    let dir = marks.path().to_str().unwrap().to_string();
    let run = p.run_in_background(json!({ "dir": dir }));
    wait_until("the action did not start", Duration::from_secs(10), || {
        marks.path().join("started").exists()
    });
    // Proxy lines while the activation runs: a refused second /init and a request to an
    // unknown route, each logged by the proxy.
    assert_eq!(p.init_code(code, "main").status, 403);
    assert_eq!(p.post("/nowhere", b"{}").status, 404);
    std::fs::write(marks.path().join("go"), "").unwrap();
    assert_eq!(run.join().unwrap().status, 200);
    let (_, err) = p.framed_logs(1);
    let frame_start = err.find("err begin\n").expect("the action's first line");
    let frame = &err[frame_start..err.find(SENTINEL).unwrap()];
    assert_eq!(frame, "err begin\nerr end\n", "whole stderr: {err}");
    let after = &err[err.find(SENTINEL).unwrap()..];
    assert!(after.contains(ALREADY_INITIALIZED), "stderr: {err}");
}

#[test]
fn oversized_request_body_is_413_json() {
    let p = Proxy::start_with("python", &[("OW_MAX_REQUEST_BYTES", "2000")], &[]);
    let big = format!(
        "def main(args):\n    return {{'pad': '{}'}}\n",
        "x".repeat(4000)
    );
    let a = p.init_code(&big, "main");
    assert_json_answer("oversized init", &a);
    assert_eq!(a.status, 413, "{}", a.json());
    init_ok(&p, ECHO, "main");
    let a = p.run(json!({"r": {"pad": "y".repeat(4000)}}));
    assert_json_answer("oversized run", &a);
    assert_eq!(a.status, 413, "{}", a.json());
    assert_eq!(
        p.run(json!({"r": {"small": 1}})).json(),
        json!({"small": 1})
    );
}

#[test]
fn log_init_error_mode_answers_the_fixed_texts_and_keeps_the_cause_in_the_logs() {
    let p = Proxy::start_with("python", &[("OW_LOG_INIT_ERROR", "1")], &[]);
    let a = p.init_code("import no_such_module_in_compat_mode\n", "main");
    assert_eq!(a.status, 502);
    assert_eq!(a.json(), json!({"error": CANNOT_START}));
    let a = p.init_binary(&Archive::zip().file("helper.py", "x = 1\n").build(), "main");
    assert_eq!(a.status, 502);
    assert_eq!(a.json(), json!({"error": CANNOT_LOCATE}));
    let (_, err) = p.framed_logs(2);
    assert!(
        before_first_sentinel(&err).contains("no_such_module_in_compat_mode"),
        "stderr: {err}"
    );
    init_ok(&p, ECHO, "main");
}

#[test]
fn debug_flag_sets_ow_debug_for_the_action() {
    let code = "import os\ndef main(args):\n    return {'debug': os.environ.get('OW_DEBUG')}\n";
    let quiet = Proxy::python();
    init_ok(&quiet, code, "main");
    assert_eq!(quiet.run(json!({})).json(), json!({"debug": null}));
    for flag in ["-debug", "--debug"] {
        let debug = Proxy::start_with("python", &[], &[flag]);
        init_ok(&debug, code, "main");
        assert_eq!(debug.run(json!({})).json(), json!({"debug": "1"}), "{flag}");
    }
}

#[test]
fn runtime_comes_from_the_flag_then_ow_runtime_then_python() {
    let code = "import sys\ndef main(args):\n    return {'python': sys.version_info[0]}\n";
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 3] = [
        (&[("OW_RUNTIME", "")], &[]),
        (&[("OW_RUNTIME", "python")], &[]),
        (&[("OW_RUNTIME", "nodejs")], &["--runtime", "python"]),
    ];
    for (env, args) in cases {
        let p = Proxy::start_args(env, args);
        let a = p.init_code(code, "main");
        assert_status(&p, &format!("{env:?} {args:?}: init"), &a, 200);
        assert_eq!(
            p.run(json!({})).json(),
            json!({"python": 3}),
            "{env:?} {args:?}"
        );
    }
}

#[test]
fn an_empty_zip_is_a_zip_without_entry() {
    let p = Proxy::python();
    // The end-of-central-directory record alone: a valid zip with no entries (`PK\x05\x06`).
    let mut empty = b"PK\x05\x06".to_vec();
    empty.extend_from_slice(&[0; 18]);
    assert_eq!(empty, Archive::zip().build());
    let a = p.init_binary(&empty, "main");
    assert_eq!(a.status, 502, "{}", a.json());
    assert!(a.error().starts_with(CANNOT_LOCATE), "{}", a.error());
}

#[test]
fn run_without_value_passes_an_empty_object() {
    let p = Proxy::python();
    let code = "def main(args):\n    return {'args': args, 'type': type(args).__name__}\n";
    init_ok(&p, code, "main");
    for body in [
        json!({}),
        json!({"value": null}),
        json!({"activation_id": "x"}),
    ] {
        let a = p.post_json("/run", &body);
        assert_eq!(a.status, 200, "{body}: {}", a.json());
        assert_eq!(a.json(), json!({"args": {}, "type": "dict"}), "{body}");
    }
}

#[test]
fn pretty_printed_run_body_with_line_breaks_works() {
    let p = echo_proxy();
    let body = "{\r\n  \"value\": {\n    \"text\": \"line one\\nline two\",\n    \"n\": [\n      1,\n      2\n    ]\n  },\n  \"activation_id\": \"pretty\"\n}\n";
    let a = p.post("/run", body.as_bytes());
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json(), json!({"text": "line one\nline two", "n": [1, 2]}));
    // The next request is answered on its own.
    assert_eq!(p.run(json!({"r": {"next": 1}})).json(), json!({"next": 1}));
}

#[test]
fn large_log_output_is_all_written_before_the_sentinel() {
    let p = Proxy::python();
    let code = r#"import sys
def main(args):
    n = args["lines"]
    for i in range(n):
        print("stdout line %06d %s" % (i, "x" * 60))
        sys.stderr.write("stderr line %06d %s\n" % (i, "y" * 60))
    return {"printed": n}
"#;
    init_ok(&p, code, "main");
    let lines = 40_000; // about 3 MiB per stream, far beyond a pipe's buffer
    assert_eq!(
        p.run(json!({ "lines": lines })).json(),
        json!({"printed": lines})
    );
    assert_eq!(p.run(json!({"lines": 1})).json(), json!({"printed": 1}));
    let (out, err) = p.logs_after(2);
    for (name, text) in [("stdout", &out), ("stderr", &err)] {
        let all: Vec<&str> = text.lines().collect();
        assert_eq!(count_sentinels(text), 2, "{name}");
        let first = all.iter().position(|l| *l == SENTINEL).unwrap();
        assert_eq!(first, lines, "{name}: lines before the first sentinel");
        assert!(
            all[first - 1].starts_with(&format!("{name} line {:06}", lines - 1)),
            "{name}: {}",
            all[first - 1]
        );
        assert_eq!(all.len(), lines + 3, "{name}");
        assert_eq!(all[lines + 2], SENTINEL, "{name}");
    }
}
