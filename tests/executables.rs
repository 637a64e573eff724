//! Executables that speak ActionLoop themselves, `OW_WAIT_FOR_ACK`, `OW_EXECUTION_ENV`,
//! `OW_COMPILER` and `-compile` (SPEC sections 6 and 7, issue 4), against the real binary.
//!
//! The actions are small bash and python3 scripts: no Go toolchain needed.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Writes an executable script (mode 0755) into `dir`.
fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The body without the line end an action may leave after its answer.
fn body_text(answer: &Answer) -> String {
    String::from_utf8(answer.body.clone())
        .unwrap()
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

/// Asserts a 502 whose error mentions `text`, and that the failed attempt's logs were closed
/// with a sentinel on both streams (SPEC 2: cause on stderr, then the sentinels).
fn assert_init_failed(proxy: &Proxy, answer: &Answer, text: &str) {
    assert_eq!(
        answer.status,
        502,
        "/init should fail with 502, got {}",
        answer.text()
    );
    let error = answer.error();
    assert!(
        error.contains(text),
        "error {error:?} should mention {text:?}"
    );
    let (out, err) = proxy.logs_after(1);
    assert!(
        count_sentinels(&out) >= 1 && count_sentinels(&err) >= 1,
        "a failed /init ends its logs with a sentinel on both streams\nstdout: {out}\nstderr: {err}"
    );
}

/// A /run must not reach an action whose /init failed.
fn assert_no_action(proxy: &Proxy) {
    let answer = proxy.run(json!({}));
    assert_ne!(
        answer.status,
        200,
        "/run after a failed /init: {}",
        answer.text()
    );
}

// ---------------------------------------------------------------------------------------------
// Executables as actions
// ---------------------------------------------------------------------------------------------

#[test]
fn single_file_bash_action_answer_is_returned_verbatim() {
    // Odd spacing, key order, escapes, a decimal that re-encoding would change, non-ASCII text:
    // any re-encoding by the proxy would show.
    let script = "#!/bin/bash\n\
                  while read -r line; do\n  \
                    echo \"{ \\\"echo\\\" : $line ,\\\"z\\\":1,  \\\"a\\\":[2.50, 1e3] }\" >&3\n\
                  done\n";
    let proxy = Proxy::python();
    init_ok(&proxy, script, "main");
    for body in [
        r#"{"value":{"name":"Ünïcode ☃","n":1.50,"s":"a\"b\\n"},"activation_id":"a1"}"#,
        r#"{"value":{},"activation_id":"a2"}"#,
    ] {
        let answer = proxy.post("/run", body.as_bytes());
        assert_status(&proxy, "run", &answer, 200);
        assert_eq!(
            body_text(&answer),
            format!("{{ \"echo\" : {body} ,\"z\":1,  \"a\":[2.50, 1e3] }}"),
            "the answer line must come back as the action wrote it"
        );
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
}

#[test]
fn single_file_python3_executable_reads_stdin_and_answers_on_fd3() {
    let script = r#"#!/usr/bin/env python3
import json, os, sys
answers = os.fdopen(3, "w")
for line in sys.stdin:
    request = json.loads(line)
    print("python executable log line", flush=True)
    answers.write(json.dumps({"got": request["value"], "id": request.get("activation_id")}) + "\n")
    answers.flush()
"#;
    let proxy = Proxy::node();
    init_ok(&proxy, script, "main");
    let answer = proxy.post_json(
        "/run",
        &json!({"value": {"x": [1, 2]}, "activation_id": "act-42"}),
    );
    assert_status(&proxy, "run", &answer, 200);
    assert_eq!(answer.json(), json!({"got": {"x": [1, 2]}, "id": "act-42"}));
    let (out, _) = proxy.logs_after(1);
    let log = out
        .find("python executable log line")
        .expect("the action's stdout is logged");
    let end = out.find(SENTINEL).expect("a sentinel after the activation");
    assert!(
        log < end,
        "the action's output comes before the sentinel:\n{out}"
    );
}

#[test]
fn zip_exec_without_mode_bits_runs_in_every_runtime() {
    // Started where the proxy runs, as the Go proxy starts executables: like the official
    // `exec` scripts, it changes to its own folder first.
    let exec = "#!/bin/bash\ncd \"$(dirname \"$0\")\"\nwhile read -r line; do echo \"{\\\"data\\\":\\\"$(cat data.txt)\\\"}\" >&3; done\n";
    let archive = Archive::zip()
        .file("exec", exec)
        .file("data.txt", "from the zip")
        .build();
    for runtime in ["python", "nodejs", "php"] {
        let proxy = Proxy::start(runtime);
        let init = proxy.init_binary(&archive, "main");
        assert_status(&proxy, &format!("runtime {runtime}: init"), &init, 200);
        let answer = proxy.run(json!({}));
        assert_status(&proxy, &format!("runtime {runtime}: run"), &answer, 200);
        assert_eq!(
            answer.json(),
            json!({"data": "from the zip"}),
            "runtime {runtime}"
        );
    }
}

#[test]
fn targz_with_symlinks_and_nested_file_without_directory_entry() {
    // `exec` gets mode 0644 from the helper, the nested file has no folder entries, `link`
    // points at the nested file and `deep` at its folder.
    let exec = r#"#!/bin/bash
cd "$(dirname "$0")"
while read -r line; do
  echo "{\"nested\":\"$(cat lib/deep/data.txt)\",\"link\":\"$(cat link)\",\"dir\":\"$(cat deep/data.txt)\",\"is_link\":$([ -L link ] && echo true || echo false)}" >&3
done
"#;
    let archive = Archive::targz()
        .file("exec", exec)
        .file("lib/deep/data.txt", "nested-content")
        .symlink("link", "lib/deep/data.txt")
        .symlink("deep", "lib/deep")
        .build();
    let proxy = Proxy::python();
    init_binary_ok(&proxy, &archive, "main");
    assert_eq!(
        run_ok(&proxy, json!({})),
        json!({"nested": "nested-content", "link": "nested-content", "dir": "nested-content", "is_link": true})
    );
}

// ---------------------------------------------------------------------------------------------
// OW_WAIT_FOR_ACK
// ---------------------------------------------------------------------------------------------

fn ack_proxy() -> Proxy {
    Proxy::start_with("python", &[("OW_WAIT_FOR_ACK", "1")], &[])
}

/// A proxy that waits for the ack, where `/init` of `script` failed with `text` and left no
/// action to run.
fn ack_refused(script: &str, text: &str) -> Proxy {
    let proxy = ack_proxy();
    let init = proxy.init_code(script, "main");
    assert_init_failed(&proxy, &init, text);
    assert_no_action(&proxy);
    proxy
}

#[test]
fn ack_ok_true_initializes_and_the_action_sees_ow_wait_for_ack() {
    // Acks only when told to: without __OW_WAIT_FOR_ACK it would send a failing ack.
    let script = r#"#!/bin/bash
if [ "$__OW_WAIT_FOR_ACK" = 1 ]; then echo '{"ok":true}' >&3; else echo '{"ok":false}' >&3; fi
while read -r line; do echo "{\"ran\":true,\"wait\":\"$__OW_WAIT_FOR_ACK\"}" >&3; done
"#;
    let proxy = ack_proxy();
    let init = proxy.init_code(script, "main");
    assert_initialised(&proxy, &init);
    assert_eq!(init.json(), json!({"ok": true}));
    // The ack is not taken for the first answer.
    assert_eq!(run_ok(&proxy, json!({})), json!({"ran": true, "wait": "1"}));
}

#[test]
fn ack_that_is_not_json_fails_init() {
    let script = "#!/bin/bash\necho 'ready!' >&3\nwhile read -r line; do echo '{}' >&3; done\n";
    ack_refused(script, BAD_ACK);
}

#[test]
fn ack_ok_false_fails_init() {
    let script =
        "#!/bin/bash\necho '{\"ok\":false}' >&3\nwhile read -r line; do echo '{}' >&3; done\n";
    ack_refused(script, BAD_ACK);
}

#[test]
fn exit_before_ack_fails_init_and_a_later_init_is_accepted() {
    let script = "#!/bin/bash\necho 'dying before the ack' >&2\nexit 4\n";
    let proxy = ack_refused(script, EXITED_DURING_INIT);
    assert!(proxy.stderr().contains("dying before the ack"));

    // A failed /init does not count (SPEC 2).
    let good = "#!/bin/bash\necho '{\"ok\":true}' >&3\nwhile read -r line; do echo '{\"second\":true}' >&3; done\n";
    init_ok(&proxy, good, "main");
    assert_eq!(run_ok(&proxy, json!({})), json!({"second": true}));
}

// ---------------------------------------------------------------------------------------------
// Without OW_WAIT_FOR_ACK
// ---------------------------------------------------------------------------------------------

#[test]
fn without_ack_an_executable_that_exits_at_once_fails_init() {
    // An ELF that exits at once: /bin/false, sent as a single binary file.
    let elf = std::fs::read("/bin/false")
        .or_else(|_| std::fs::read("/usr/bin/false"))
        .expect("/bin/false");
    assert!(elf.starts_with(b"\x7fELF"));
    let proxy = Proxy::python();
    let init = proxy.init_binary(&elf, "main");
    assert_eq!(init.status, 502, "{}", init.text());
    // Run as an executable that exited, not handed to the Python launcher as source.
    let error = init.error();
    assert!(error.to_lowercase().contains("exited"), "{error}");
    assert_no_action(&proxy);
}

/// About 200 ms of CPU, like an interpreter loading a large program: well past the Go
/// proxy's 5 ms window, well within the 1 s a start may take.
const BUSY_START: &str = "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done\n";

#[test]
fn without_ack_an_executable_that_fails_after_a_busy_start_fails_init() {
    // Without an ack there is no word of readiness: a child still working when it dies has
    // not started, however long it took (the PHP images' runner dying on a bad action).
    let script = format!("#!/bin/bash\n{BUSY_START}echo 'cannot load' >&2\nexit 5\n");
    let proxy = Proxy::python();
    let init = proxy.init_code(&script, "main");
    assert_init_failed(&proxy, &init, EXITED_DURING_INIT);
    assert!(init.error().contains("status 5"), "{}", init.error());
    let (_, err) = proxy.framed_logs(1);
    assert!(before_first_sentinel(&err).contains("cannot load"), "{err}");
    assert_no_action(&proxy);
}

#[test]
fn without_ack_an_executable_with_a_busy_start_is_ready_once_it_waits_for_requests() {
    let script = format!(
        "#!/bin/bash\n{BUSY_START}while read -r line; do echo '{{\"ready\":true}}' >&3; done\n"
    );
    let proxy = Proxy::python();
    init_ok(&proxy, &script, "main");
    assert_eq!(run_ok(&proxy, json!({})), json!({"ready": true}));
}

#[test]
fn without_ack_a_running_executable_works_and_is_not_asked_for_an_ack() {
    let script = "#!/bin/bash\nwhile read -r line; do echo \"{\\\"wait\\\":\\\"${__OW_WAIT_FOR_ACK:-unset}\\\"}\" >&3; done\n";
    let proxy = Proxy::python();
    init_ok(&proxy, script, "main");
    for _ in 0..2 {
        assert_eq!(run_ok(&proxy, json!({})), json!({"wait": "unset"}));
    }
}

#[test]
fn without_ack_an_exit_during_run_is_caught() {
    let script = "#!/bin/bash\nread -r line\necho 'about to exit' >&2\nexit 7\n";
    let proxy = Proxy::python();
    init_ok(&proxy, script, "main");
    let answer = proxy.run(json!({}));
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = answer.error();
    assert!(error.contains("command exited"), "{error}");
    assert!(error.contains('7'), "the exit status is named: {error}");
    let (_, err) = proxy.logs_after(1);
    let said = err
        .find("about to exit")
        .expect("the action's stderr is logged");
    let end = err.find(SENTINEL).expect("a sentinel after the activation");
    assert!(said < end, "{err}");
    // The next /run does not hang: it restarts the action (which dies again) or says why.
    let next = proxy.run(json!({}));
    assert_ne!(next.status, 200);
    assert!(!next.error().is_empty());
}

// ---------------------------------------------------------------------------------------------
// OW_EXECUTION_ENV and the environment
// ---------------------------------------------------------------------------------------------

#[test]
fn execution_env_mismatch_then_matching_reinit() {
    const VERSION: &str = "openwhisk/action-golang-v1.20";
    let exec = "#!/bin/bash\nwhile read -r line; do echo \"{\\\"env\\\":\\\"$__OW_EXECUTION_ENV\\\"}\" >&3; done\n";
    let proxy = Proxy::start_with("python", &[("OW_EXECUTION_ENV", VERSION)], &[]);

    let wrong = Archive::zip()
        .file("exec", exec)
        .file("exec.env", "openwhisk/action-golang-v1.15")
        .build();
    let init = proxy.init_binary(&wrong, "main");
    assert_init_failed(&proxy, &init, ENV_MISMATCH);
    assert!(init.error().starts_with(CANNOT_START), "{}", init.error());
    assert_no_action(&proxy);

    let missing = Archive::zip().file("exec", exec).build();
    let init = proxy.init_binary(&missing, "main");
    assert_eq!(init.status, 502, "a zip without exec.env does not match");
    assert!(init.error().contains(ENV_MISMATCH), "{}", init.error());

    let right = Archive::zip()
        .file("exec", exec)
        .file("exec.env", format!("{VERSION}\n  \n"))
        .build();
    init_binary_ok(&proxy, &right, "main");
    assert_eq!(run_ok(&proxy, json!({})), json!({"env": VERSION}));
}

#[test]
fn ow_values_with_equals_signs_reach_an_executable_whole() {
    let script = "#!/bin/bash\nwhile read -r line; do echo \"{\\\"host\\\":\\\"$__OW_API_HOST\\\",\\\"other\\\":\\\"$__OW_SOMETHING\\\"}\" >&3; done\n";
    let proxy = Proxy::start_with(
        "python",
        &[
            ("__OW_API_HOST", "https://x?a=b=c"),
            ("__OW_SOMETHING", "k=v==w="),
        ],
        &[],
    );
    init_ok(&proxy, script, "main");
    assert_eq!(
        run_ok(&proxy, json!({})),
        json!({"host": "https://x?a=b=c", "other": "k=v==w="})
    );
}

// ---------------------------------------------------------------------------------------------
// OW_COMPILER
// ---------------------------------------------------------------------------------------------

/// A compiler that prints nothing and writes `<bin>/exec`, which reports what the compiler got.
const FAKE_COMPILER: &str = r#"#!/bin/bash
main="$1"; src="$2"; bin="$3"
files=$(cd "$src" && ls -A | tr '\n' ',')
if grep -rqs 'FAKE-SOURCE-7' "$src"; then source_ok=true; else source_ok=false; fi
mkdir -p "$bin"
cat > "$bin/exec" <<EOF
#!/bin/bash
while read -r line; do
  echo '{"argc":$#,"main":"$main","src":"$src","bin":"$bin","files":"$files","source_ok":$source_ok}' >&3
done
EOF
chmod +x "$bin/exec"
"#;

/// A folder the proxy named, resolved against its working directory.
fn under(proxy: &Proxy, reported: &str) -> PathBuf {
    let path = proxy.path().join(reported);
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()))
}

fn assert_compiler_args(proxy: &Proxy, got: &Value, files: &str) {
    assert_eq!(got["argc"], json!(3), "{got}");
    assert_eq!(got["main"], json!("Main"), "{got}");
    assert_eq!(got["files"], json!(files), "{got}");
    assert_eq!(got["source_ok"], json!(true), "{got}");
    let root = proxy.path().join("action").canonicalize().unwrap();
    let src = under(proxy, got["src"].as_str().unwrap());
    let bin = under(proxy, got["bin"].as_str().unwrap());
    assert!(src.is_dir() && bin.is_dir(), "{got}");
    assert!(src.starts_with(&root) && bin.starts_with(&root), "{got}");
    assert_ne!(src, bin);
    assert!(bin.join("exec").is_file());
}

/// A python proxy with `OW_COMPILER` set to `script` (written to a scratch folder, which the
/// caller keeps alive) and the extra environment `env`.
fn compiler_proxy(script: &str, env: &[(&str, &str)]) -> (Proxy, tempfile::TempDir) {
    let tools = tempfile::tempdir().unwrap();
    let compiler = write_script(tools.path(), "compile", script);
    let mut all = vec![("OW_COMPILER", compiler.to_str().unwrap())];
    all.extend_from_slice(env);
    (Proxy::start_with("python", &all, &[]), tools)
}

#[test]
fn compiler_is_called_with_main_src_and_bin_for_a_single_file() {
    let (proxy, _tools) = compiler_proxy(FAKE_COMPILER, &[]);
    init_ok(&proxy, "package main // FAKE-SOURCE-7\n", "Main");
    // A single source file arrives as <src>/exec.
    assert_compiler_args(&proxy, &run_ok(&proxy, json!({})), "exec,");
}

#[test]
fn compiler_gets_an_unpacked_zip_as_its_source_folder() {
    let (proxy, _tools) = compiler_proxy(FAKE_COMPILER, &[]);
    let source = Archive::zip()
        .file("main.go", "package main // FAKE-SOURCE-7\n")
        .file("lib/util.go", "package lib\n")
        .build();
    init_binary_ok(&proxy, &source, "Main");
    assert_compiler_args(&proxy, &run_ok(&proxy, json!({})), "lib,main.go,");
}

/// A compiler that reports the environment it got through the `exec` it writes, with the
/// `exec.env` the official compile scripts write from `__OW_EXECUTION_ENV`. The `exec` acks
/// (the proxy below waits for one) and reports its own environment and folder too.
const ENV_COMPILER: &str = r#"#!/bin/bash
bin="$3"
mkdir -p "$bin"
printf '%s' "$__OW_EXECUTION_ENV" > "$bin/exec.env"
cat > "$bin/exec" <<EOF
#!/bin/bash
echo '{"ok":true}' >&3
while read -r line; do
  echo "{\"compiler\":{\"version\":\"$__OW_PROXY_VERSION\",\"exec_env\":\"$__OW_EXECUTION_ENV\",\"ack\":\"$__OW_WAIT_FOR_ACK\",\"api_host\":\"$__OW_API_HOST\",\"init\":\"$FROM_INIT\",\"home\":\"${HOME-unset}\",\"compiler\":\"${OW_COMPILER-unset}\",\"path\":\"${PATH:+set}\"},\"action\":{\"version\":\"\$__OW_PROXY_VERSION\",\"exec_env\":\"\$__OW_EXECUTION_ENV\",\"ack\":\"\$__OW_WAIT_FOR_ACK\",\"api_host\":\"\$__OW_API_HOST\",\"init\":\"\$FROM_INIT\",\"cwd\":\"\$(pwd)\"}}" >&3
done
EOF
chmod +x "$bin/exec"
"#;

#[test]
fn compiler_and_action_get_the_go_proxys_environment() {
    const VERSION: &str = "example/runtime-v1";
    let (proxy, _tools) = compiler_proxy(
        ENV_COMPILER,
        &[
            ("OW_EXECUTION_ENV", VERSION),
            ("OW_WAIT_FOR_ACK", "yes"),
            ("OW_LOG_INIT_ERROR", "1"),
            ("__OW_API_HOST", "https://host?a=b=c"),
            ("HOME", "/home/someone"),
        ],
    );
    let init = proxy.init(json!({"code": "source", "env": {"FROM_INIT": "init value"}}));
    assert_initialised(&proxy, &init);
    let got = run_ok(&proxy, json!({}));
    let compiler = &got["compiler"];
    // PATH and the action's variables, nothing else of the proxy's.
    assert_ne!(compiler["version"], json!(""), "{got}");
    assert_eq!(compiler["exec_env"], json!(VERSION), "{got}");
    assert_eq!(compiler["ack"], json!("yes"), "{got}");
    assert_eq!(compiler["api_host"], json!("https://host?a=b=c"), "{got}");
    assert_eq!(compiler["init"], json!("init value"), "{got}");
    assert_eq!(compiler["path"], json!("set"), "{got}");
    assert_eq!(compiler["home"], json!("unset"), "{got}");
    assert_eq!(compiler["compiler"], json!("unset"), "{got}");
    // The action gets at least the same set, and starts where the proxy runs.
    let action = &got["action"];
    for key in ["version", "exec_env", "ack", "api_host", "init"] {
        assert_eq!(action[key], compiler[key], "{key}: {got}");
    }
    let cwd = Path::new(action["cwd"].as_str().unwrap());
    assert_eq!(
        cwd.canonicalize().unwrap(),
        proxy.path().canonicalize().unwrap(),
        "{got}"
    );
}

#[test]
fn compiled_exec_env_is_checked_against_ow_execution_env() {
    // The compiler writes what it was told; the proxy checks it against its own setting.
    let lying = ENV_COMPILER.replace(
        r#"printf '%s' "$__OW_EXECUTION_ENV""#,
        r#"printf '%s' "another/runtime""#,
    );
    for (compat, expected) in [(false, ENV_MISMATCH), (true, CANNOT_START)] {
        let mut env = vec![
            ("OW_EXECUTION_ENV", "example/runtime-v1"),
            ("OW_WAIT_FOR_ACK", "1"),
        ];
        if compat {
            env.push(("OW_LOG_INIT_ERROR", "1"));
        }
        let (proxy, _tools) = compiler_proxy(&lying, &env);
        let init = proxy.init(json!({"code": "source"}));
        assert_init_failed(&proxy, &init, expected);
        if compat {
            assert_eq!(init.error(), CANNOT_START);
        }
        let (_, err) = proxy.framed_logs(1);
        assert!(
            before_first_sentinel(&err).contains("another/runtime"),
            "the cause is in the logs: {err}"
        );
        assert_no_action(&proxy);
    }
}

#[test]
fn log_init_error_answers_every_init_failure_with_the_go_proxys_two_texts() {
    let env = [("OW_LOG_INIT_ERROR", "1"), ("OW_WAIT_FOR_ACK", "1")];
    let corrupt = {
        let mut zip = Archive::zip().file("exec", "#!/bin/bash\n").build();
        let n = zip.len();
        zip.truncate(n - 10);
        zip
    };
    let not_ok = "#!/bin/bash\necho '{\"ok\":false}' >&3\nsleep 5\n";
    let not_json = "#!/bin/bash\necho 'ready' >&3\nsleep 5\n";
    let exits = "#!/bin/bash\necho 'going away' >&2\nexit 4\n";
    let cases = [
        (
            "corrupt zip",
            json!({"code": b64(&corrupt), "binary": true}),
            CANNOT_LOCATE,
            "zip",
        ),
        ("ack not ok", json!({"code": not_ok}), CANNOT_START, BAD_ACK),
        (
            "ack not JSON",
            json!({"code": not_json}),
            CANNOT_START,
            BAD_ACK,
        ),
        (
            "exit before the ack",
            json!({"code": exits}),
            CANNOT_START,
            EXITED_DURING_INIT,
        ),
    ];
    for (what, value, text, cause) in cases {
        let proxy = Proxy::start_with("python", &env, &[]);
        let init = proxy.init(value);
        assert_eq!(init.status, 502, "{what}: {}", init.text());
        assert_json_answer(what, &init);
        assert_eq!(init.error(), text, "{what}");
        let (_, err) = proxy.framed_logs(1);
        assert!(
            before_first_sentinel(&err).contains(cause),
            "{what}: the cause is in the logs before the sentinel: {err}"
        );
        // Refusals at the door keep their own words and write no sentinel.
        let not_base64 = proxy.init(json!({"code": "%%%", "binary": true}));
        assert_eq!(not_base64.status, 400, "{what}");
        let no_code = proxy.init(json!({"code": ""}));
        assert_eq!(no_code.status, 403, "{what}");
        assert_eq!(no_code.error(), MISSING_CODE, "{what}");
        proxy.framed_logs(1);
    }
}

/// A compiler that builds a working `exec` but prints on both streams: that is a failure.
const CHATTY_COMPILER: &str = r#"#!/bin/bash
echo "main.go:3: undefined: fmt.Printx"
echo "compile warning on stderr" >&2
mkdir -p "$3"
printf '#!/bin/bash\nwhile read -r l; do echo "{}" >&3; done\n' > "$3/exec"
chmod +x "$3/exec"
exit 0
"#;

#[test]
fn compiler_output_with_log_init_error_gives_the_fixed_text_and_logs_the_output() {
    let (proxy, _tools) = compiler_proxy(CHATTY_COMPILER, &[("OW_LOG_INIT_ERROR", "1")]);
    let init = proxy.init_code("package main\n", "main");
    assert_eq!(init.status, 502, "{}", init.text());
    assert_eq!(init.json(), json!({"error": CANNOT_LOCATE}));
    let (out, err) = proxy.logs_after(1);
    assert!(count_sentinels(&out) >= 1, "sentinel on stdout:\n{out}");
    let end = err.find(SENTINEL).expect("a sentinel on stderr");
    for printed in [
        "main.go:3: undefined: fmt.Printx",
        "compile warning on stderr",
    ] {
        let at = err
            .find(printed)
            .unwrap_or_else(|| panic!("{printed:?} should be on stderr:\n{err}"));
        assert!(
            at < end,
            "the compiler output comes before the sentinel:\n{err}"
        );
    }
    assert_no_action(&proxy);
}

#[test]
fn compiler_output_without_log_init_error_is_in_the_error_body() {
    let (proxy, _tools) = compiler_proxy(CHATTY_COMPILER, &[]);
    let init = proxy.init_code("package main\n", "main");
    assert_eq!(init.status, 502, "{}", init.text());
    let error = init.error();
    assert!(
        error.contains("main.go:3: undefined: fmt.Printx"),
        "{error}"
    );
    assert!(error.contains("compile warning on stderr"), "{error}");
    assert_no_action(&proxy);
}

// ---------------------------------------------------------------------------------------------
// -version
// ---------------------------------------------------------------------------------------------

#[test]
fn version_flag_with_one_or_two_dashes() {
    for flag in ["-version", "--version"] {
        let output = Command::new(binary())
            .arg(flag)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{flag}: {:?}", output.status);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.lines().any(|l| l.contains("actionloop")),
            "{flag} printed {text:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// -compile
// ---------------------------------------------------------------------------------------------

/// `actionloop --runtime R -compile MAIN` with `source` on stdin, in a scratch directory.
fn compile(runtime: &str, main: &str, source: &[u8], env: &[(&str, &str)]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(binary());
    command
        .args(["--runtime", runtime, "-compile", main])
        .current_dir(cwd.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start actionloop -compile");
    let mut stdin = child.stdin.take().unwrap();
    let source = source.to_vec();
    // Written from a thread so a large output cannot block on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&source);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// Checks `-compile` succeeded and returned a zip with an executable `exec` at its root.
fn compiled_zip(output: &Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "-compile failed ({:?}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = output.stdout.clone();
    assert!(bytes.starts_with(b"PK"), "stdout is not a zip");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut exec = archive
        .by_name("exec")
        .expect("exec at the root of the zip");
    let mode = exec.unix_mode().unwrap_or(0);
    assert!(
        mode & 0o111 != 0,
        "exec is executable in the zip ({mode:o})"
    );
    let mut head = Vec::new();
    exec.read_to_end(&mut head).unwrap();
    assert!(head.starts_with(b"#!") || head.starts_with(b"\x7fELF"));
    bytes
}

/// Sends a compiled zip to fresh proxies, with and without `OW_WAIT_FOR_ACK`, and runs it.
fn run_compiled(runtime: &str, zip: &[u8], main: &str, run: &Value, expected: &Value) {
    for env in [&[("OW_WAIT_FOR_ACK", "1")][..], &[][..]] {
        let proxy = Proxy::start_with(runtime, env, &[]);
        let init = proxy.init_binary(zip, main);
        assert_status(&proxy, &format!("{runtime} {env:?}: init"), &init, 200);
        for _ in 0..2 {
            let answer = proxy.post_json("/run", run);
            assert_status(&proxy, &format!("{runtime} {env:?}: run"), &answer, 200);
            assert_eq!(&answer.json(), expected, "{runtime} {env:?}");
        }
    }
}

/// `source` defines `hello`, which greets its argument's `name` and tells its activation id:
/// compiled by `-compile` for `runtime`, it runs there.
fn assert_hello_round_trip(runtime: &str, source: &[u8], activation: &str) {
    let zip = compiled_zip(&compile(runtime, "hello", source, &[]));
    run_compiled(
        runtime,
        &zip,
        "hello",
        &json!({"value": {"name": "al"}, "activation_id": activation}),
        &json!({"greeting": "hello al", "activation": activation}),
    );
}

#[test]
fn compile_round_trip_python() {
    let source = br#"import os
def hello(args):
    return {"greeting": "hello " + args.get("name", "?"), "activation": os.environ.get("__OW_ACTIVATION_ID")}
"#;
    assert_hello_round_trip("python", source, "act-py");
}

#[test]
fn compile_round_trip_python_zip_runs_in_another_runtime() {
    // A zip with a helper module; the compiled result is an executable, so any runtime runs it.
    let source = Archive::zip()
        .file(
            "__main__.py",
            "import helper\ndef main(args):\n    return {\"twice\": helper.twice(args[\"n\"])}\n",
        )
        .file("helper.py", "def twice(n):\n    return 2 * n\n")
        .build();
    let compiled = compiled_zip(&compile("python", "main", &source, &[]));
    run_compiled(
        "nodejs",
        &compiled,
        "main",
        &json!({"value": {"n": 21}}),
        &json!({"twice": 42}),
    );
}

#[test]
fn compile_round_trip_nodejs() {
    let source = br#"function hello(args) {
  return {greeting: "hello " + args.name, activation: process.env.__OW_ACTIVATION_ID};
}
"#;
    assert_hello_round_trip("nodejs", source, "act-js");
}

#[test]
fn compile_round_trip_php() {
    let source = br#"<?php
function hello(array $args): array {
    return ["greeting" => "hello " . $args["name"], "activation" => getenv("__OW_ACTIVATION_ID")];
}
"#;
    assert_hello_round_trip("php", source, "act-php");
}

#[test]
fn compile_installs_requirements_from_a_local_wheel_directory() {
    require("python3");
    let wheels = tempfile::tempdir().unwrap();
    local_wheel(wheels.path(), "actionloop_tinydep", "from-local-wheel");
    let source = Archive::zip()
        .file(
            "__main__.py",
            "import actionloop_tinydep\ndef main(args):\n    return {\"value\": actionloop_tinydep.VALUE, \"from\": actionloop_tinydep.__file__}\n",
        )
        .file("requirements.txt", "actionloop-tinydep==0.1\n")
        .build();

    // Control: without the install step the package is not there.
    let plain = Proxy::python();
    let init = plain.init_binary(&source, "main");
    assert_eq!(init.status, 502, "{}", init.text());

    let output = compile(
        "python",
        "main",
        &source,
        &[
            ("PIP_NO_INDEX", "1"),
            ("PIP_FIND_LINKS", wheels.path().to_str().unwrap()),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ],
    );
    let compiled = compiled_zip(&output);
    let archive = zip::ZipArchive::new(std::io::Cursor::new(compiled.clone())).unwrap();
    assert!(
        archive
            .file_names()
            .filter_map(Result::ok)
            .any(|n| n.starts_with("virtualenv/") && n.ends_with("actionloop_tinydep/__init__.py")),
        "the package is installed in virtualenv/ inside the compiled zip"
    );

    let proxy = Proxy::start_with("python", &[("OW_WAIT_FOR_ACK", "1")], &[]);
    init_binary_ok(&proxy, &compiled, "main");
    let got = run_ok(&proxy, json!({}));
    assert_eq!(got["value"], json!("from-local-wheel"), "{got}");
    assert!(
        got["from"].as_str().unwrap_or("").contains("virtualenv"),
        "imported from the bundled virtualenv: {got}"
    );
}
