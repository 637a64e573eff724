//! Black-box actions (`OW_ACTION_MODE=blackbox`), as the Docker skeleton serves them: an
//! executable started for every activation, its argument on the command line and on stdin,
//! its last line of stdout the result, the rest logs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

/// A black box prints a log line on each stream, then its result: what it got on the command
/// line and on stdin (their lengths, and the `name` in them), its folder, and its context.
const EXEC: &str = r#"#!/bin/bash
read -r input
echo "log line on stdout"
echo "log line on stderr" >&2
name=$(printf '%s' "$input" | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p')
echo "{\"argv\": ${#1}, \"stdin\": ${#input}, \"name\": \"$name\", \"pwd\": \"$(pwd)\", \"activation\": \"$__OW_ACTIVATION_ID\"}"
"#;

/// A proxy in black-box mode whose executable lives at `<folder>/action/exec`.
fn blackbox(env: &[(&str, &str)]) -> (Proxy, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let exec = dir.path().join("action/exec");
    std::fs::create_dir_all(exec.parent().unwrap()).unwrap();
    let exec_text = exec.to_str().unwrap().to_string();
    let mut all = vec![
        ("OW_ACTION_MODE", "blackbox"),
        ("OW_BLACKBOX_EXEC", exec_text.as_str()),
    ];
    all.extend_from_slice(env);
    let p = Proxy::start_as(Options {
        dir: Some(dir),
        env: &all,
        ..Options::default()
    });
    (p, exec)
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn check_run(p: &Proxy, exec: &Path) {
    let answer = p.post_json(
        "/run",
        &json!({"value": {"name": "Ada"}, "activation_id": "a-1", "namespace": "ns"}),
    );
    assert_status(p, "run", &answer, 200);
    let got = answer.json();
    let folder = exec.parent().unwrap().canonicalize().unwrap();
    assert_eq!(got["name"], json!("Ada"), "{got}");
    assert_eq!(
        got["argv"], got["stdin"],
        "the argument comes both ways: {got}"
    );
    assert_eq!(Path::new(got["pwd"].as_str().unwrap()), folder, "{got}");
    assert_eq!(got["activation"], json!("a-1"), "{got}");
}

#[test]
fn code_sent_as_text_becomes_the_executable_and_runs_for_every_activation() {
    let (p, exec) = blackbox(&[]);
    let init = p.init(json!({"code": EXEC}));
    assert_status(&p, "init", &init, 200);
    check_run(&p, &exec);
    check_run(&p, &exec);
    // Everything but the last line is the activation's log, then the sentinels.
    let (out, err) = p.framed_logs(2);
    assert_eq!(out, format!("log line on stdout\n{SENTINEL}\n").repeat(2));
    assert_eq!(err, format!("log line on stderr\n{SENTINEL}\n").repeat(2));
    // Once initialised, it stays: a second /init is refused.
    let again = p.init(json!({"code": EXEC}));
    assert_eq!(
        (again.status, again.error()),
        (403, ALREADY_INITIALIZED.to_string())
    );
}

#[test]
fn a_zip_unpacks_into_the_executables_folder() {
    let (p, exec) = blackbox(&[]);
    let archive = Archive::zip()
        .file_mode("exec", EXEC, 0o755)
        .file("data/readme.txt", "beside the executable")
        .build();
    assert_status(
        &p,
        "init",
        &p.init(json!({"code": b64(&archive), "binary": true})),
        200,
    );
    check_run(&p, &exec);
    assert!(exec.parent().unwrap().join("data/readme.txt").is_file());
    // A zip without `exec` locates nothing.
    let (p, _) = blackbox(&[]);
    let empty = Archive::zip().file("other.txt", "x").build();
    let init = p.init(json!({"code": b64(&empty), "binary": true}));
    assert_eq!(
        (init.status, init.error()),
        (502, CANNOT_LOCATE.to_string())
    );
    p.framed_logs(1);
}

#[test]
fn an_image_with_its_executable_needs_no_code_and_even_no_init() {
    let (p, exec) = blackbox(&[]);
    write_exec(&exec, EXEC);
    // /run works at once: the executable is the image's.
    check_run(&p, &exec);
    assert_status(&p, "init", &p.init(json!({})), 200);
    check_run(&p, &exec);
    // Re-init is allowed when the image says so.
    let (p, exec) = blackbox(&[("PROXY_ALLOW_REINIT", "1")]);
    assert_status(&p, "init", &p.init(json!({"code": EXEC})), 200);
    assert_status(&p, "init", &p.init(json!({"code": EXEC})), 200);
    check_run(&p, &exec);
}

#[test]
fn a_200_kb_argument_reaches_the_executable_on_stdin_only() {
    let (p, _) = blackbox(&[]);
    assert_status(&p, "init", &p.init(json!({"code": EXEC})), 200);
    let big = "x".repeat(200 * 1024);
    let answer = p.run(json!({"name": "big", "pad": big}));
    assert_status(&p, "run", &answer, 200);
    let got = answer.json();
    assert_eq!(got["argv"], json!(0), "too long for an argument: {got}");
    assert!(got["stdin"].as_u64().unwrap() > 200 * 1024, "{got}");
    assert_eq!(got["name"], json!("big"));
}

#[test]
fn a_last_line_that_is_no_json_object_is_502_and_logged() {
    let (p, _) = blackbox(&[]);
    let exec = "#!/bin/bash\necho 'a log line'\necho 'not json at all'\n";
    assert_status(&p, "init", &p.init(json!({"code": exec})), 200);
    let answer = p.run(json!({}));
    assert_eq!(
        (answer.status, answer.error()),
        (502, NOT_A_DICTIONARY.to_string())
    );
    let (out, _) = p.framed_logs(1);
    assert_eq!(out, format!("a log line\nnot json at all\n{SENTINEL}\n"));
    // An array is a result; a value that is neither object nor array is refused, framed.
    let exec = "#!/bin/bash\necho '[1, 2]'\n";
    let (p, _) = blackbox(&[]);
    assert_status(&p, "init", &p.init(json!({"code": exec})), 200);
    assert_eq!(run_ok(&p, json!([3])), json!([1, 2]));
    let bad = p.post("/run", br#"{"value": "A"}"#);
    assert_eq!(bad.status, 404, "{}", bad.text());
    p.framed_logs(2);
}

#[test]
fn a_deadline_stops_a_black_box_that_runs_too_long() {
    let (p, _) = blackbox(&[]);
    let exec = "#!/bin/bash\necho started\nsleep 60\necho '{}'\n";
    assert_status(&p, "init", &p.init(json!({"code": exec})), 200);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 500;
    let started = std::time::Instant::now();
    let answer = p.post_json(
        "/run",
        &json!({"value": {}, "deadline": deadline.to_string()}),
    );
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(answer.error().contains("deadline"), "{}", answer.error());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let (out, _) = p.framed_logs(1);
    assert!(out.contains("started"), "{out}");
}

#[test]
fn a_baked_black_box_answers_its_first_run() {
    let (p, exec) = blackbox(&[("__OW_ACTION_CODE", EXEC)]);
    check_run(&p, &exec);
    let init = p.init(json!({"code": EXEC}));
    assert_eq!(
        (init.status, init.error()),
        (403, ALREADY_INITIALIZED.to_string())
    );
}

/// Prints its environment's activation keys and the `name` it got, as JSON.
const CONTEXT_EXEC: &str = r#"#!/bin/bash
echo "{\"activation\": \"$__OW_ACTIVATION_ID\", \"namespace\": \"$__OW_NAMESPACE\", \"argv\": ${#1}}"
"#;

#[test]
fn init_is_answered_ok_as_the_skeleton_answers_it_and_a_body_that_is_no_json_is_no_code() {
    let (p, exec) = blackbox(&[]);
    write_exec(&exec, EXEC);
    // Flask's ('OK', 200): the text OK, as HTML.
    let a = p.post_json("/init", &json!({"value": {}}));
    assert_eq!((a.status, a.text().into_owned()), (200, "OK".to_string()));
    assert!(
        a.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        a.headers
    );
    for body in [&b""[..], b"not json", b"[]", b"0"] {
        let (p, exec) = blackbox(&[]);
        write_exec(&exec, EXEC);
        let a = p.connect().post("/init", body);
        assert_eq!(
            (a.status, a.text().into_owned()),
            (200, "OK".to_string()),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Without an executable, no code is no action.
    let (p, _) = blackbox(&[]);
    let a = p.connect().post("/init", b"not json");
    assert_eq!((a.status, a.error()), (502, CANNOT_LOCATE.to_string()));
}

#[test]
fn a_run_body_that_is_no_json_runs_with_nothing_and_a_nested_activation_is_the_context() {
    let (p, exec) = blackbox(&[]);
    write_exec(&exec, CONTEXT_EXEC);
    for body in [&b""[..], b"garbage", b"[]", b"false"] {
        let a = p.connect().post("/run", body);
        assert_eq!(
            a.status,
            200,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            a.text()
        );
        assert_eq!(
            a.json()["argv"],
            json!(2),
            "the argument is {{}}: {}",
            a.text()
        );
    }
    // A truthy body that is no object is refused, as there.
    let a = p.connect().post("/run", b"[1]");
    assert_eq!(a.status, 404, "{}", a.text());
    // The skeleton's Knative shape: the context is the nested activation's, alone.
    let a = p.post_json(
        "/run",
        &json!({"value": {}, "activation": {"activation_id": "inner", "namespace": "n2"},
                "activation_id": "outer"}),
    );
    assert_status(&p, "run", &a, 200);
    assert_eq!(a.json()["activation"], json!("inner"));
    assert_eq!(a.json()["namespace"], json!("n2"));
    let a = p.post_json("/run", &json!({"value": {}, "activation_id": "outer"}));
    assert_eq!(a.json()["activation"], json!("outer"));
}

#[test]
fn a_zipped_exec_without_mode_bits_runs_as_it_does_over_the_skeletons_own_exec() {
    // Zips made by tools that keep no Unix modes (none recorded), or that record 0644.
    for zip in [
        Archive::zip().file("exec", CONTEXT_EXEC).build(),
        Archive::zip()
            .file_mode("exec", CONTEXT_EXEC, 0o644)
            .build(),
    ] {
        let (p, exec) = blackbox(&[]);
        let a = p.post_json(
            "/init",
            &json!({"value": {"code": b64(&zip), "binary": true}}),
        );
        assert_eq!((a.status, a.text().into_owned()), (200, "OK".to_string()));
        let a = p.post_json("/run", &json!({"value": {}, "activation_id": "z"}));
        assert_status(&p, "run", &a, 200);
        assert_eq!(a.json()["activation"], json!("z"));
        let mode = std::fs::metadata(&exec).unwrap().permissions().mode();
        assert_ne!(mode & 0o111, 0, "exec is {mode:o}");
    }
}

#[test]
fn proxy_allow_reinit_allows_on_1_and_refuses_on_anything_else_without_stopping_the_proxy() {
    for (value, again) in [("1", 200), ("true", 200), ("2", 403), ("nonsense", 403)] {
        let (p, exec) = blackbox(&[("PROXY_ALLOW_REINIT", value)]);
        write_exec(&exec, EXEC);
        assert_eq!(p.post_json("/init", &json!({"value": {}})).status, 200);
        let a = p.post_json("/init", &json!({"value": {}}));
        assert_eq!(a.status, again, "PROXY_ALLOW_REINIT={value}: {}", a.text());
    }
}
