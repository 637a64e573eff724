//! `actionloop` as `/bin/proxy` of the official OpenServerless and OpenWhisk runtime images
//! (issue 10), with their unmodified compile scripts and launchers, their environment and
//! their working directory: the image table is in tests/common/image.rs.
//!
//! Every case runs once per image, each pair its own test (`os_python_v3_12::hello`, ...).
//! Without `../shared/reference-runtimes` (a plain clone) they skip, saying so.

mod common;

use std::time::Duration;

use common::image::{self, Image, Language, Started};
use common::*;

// ---------------------------------------------------------------------------------------------
// The same cases for every image

macro_rules! image_tests {
    ($module:ident = $image:ident; $($case:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    super::$case(&super::image::$image);
                }
            )*
        }
    };
}

macro_rules! every_case {
    ($module:ident = $image:ident $(; $($extra:ident),*)?) => {
        image_tests!($module = $image;
            hello,
            unicode,
            context_in_environment,
            init_env,
            result_not_an_object,
            second_init,
            entry_point_other_than_main,
            syntax_error,
            missing_import,
            exit_during_init,
            one_mib_argument,
            zip_with_a_second_file,
            sigterm_leaves_no_process
            $($(, $extra)*)?
        );
    };
}

every_case!(os_python_v3_12 = OS_PYTHON; hello_as_image_user, zip_as_image_user);
every_case!(os_nodejs_v21 = OS_NODEJS; hello_as_image_user, zip_as_image_user);
every_case!(os_php_v8_3 = OS_PHP);
every_case!(ow_python3 = OW_PYTHON);
every_case!(ow_php8_2 = OW_PHP);

// ---------------------------------------------------------------------------------------------
// Actions

const HELLO: [&str; 3] = [
    r#"import sys
def main(args):
    name = args.get("name", "stranger")
    print("stdout line for " + name)
    print("stderr line for " + name, file=sys.stderr)
    return {"greeting": "Hello " + name}
"#,
    r#"function main(args) {
  const name = args.name || "stranger";
  console.log("stdout line for " + name);
  console.error("stderr line for " + name);
  return { greeting: "Hello " + name };
}
"#,
    r#"<?php
function main(array $args): array {
    $name = $args["name"] ?? "stranger";
    echo "stdout line for $name\n";
    fwrite(STDERR, "stderr line for $name\n");
    return ["greeting" => "Hello " . $name];
}
"#,
];

fn code(image: &Image, texts: &[&'static str; 3]) -> &'static str {
    image.language.pick(texts[0], texts[1], texts[2])
}

// ---------------------------------------------------------------------------------------------
// Cases

/// `check` on the image with its proxy started as root.
fn as_root(image: &Image, check: fn(&Image, &Started)) {
    if let Some(s) = image.start() {
        check(image, &s);
    }
}

/// `check` on the image with its proxy started as the image's user.
fn as_image_user(image: &Image, check: fn(&Image, &Started)) {
    if let Some(s) = image.start_as_user() {
        assert_runs_as_nobody(&s);
        check(image, &s);
    }
}

/// The image's version of `texts` initialised with its entry point `main`: a run with
/// `argument` answers `expected`.
fn assert_runs(
    image: &Image,
    s: &Started,
    texts: &[&'static str; 3],
    main: &str,
    argument: Value,
    expected: Value,
) {
    init_ok(s, code(image, texts), main);
    assert_eq!(run_ok(s, argument), expected, "{}", image.name);
}

fn hello(image: &Image) {
    as_root(image, check_hello);
}

fn hello_as_image_user(image: &Image) {
    as_image_user(image, check_hello);
}

/// Two activations, each answered and each framed by exactly one sentinel per stream after
/// what the action printed; the action built where the image's layout puts it.
fn check_hello(image: &Image, s: &Started) {
    init_ok(s, code(image, &HELLO), "main");
    assert_eq!(
        run_ok(s, json!({"name": "Ada"})),
        json!({"greeting": "Hello Ada"})
    );
    assert_eq!(
        run_ok(s, json!({"name": "Bob"})),
        json!({"greeting": "Hello Bob"})
    );
    let (out, err) = s.framed_logs(2);
    for (stream, text) in [("stdout", &out), ("stderr", &err)] {
        let parts = activations(text);
        for (i, name) in ["Ada", "Bob"].iter().enumerate() {
            let line = format!("{stream} line for {name}");
            assert!(
                parts[i].lines().any(|l| l == line),
                "{}: {line:?} must come before sentinel {} on {stream}:\n{text}",
                image.name,
                i + 1
            );
        }
    }
    assert_action_folder(image, s);
}

fn unicode(image: &Image) {
    let Some(s) = image.start() else { return };
    // The comparison inside the action shows that it saw the characters themselves, not a
    // mangled form that would happen to round-trip.
    let echo = [
        r#"def main(args):
    text = args["text"]
    return {"echo": text, "same": text == "é✓😀"}
"#,
        r#"function main(args) {
  return { echo: args.text, same: args.text === "é✓😀" };
}
"#,
        r#"<?php
function main(array $args): array {
    return ["echo" => $args["text"], "same" => $args["text"] === "é✓😀"];
}
"#,
    ];
    assert_runs(
        image,
        &s,
        &echo,
        "main",
        json!({"text": "é✓😀"}),
        json!({"echo": "é✓😀", "same": true}),
    );
}

/// The activation's context, as the invoker sends it (all strings), in `__OW_*` variables.
fn context_in_environment(image: &Image) {
    let Some(s) = image.start() else { return };
    let context = [
        r#"import os
KEYS = ["activation_id", "namespace", "action_name", "deadline", "api_key", "transaction_id"]
def main(args):
    return {k: os.environ.get("__OW_" + k.upper()) for k in KEYS}
"#,
        r#"const KEYS = ["activation_id", "namespace", "action_name", "deadline", "api_key", "transaction_id"];
function main(args) {
  const found = {};
  for (const k of KEYS) found[k] = process.env["__OW_" + k.toUpperCase()] ?? null;
  return found;
}
"#,
        r#"<?php
function main(array $args): array {
    $found = [];
    foreach (["activation_id", "namespace", "action_name", "deadline", "api_key", "transaction_id"] as $k) {
        $v = getenv("__OW_" . strtoupper($k));
        $found[$k] = $v === false ? null : $v;
    }
    return $found;
}
"#,
    ];
    init_ok(&s, code(image, &context), "main");
    let sent = json!({
        "activation_id": "a5ec1d1e0f5b4c2b9ec1d1e0f5b4c2b9",
        "namespace": "guest",
        "action_name": "/guest/dropin",
        "deadline": "1735689600000",
        "api_key": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
        "transaction_id": "iFbGzbL3dN5wLb2cFtsJ0ujtCRbW9GLr",
    });
    let mut body = sent.clone();
    body["value"] = json!({});
    let answer = s.post_json("/run", &body);
    assert_status(&s, image.name, &answer, 200);
    assert_eq!(answer.json(), sent, "{}", image.name);
}

fn init_env(image: &Image) {
    let Some(s) = image.start() else { return };
    let show = [
        r#"import os
def main(args):
    return {"MY_VAR": os.environ.get("MY_VAR")}
"#,
        r#"function main(args) {
  return { MY_VAR: process.env.MY_VAR ?? null };
}
"#,
        r#"<?php
function main(array $args): array {
    $v = getenv("MY_VAR");
    return ["MY_VAR" => $v === false ? null : $v];
}
"#,
    ];
    let init = json!({"value": {
        "code": code(image, &show),
        "main": "main",
        "binary": false,
        "env": {"MY_VAR": "from init"},
    }});
    assert_initialised(&s, &s.post_json("/init", &init));
    assert_eq!(
        run_ok(&s, json!({})),
        json!({"MY_VAR": "from init"}),
        "{}",
        image.name
    );
}

fn result_not_an_object(image: &Image) {
    let Some(s) = image.start() else { return };
    let string = [
        "def main(args):\n    return \"just a string\"\n",
        "function main(args) {\n  return \"just a string\";\n}\n",
        "<?php\nfunction main(array $args) {\n    return \"just a string\";\n}\n",
    ];
    init_ok(&s, code(image, &string), "main");
    let answer = s.run(json!({}));
    assert_error_exactly(image, &s, &answer, 502, NOT_A_DICTIONARY);
}

fn second_init(image: &Image) {
    let Some(s) = image.start() else { return };
    init_ok(&s, code(image, &HELLO), "main");
    let again = s.init_code(code(image, &HELLO), "main");
    assert_error_exactly(image, &s, &again, 403, ALREADY_INITIALIZED);
    assert_eq!(
        run_ok(&s, json!({"name": "Ada"})),
        json!({"greeting": "Hello Ada"}),
        "{}: the first action keeps serving",
        image.name
    );
}

fn entry_point_other_than_main(image: &Image) {
    let Some(s) = image.start() else { return };
    let niam = [
        "def niam(args):\n    return {\"entry\": \"niam\"}\n",
        "function niam(args) {\n  return { entry: \"niam\" };\n}\n",
        "<?php\nfunction niam(array $args): array {\n    return [\"entry\" => \"niam\"];\n}\n",
    ];
    assert_runs(
        image,
        &s,
        &niam,
        "niam",
        json!({}),
        json!({"entry": "niam"}),
    );
}

fn syntax_error(image: &Image) {
    let Some(s) = image.start() else { return };
    let broken = [
        "def main(args)\n    return {}\n",
        "function main(args) {\n  return { a: 1 ];\n}\n",
        "<?php\nfunction main(array $args): array {\n    return [\n}\n",
    ];
    // The python compile scripts parse the code, so there it fails the build; elsewhere the
    // launcher dies loading it.
    let expected = match image.language {
        Language::Python => CANNOT_LOCATE,
        Language::Node | Language::Php => CANNOT_START,
    };
    let cause = image
        .language
        .pick("expected ':'", "SyntaxError", "Parse error");
    assert_init_fails_and_does_not_count(image, &s, &broken, expected, Some(cause));
}

fn missing_import(image: &Image) {
    let Some(s) = image.start() else { return };
    let missing = [
        "import no_such_module\ndef main(args):\n    return {}\n",
        "const missing = require('no-such-module');\nfunction main(args) {\n  return {};\n}\n",
        "<?php\nrequire 'no_such_file.php';\nfunction main(array $args): array {\n    return [];\n}\n",
    ];
    let cause = image.language.pick(
        "No module named 'no_such_module'",
        "Cannot find module 'no-such-module'",
        "Failed opening required 'no_such_file.php'",
    );
    assert_init_fails_and_does_not_count(image, &s, &missing, CANNOT_START, Some(cause));
}

fn exit_during_init(image: &Image) {
    let Some(s) = image.start() else { return };
    let exit = [
        "import sys\nsys.exit(3)\ndef main(args):\n    return {}\n",
        "process.exit(3);\nfunction main(args) {\n  return {};\n}\n",
        "<?php\nexit(3);\nfunction main(array $args): array {\n    return [];\n}\n",
    ];
    assert_init_fails_and_does_not_count(image, &s, &exit, CANNOT_START, None);
}

fn one_mib_argument(image: &Image) {
    let Some(s) = image.start() else { return };
    let length = [
        "def main(args):\n    return {\"length\": len(args[\"big\"])}\n",
        "function main(args) {\n  return { length: args.big.length };\n}\n",
        "<?php\nfunction main(array $args): array {\n    return [\"length\" => strlen($args[\"big\"])];\n}\n",
    ];
    let big = "x".repeat(1 << 20);
    assert_runs(
        image,
        &s,
        &length,
        "main",
        json!({ "big": big }),
        json!({"length": 1 << 20}),
    );
}

fn zip_with_a_second_file(image: &Image) {
    as_root(image, check_zip);
}

fn zip_as_image_user(image: &Image) {
    as_image_user(image, check_zip);
}

/// A zipped action whose entry file (the one each image's compile script looks for) needs a
/// second file of the archive.
fn check_zip(image: &Image, s: &Started) {
    let python: [(&str, &[u8]); 2] = [
        (
            "__main__.py",
            b"from helper import greet\n\ndef main(args):\n    return {\"greeting\": greet(args[\"name\"])}\n",
        ),
        (
            "helper.py",
            b"def greet(name):\n    return \"Hello \" + name + \" from helper.py\"\n",
        ),
    ];
    let node: [(&str, &[u8]); 3] = [
        (
            "package.json",
            br#"{"name": "zipped", "version": "1.0.0", "main": "index.js"}"#,
        ),
        (
            "index.js",
            b"const helper = require('./helper');\n\nfunction main(args) {\n  return { greeting: helper.greet(args.name) };\n}\n\nmodule.exports = main\n",
        ),
        (
            "helper.js",
            b"exports.greet = (name) => \"Hello \" + name + \" from helper.js\";\n",
        ),
    ];
    let php: [(&str, &[u8]); 2] = [
        (
            "index.php",
            b"<?php\nrequire_once __DIR__ . '/helper.php';\n\nfunction main(array $args): array {\n    return [\"greeting\" => greet($args[\"name\"])];\n}\n",
        ),
        (
            "helper.php",
            b"<?php\nfunction greet(string $name): string {\n    return \"Hello \" . $name . \" from helper.php\";\n}\n",
        ),
    ];
    let (files, helper): (&[(&str, &[u8])], _) = match image.language {
        Language::Python => (&python, "helper.py"),
        Language::Node => (&node, "helper.js"),
        Language::Php => (&php, "helper.php"),
    };
    let archive = Archive::zip().files(files).build();
    init_binary_ok(s, &archive, "main");
    assert_eq!(
        run_ok(s, json!({"name": "Zip"})),
        json!({ "greeting": format!("Hello Zip from {helper}") }),
        "{}",
        image.name
    );
}

/// SIGTERM stops the proxy and everything its action started, down to a background
/// grandchild: nothing may outlive the container's main process.
fn sigterm_leaves_no_process(image: &Image) {
    let Some(mut s) = image.start() else { return };
    let spawner = [
        r#"import os, subprocess
def main(args):
    subprocess.Popen(["sleep", args["sleep"]])
    return {"pids": [os.getpid(), os.getppid()]}
"#,
        r#"const { spawn } = require("child_process");
function main(args) {
  spawn("sleep", [args.sleep], { detached: false, stdio: "ignore" });
  return { pids: [process.pid, process.ppid] };
}
"#,
        r#"<?php
function main(array $args): array {
    exec("sleep " . escapeshellarg($args["sleep"]) . " > /dev/null 2>&1 &");
    return ["pids" => [getmypid(), posix_getppid()]];
}
"#,
    ];
    init_ok(&s, code(image, &spawner), "main");
    // A duration no other process on the machine would be sleeping for.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let duration = format!("300.{}{nanos:09}", std::process::id());
    let result = run_ok(&s, json!({ "sleep": duration }));
    let proxy = s.pid();
    let mut watched: Vec<(u32, Vec<u8>)> = result["pids"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no pids in {result}", image.name))
        .iter()
        .map(|p| p.as_u64().expect("a pid") as u32)
        .filter(|p| *p > 1 && *p != proxy)
        .map(|p| (p, procfs::cmdline(p)))
        .collect();
    let sleeps = poll(Duration::from_secs(5), || {
        let found = procfs::with_argv(&["sleep", &duration]);
        (!found.is_empty()).then_some(found)
    })
    .unwrap_or_else(|| panic!("{}: the action's `sleep {duration}` never ran", image.name));
    watched.extend(sleeps.into_iter().map(|p| (p, procfs::cmdline(p))));

    s.signal("TERM");
    let code = s.wait_exit(Duration::from_secs(15));
    assert!(
        !procfs::exists(proxy),
        "{}: the proxy still runs 15 s after SIGTERM / stderr: {}",
        image.name,
        s.stderr()
    );
    let gone = poll(Duration::from_secs(5), || {
        watched
            .iter()
            .all(|(p, _)| !procfs::exists(*p))
            .then_some(())
    });
    if gone.is_none() {
        let survivors: Vec<String> = watched
            .iter()
            .filter(|(p, _)| procfs::exists(*p))
            .map(|(p, _)| procfs::describe(*p))
            .collect();
        // Not left behind for 300 s by a failing run; only while each is still the process
        // seen before the signal.
        for (pid, seen) in &watched {
            if procfs::cmdline(*pid) == *seen {
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
        }
        panic!(
            "{}: 5 s after the proxy exited (code {code:?}) these still exist: {survivors:?} / stderr: {}",
            image.name,
            s.stderr()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The table itself

/// The layout differs from upstream only on lines holding a rewrite.
#[test]
fn layout_changes_only_interpreter_and_image_paths() {
    let Some(references) = image::reference_runtimes() else {
        eprintln!("skipping: no ../shared/reference-runtimes");
        return;
    };
    for image in image::IMAGES {
        let root = tempfile::tempdir().unwrap();
        image.lay_out(&references.join(image.folder), root.path());
        for file in image.files {
            let upstream =
                std::fs::read_to_string(references.join(image.folder).join(file.from)).unwrap();
            let laid = std::fs::read_to_string(root.path().join(&file.to[1..])).unwrap();
            let (upstream, laid): (Vec<_>, Vec<_>) =
                (upstream.lines().collect(), laid.lines().collect());
            assert_eq!(upstream.len(), laid.len(), "{}: {}", image.name, file.from);
            for (before, after) in upstream.iter().zip(&laid) {
                if before != after {
                    assert!(
                        file.rewrites.iter().any(|(from, _)| before.contains(from)),
                        "{}: {} line {before:?} became {after:?}",
                        image.name,
                        file.from
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions

/// Exactly `{"error": text}` with `status`.
fn assert_error_exactly(image: &Image, s: &Started, answer: &Answer, status: u16, text: &str) {
    assert_eq!(
        (answer.status, answer.json()),
        (status, json!({ "error": text })),
        "{} / stderr: {}",
        image.name,
        s.stderr()
    );
}

/// A 502 `/init`: the image's fixed text with `OW_LOG_INIT_ERROR`, else a body led by it;
/// the cause (when the action gives one) in the logs before one sentinel per stream.
fn assert_init_failed(
    image: &Image,
    s: &Started,
    answer: &Answer,
    expected: &str,
    cause: Option<&str>,
) {
    if image.log_init_error() {
        assert_error_exactly(image, s, answer, 502, expected);
    } else {
        assert_eq!(
            answer.status,
            502,
            "{}: {} / stderr: {}",
            image.name,
            answer.text(),
            s.stderr()
        );
        let error = answer.error();
        assert!(
            error.starts_with(expected),
            "{}: {error:?} should start with {expected:?}",
            image.name
        );
    }
    let (out, err) = s.framed_logs(1);
    if let Some(cause) = cause {
        // The node launcher reports a failed load with console.log; the others on stderr.
        let (name, stream) = match image.language {
            Language::Node => ("stdout", &out),
            Language::Python | Language::Php => ("stderr", &err),
        };
        assert!(
            before_first_sentinel(stream).contains(cause),
            "{}: {cause:?} must be on {name} before its sentinel\nstdout: {out}\nstderr: {err}",
            image.name
        );
    }
}

/// The image's version of `texts` fails `/init` as [`assert_init_failed`] says, and that
/// failure does not count: a good `/init` is accepted after it and serves.
fn assert_init_fails_and_does_not_count(
    image: &Image,
    s: &Started,
    texts: &[&'static str; 3],
    expected: &str,
    cause: Option<&str>,
) {
    let answer = s.init_code(code(image, texts), "main");
    assert_init_failed(image, s, &answer, expected, cause);
    init_ok(s, code(image, &HELLO), "main");
    assert_eq!(
        run_ok(s, json!({"name": "Ada"})),
        json!({"greeting": "Hello Ada"}),
        "{}",
        image.name
    );
    s.framed_logs(2);
}

/// The compile script's output in `<workdir>/action/<n>/bin/exec`, where the image has it.
fn assert_action_folder(image: &Image, s: &Started) {
    let actions = s.image_path(image.workdir).join("action");
    let built = std::fs::read_dir(&actions)
        .unwrap_or_else(|e| panic!("{}: {}: {e}", image.name, actions.display()))
        .map(|e| e.unwrap().path())
        .any(|p| {
            let numbered = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.parse::<u32>().is_ok());
            numbered && p.join("bin/exec").is_file()
        });
    assert!(
        built,
        "{}: no {}/<n>/bin/exec",
        image.name,
        actions.display()
    );
}

fn assert_runs_as_nobody(s: &Started) {
    let uid = procfs::status_field(s.pid(), "Uid").expect("the proxy's Uid");
    assert!(
        uid.split_whitespace().all(|id| id == "65534"),
        "the proxy should run as nobody: Uid: {uid}"
    );
}
