//! The canonical cases of the OpenWhisk runtime test suites, once, for each of the three runtimes
//! (python, nodejs, php) against the real binary and the real interpreters.
//!
//! Each language brings the small actions the cases need (the table below); each `#[test]` runs
//! its case for every language in a thread named after the language, so a failure reads
//! `thread 'php' panicked at ...` and the test's own message lists the languages that failed.
//! What only one language does stays in its own file (tests/python.rs, nodejs.rs, php.rs).

mod common;

use common::*;

/// The actions one language brings to the canonical cases.
struct Language {
    /// The `--runtime` name, and the name failures are reported under.
    runtime: &'static str,
    /// The interpreter that must be on PATH.
    program: &'static str,
    /// `main` writes `hello stdout!` and `hello stderr!`, one line on each stream, and returns
    /// its arguments.
    echo: &'static str,
    /// `main` returns its argument's `r` field, whatever it is.
    returns_r: &'static str,
    /// `main` returns `{"called": "main"}`; `niam` returns `{"called": "niam", "greeting":
    /// "hello " + name}`, the name `stranger` when the arguments have none; and each function
    /// of `more_entry_points` returns `{"called": <its name>}`.
    entry_points: &'static str,
    more_entry_points: &'static [&'static str],
    /// Code that throws `boom at load` while it loads (a `main` follows); the error's detail
    /// after the SPEC text; what stderr holds before the sentinel.
    throws_at_load: &'static str,
    thrown_at_load: &'static str,
    thrown_at_load_logged: &'static str,
    /// Code with a syntax error; how the error's detail after the SPEC text starts (the same
    /// text is in the logs, not on stdout); where stderr places the error (file and line).
    syntax_error: &'static str,
    syntax_error_says: &'static str,
    syntax_error_where: &'static str,
    /// A file name in a zip that is not the entry the language looks for, and what the error
    /// and the logs say about the missing entry.
    not_the_entry: &'static str,
    missing_entry_says: &'static str,
    /// Unicode in a comment; a constant `GREETING = "Grüße 🎉 / ok"`; `main` writes
    /// `stdout: <text>` and `stderr: <text>` and returns `{"echo": text, "greeting": GREETING,
    /// "länge": <characters in text>, "reversed": <text backwards>}`.
    unicode: &'static str,
    /// `main` returns `{K: <the variable __OW_K, null when unset>}` for each K of the argument
    /// `keys`.
    context: &'static str,
    /// At load, reads the variables GREETING, EMPTY, NUMBER, OBJECT, NOTHING, FLAG, WITH_EQUALS
    /// and UNICODE (null when unset); `main` returns `{"at_load": those, "at_run": the same read
    /// again}`.
    init_env: &'static str,
    /// Whether a `{}` nested in the arguments comes back as `{}`: PHP decodes the arguments into
    /// arrays, where `{}` and `[]` are one.
    keeps_nested_empty_objects: bool,
    /// Whether a list result comes back as a JSON array: a PHP list is an array and comes back as
    /// an object (tests/php.rs).
    keeps_list_results: bool,
}

const PYTHON: Language = Language {
    runtime: "python",
    program: "python3",
    echo: r#"import sys

def main(args):
    print("hello stdout!")
    print("hello stderr!", file=sys.stderr)
    return args
"#,
    returns_r: "def main(args):\n    return args['r']\n",
    entry_points: r#"
def main(args):
    return {"called": "main"}

def niam(args):
    return {"called": "niam", "greeting": "hello " + args.get("name", "stranger")}

handler = lambda args: {"called": "handler"}
"#,
    more_entry_points: &["handler"],
    throws_at_load: "raise RuntimeError('boom at load')\ndef main(args):\n    return {}\n",
    thrown_at_load: "RuntimeError: boom at load",
    // The end of the traceback.
    thrown_at_load_logged: "raise RuntimeError('boom at load')\nRuntimeError: boom at load",
    syntax_error: "def main(args):\n    return {'a': \n",
    syntax_error_says: "SyntaxError: ",
    syntax_error_where: "line 2",
    not_the_entry: "helper.py",
    missing_entry_says: "zipped actions must contain __main__.py at the root.",
    unicode: r#"# -*- coding: utf-8 -*-
# Grüße aus Köln: 日本語, ☃, 🎉
import sys

GREETING = "Grüße 🎉 / ok"

def main(args):
    text = args["text"]
    print("stdout: " + text)
    print("stderr: " + text, file=sys.stderr)
    return {"echo": text, "greeting": GREETING, "länge": len(text), "reversed": text[::-1]}
"#,
    context: r#"import os

def main(args):
    return {k: os.environ.get("__OW_" + k) for k in args["keys"]}
"#,
    init_env: r#"import os
KEYS = ["GREETING", "EMPTY", "NUMBER", "OBJECT", "NOTHING", "FLAG", "WITH_EQUALS", "UNICODE"]
AT_LOAD = {k: os.environ.get(k) for k in KEYS}

def main(args):
    return {"at_load": AT_LOAD, "at_run": {k: os.environ.get(k) for k in KEYS}}
"#,
    keeps_nested_empty_objects: true,
    keeps_list_results: true,
};

const NODEJS: Language = Language {
    runtime: "nodejs",
    program: "node",
    echo: r#"function main(args) {
    console.log("hello stdout!");
    console.error("hello stderr!");
    return args;
}"#,
    returns_r: "function main(args) { return args.r }",
    entry_points: r#"
function main() { return {called: "main"} }
function niam(args) { return {called: "niam", greeting: "hello " + (args.name || "stranger")} }
"#,
    more_entry_points: &[],
    throws_at_load: "throw new Error('boom at load');\nfunction main() {}",
    thrown_at_load: "Error: boom at load",
    // With its stack.
    thrown_at_load_logged: "Error: boom at load\n    at ",
    syntax_error: "function main(args) {\n  return {a: 1 }}\n}\n",
    syntax_error_says: "SyntaxError: ",
    syntax_error_where: "index.js:3",
    not_the_entry: "main.js",
    missing_entry_says: "zipped actions must contain either package.json or index.js at the root.",
    unicode: r#"// Grüße aus Köln: 日本語, ☃, 🎉
const GREETING = "Grüße 🎉 / ok";
function main(args) {
    const text = args.text;
    console.log("stdout: " + text);
    console.error("stderr: " + text);
    return {echo: text, greeting: GREETING, "länge": [...text].length, reversed: [...text].reverse().join("")};
}"#,
    context: r#"
function main(args) {
    return Object.fromEntries(args.keys.map((k) => [k, process.env["__OW_" + k] ?? null]));
}"#,
    init_env: r#"
const KEYS = ["GREETING", "EMPTY", "NUMBER", "OBJECT", "NOTHING", "FLAG", "WITH_EQUALS", "UNICODE"];
const AT_LOAD = Object.fromEntries(KEYS.map((k) => [k, process.env[k] ?? null]));
function main() {
    return {at_load: AT_LOAD, at_run: Object.fromEntries(KEYS.map((k) => [k, process.env[k] ?? null]))};
}"#,
    keeps_nested_empty_objects: true,
    keeps_list_results: true,
};

const PHP: Language = Language {
    runtime: "php",
    program: "php",
    echo: r#"<?php
function main(array $args) {
    echo "hello stdout!\n";
    fwrite(STDERR, "hello stderr!\n");
    return $args;
}"#,
    returns_r: "<?php function main(array $args) { return $args['r']; }",
    entry_points: r#"<?php
function main(array $args) { return ["called" => "main"]; }
function niam(array $args) { return ["called" => "niam", "greeting" => "hello " . ($args["name"] ?? "stranger")]; }
"#,
    more_entry_points: &[],
    throws_at_load: "<?php\nthrow new Exception('boom at load');\nfunction main(array $args) { return []; }\n",
    thrown_at_load: "Exception: boom at load in index.php on line 2",
    // With its stack.
    thrown_at_load_logged: "index.php:2\nStack trace:",
    syntax_error: "<?php\nfunction main(array $args) {\n  return ['a' => 1]\n}\n",
    syntax_error_says: "ParseError: syntax error",
    syntax_error_where: "index.php:4",
    not_the_entry: "main.php",
    missing_entry_says: "zipped actions must contain index.php at the root.",
    unicode: r#"<?php
// Grüße aus Köln: 日本語, ☃, 🎉
const GREETING = "Grüße 🎉 / ok";
function main(array $args) {
    $text = $args["text"];
    echo "stdout: $text\n";
    fwrite(STDERR, "stderr: $text\n");
    $chars = preg_split('//u', $text, -1, PREG_SPLIT_NO_EMPTY);
    return ["echo" => $text, "greeting" => GREETING, "länge" => preg_match_all('/./u', $text),
            "reversed" => implode("", array_reverse($chars))];
}"#,
    context: r#"<?php
function main(array $args) {
    $out = [];
    foreach ($args["keys"] as $k) {
        $v = getenv("__OW_$k");
        $out[$k] = $v === false ? null : $v;
    }
    return $out;
}"#,
    // PHP keeps getenv() and $_ENV apart: a variable on which they disagree shows as both, and
    // so does not equal the expected string.
    init_env: r#"<?php
const KEYS = ["GREETING", "EMPTY", "NUMBER", "OBJECT", "NOTHING", "FLAG", "WITH_EQUALS", "UNICODE"];
function snapshot() {
    $out = [];
    foreach (KEYS as $k) {
        $getenv = getenv($k);
        $getenv = $getenv === false ? null : $getenv;
        $env = $_ENV[$k] ?? null;
        $out[$k] = $getenv === $env ? $getenv : ["getenv" => $getenv, "env" => $env];
    }
    return $out;
}
$atLoad = snapshot();
function main(array $args) {
    global $atLoad;
    return ["at_load" => $atLoad, "at_run" => snapshot()];
}"#,
    keeps_nested_empty_objects: false,
    keeps_list_results: false,
};

const LANGUAGES: [&Language; 3] = [&PYTHON, &NODEJS, &PHP];

impl Language {
    fn start(&self) -> Proxy {
        self.start_with(&[])
    }

    /// The proxy with this runtime and extra environment variables.
    fn start_with(&self, env: &[(&str, &str)]) -> Proxy {
        require(self.program);
        Proxy::start_with(self.runtime, env, &[])
    }
}

/// Runs `case` for every language, each in a thread named after the language, and fails naming
/// each language it failed for, with that language's message.
fn for_each_language(case: fn(&Language)) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = LANGUAGES
            .iter()
            .map(|&language| {
                let run = std::thread::Builder::new()
                    .name(language.runtime.to_string())
                    .spawn_scoped(scope, move || case(language))
                    .unwrap();
                (language.runtime, run)
            })
            .collect();
        runs.into_iter()
            .filter_map(|(runtime, run)| {
                let panic = run.join().err()?;
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Some(format!("{runtime}: {message}"))
            })
            .collect()
    });
    assert!(failures.is_empty(), "failed for\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// /init

/// Each `/init` body is refused with 403 and the SPEC text, writes no sentinel and does not
/// count: the echo action initialises afterwards, and its one run is the only one framed.
fn assert_missing_code(language: &Language, bodies: &[Value], run: Value) {
    let p = language.start();
    for body in bodies {
        let a = p.post_json("/init", body);
        assert_json_answer("missing code", &a);
        assert_eq!(a.status, 403, "{body}");
        assert_eq!(a.json(), json!({"error": MISSING_CODE}), "{body}");
    }
    // Refusals reached no action: no sentinel.
    assert_eq!(count_sentinels(&p.stdout()), 0, "stdout: {}", p.stdout());
    assert_eq!(count_sentinels(&p.stderr()), 0, "stderr: {}", p.stderr());
    init_ok(&p, language.echo, "main");
    assert_eq!(run_ok(&p, run.clone()), run);
    p.framed_logs(1);
}

#[test]
fn empty_code_is_403_missing_main() {
    for_each_language(|language| {
        let bodies = [
            json!({"value": {"code": ""}}),
            json!({"value": {"code": null}}),
            json!({"value": {"code": null, "main": "main"}}),
            json!({"value": {"code": "", "binary": true}}),
            json!({"value": {"main": "main", "binary": false}}),
            json!({"value": {"code": null, "main": null, "binary": null, "env": null, "name": null}}),
        ];
        assert_missing_code(language, &bodies, json!({"after": "refusals"}));
    });
}

#[test]
fn empty_init_object_is_403_missing_main() {
    for_each_language(|language| {
        let bodies = [json!({}), json!({"value": null}), json!({"value": {}})];
        assert_missing_code(language, &bodies, json!({"x": 1}));
    });
}

#[test]
fn second_init_is_403_without_a_sentinel_and_keeps_the_first_action() {
    for_each_language(|language| {
        let p = language.start();
        init_ok(&p, language.entry_points, "main");
        let again = p.init_code(language.echo, "main");
        assert_json_answer("second init", &again);
        assert_eq!(again.status, 403);
        assert_eq!(again.json(), json!({"error": ALREADY_INITIALIZED}));
        // Also when the second body is not even valid.
        let broken = p.post("/init", b"garbage");
        assert_eq!(broken.status, 403, "{}", broken.json());
        assert_eq!(broken.json(), json!({"error": ALREADY_INITIALIZED}));

        assert_eq!(run_ok(&p, json!({})), json!({"called": "main"}));
        let (out, err) = p.framed_logs(1);
        assert!(
            before_first_sentinel(&err).contains(ALREADY_INITIALIZED),
            "stderr: {err}"
        );
        assert!(!out.contains(ALREADY_INITIALIZED), "stdout: {out}");
        // The one sentinel per stream is the run's: the refused inits wrote none.
    });
}

#[test]
fn entry_point_other_than_main() {
    for_each_language(|language| {
        let p = language.start();
        init_ok(&p, language.entry_points, "niam");
        assert_eq!(
            run_ok(&p, json!({"name": "Jane"})),
            json!({"called": "niam", "greeting": "hello Jane"})
        );
        assert_eq!(
            run_ok(&p, json!({})),
            json!({"called": "niam", "greeting": "hello stranger"})
        );
        for name in language.more_entry_points {
            let p = language.start();
            init_ok(&p, language.entry_points, name);
            assert_eq!(run_ok(&p, json!({})), json!({ "called": name }), "{name}");
        }
        // Without `main` in the request, the function is `main`.
        let p = language.start();
        assert_initialised(&p, &p.init(json!({"code": language.entry_points})));
        assert_eq!(run_ok(&p, json!({})), json!({"called": "main"}));
    });
}

#[test]
fn missing_entry_function_fails_init_naming_it() {
    for_each_language(|language| {
        let p = language.start();
        let a = p.init_code(language.entry_points, "no_such_function");
        assert_eq!(a.status, 502, "{}", a.json());
        let error = a.error();
        assert!(error.starts_with(CANNOT_START), "{error}");
        assert!(error.contains("no_such_function"), "{error}");
        // The failure did not count.
        init_ok(&p, language.echo, "main");
        assert_eq!(run_ok(&p, json!({"ok": 1})), json!({"ok": 1}));
    });
}

#[test]
fn exception_at_load_fails_init_with_its_message() {
    for_each_language(|language| {
        let p = language.start();
        let a = p.init_code(language.throws_at_load, "main");
        assert_eq!(a.status, 502, "{}", a.json());
        assert_eq!(
            a.error(),
            format!("{CANNOT_START} {}", language.thrown_at_load)
        );
        let (_, err) = p.logs_after(1);
        assert!(
            before_first_sentinel(&err).contains(language.thrown_at_load_logged),
            "stderr: {err}"
        );
    });
}

#[test]
fn syntax_error_fails_init_with_the_cause_and_one_sentinel_per_stream() {
    for_each_language(|language| {
        let p = language.start();
        let a = p.init_code(language.syntax_error, "main");
        assert_json_answer("syntax error", &a);
        assert_eq!(a.status, 502, "{}", a.json());
        let error = a.error();
        let detail = error
            .strip_prefix(&format!("{CANNOT_START} "))
            .unwrap_or_else(|| panic!("error does not start with the SPEC text: {error}"));
        assert!(detail.starts_with(language.syntax_error_says), "{error}");
        assert!(
            !error.contains('\n'),
            "only the first line of the cause: {error}"
        );
        let (out, err) = p.framed_logs(1);
        let cause = before_first_sentinel(&err);
        assert!(
            cause.contains(language.syntax_error_says),
            "the cause must precede the sentinel on stderr: {err}"
        );
        assert!(
            cause.contains(language.syntax_error_where),
            "the file and line: {err}"
        );
        assert!(!out.contains(language.syntax_error_says), "{out}");
        // The failure did not count.
        init_ok(&p, language.echo, "main");
        assert_eq!(run_ok(&p, json!({"ok": 1})), json!({"ok": 1}));
    });
}

#[test]
fn zip_without_its_entry_is_502_cannot_locate_saying_what_is_missing() {
    for_each_language(|language| {
        let p = language.start();
        let bytes = Archive::zip()
            .file(language.not_the_entry, language.echo)
            .build();
        let a = p.init_binary(&bytes, "main");
        assert_json_answer("zip without its entry", &a);
        assert_eq!(a.status, 502, "{}", a.json());
        let error = a.error();
        assert!(error.starts_with(CANNOT_LOCATE), "{error}");
        assert!(error.contains(language.missing_entry_says), "{error}");
        let (_, err) = p.framed_logs(1);
        assert!(
            before_first_sentinel(&err).contains(language.missing_entry_says),
            "stderr: {err}"
        );
    });
}

#[test]
fn init_env_is_set_before_the_code_loads() {
    for_each_language(|language| {
        let p = language.start();
        let a = p.init(json!({
            "code": language.init_env,
            "main": "main",
            "env": {
                "GREETING": "hello",
                "EMPTY": "",
                "NUMBER": 123,
                "OBJECT": {"a": 1, "b": [true, null]},
                "NOTHING": null,
                "FLAG": false,
                "WITH_EQUALS": "a=b=c",
                "UNICODE": "Grüße ☃",
            }
        }));
        assert_initialised(&p, &a);
        let expected = json!({
            "GREETING": "hello",
            "EMPTY": "",
            "NUMBER": "123",
            "OBJECT": "{\"a\":1,\"b\":[true,null]}",
            "NOTHING": "null",
            "FLAG": "false",
            "WITH_EQUALS": "a=b=c",
            "UNICODE": "Grüße ☃",
        });
        assert_eq!(
            run_ok(&p, json!({})),
            json!({"at_load": expected, "at_run": expected})
        );
    });
}

// ---------------------------------------------------------------------------------------------
// /run

#[test]
fn result_that_is_not_an_object_or_array_is_502() {
    for_each_language(|language| {
        let p = language.start();
        init_ok(&p, language.returns_r, "main");
        let mut runs = 0;
        for value in [
            json!("text"),
            json!(42),
            json!(1.5),
            json!(true),
            json!(false),
        ] {
            let a = p.run(json!({ "r": value }));
            runs += 1;
            assert_json_answer("non-object result", &a);
            assert_eq!(a.status, 502, "{value}: {}", a.json());
            assert_eq!(a.json(), json!({"error": NOT_A_DICTIONARY}), "{value}");
        }
        // Objects and arrays pass as they are, and the action still serves.
        if language.keeps_list_results {
            let list = json!([1, "two", {"three": 3}]);
            assert_eq!(run_ok(&p, json!({ "r": list })), list);
            runs += 1;
        }
        assert_eq!(run_ok(&p, json!({"r": {"ok": true}})), json!({"ok": true}));
        runs += 1;
        // An application error is a 200.
        assert_eq!(
            run_ok(&p, json!({"r": {"error": "app error"}})),
            json!({"error": "app error"})
        );
        runs += 1;
        p.framed_logs(runs);
    });
}

#[test]
fn echo_of_four_values_with_logs_and_exactly_four_sentinels_per_stream() {
    for_each_language(|language| {
        let p = language.start();
        init_ok(&p, language.echo, "main");
        let mut nested = json!({"nested": {"list": [1, {"x": null}], "t": true}});
        if language.keeps_nested_empty_objects {
            nested["empty"] = json!({});
        }
        let values = [
            json!({"a": "b"}),
            json!({"n": 1, "f": 2.5, "neg": -3}),
            nested,
            json!({}),
        ];
        for value in &values {
            assert_eq!(&run_ok(&p, value.clone()), value);
        }
        let (out, err) = p.logs_after(4);
        // Nothing but the action's lines and the sentinels.
        assert_eq!(out, format!("hello stdout!\n{SENTINEL}\n").repeat(4));
        assert_eq!(err, format!("hello stderr!\n{SENTINEL}\n").repeat(4));
    });
}

#[test]
fn unicode_in_source_params_logs_and_result() {
    for_each_language(|language| {
        let text = "Ünïcödé ☃ 日本語 🎉 \u{1F600} ñ";
        let p = language.start();
        init_ok(&p, language.unicode, "main");
        let a = p.run(json!({ "text": text }));
        assert_eq!(a.status, 200, "{}", a.text());
        let reversed: String = text.chars().rev().collect();
        assert_eq!(
            a.json(),
            json!({
                "echo": text,
                "greeting": "Grüße 🎉 / ok",
                "länge": text.chars().count(),
                "reversed": reversed,
            })
        );
        // Unicode and slashes travel unescaped.
        let body = String::from_utf8(a.body.clone()).unwrap();
        assert!(body.contains("Grüße 🎉 / ok"), "{body}");
        let (out, err) = p.logs_after(1);
        assert!(
            out.lines().any(|l| l == format!("stdout: {text}")),
            "stdout: {out}"
        );
        assert!(
            err.lines().any(|l| l == format!("stderr: {text}")),
            "stderr: {err}"
        );
    });
}

#[test]
fn activation_context_is_in_the_environment_with_api_host_whole() {
    for_each_language(|language| {
        let api_host = "https://openwhisk.example.org:443/api?a=b=c";
        let p =
            language.start_with(&[("__OW_API_HOST", api_host), ("__OW_OTHER_SETTING", "x=y=z")]);
        init_ok(&p, language.context, "main");
        let keys = [
            "API_HOST",
            "OTHER_SETTING",
            "NAMESPACE",
            "ACTION_NAME",
            "ACTION_VERSION",
            "ACTIVATION_ID",
            "TRANSACTION_ID",
            "API_KEY",
            "DEADLINE",
            "VALUE",
        ];
        for activation in ["0123456789abcdef", "fedcba9876543210"] {
            let a = p.post_json(
                "/run",
                &json!({
                    "value": {"some": "argument", "keys": keys},
                    "namespace": "guest",
                    "action_name": "/guest/ctx",
                    "action_version": "0.0.1",
                    "activation_id": activation,
                    "transaction_id": "tx-42",
                    "api_key": "user:secret==",
                    "deadline": "4102444800000",
                }),
            );
            assert_eq!(a.status, 200, "{}", a.text());
            assert_eq!(
                a.json(),
                json!({
                    "API_HOST": api_host,
                    "OTHER_SETTING": "x=y=z",
                    "NAMESPACE": "guest",
                    "ACTION_NAME": "/guest/ctx",
                    "ACTION_VERSION": "0.0.1",
                    "ACTIVATION_ID": activation,
                    "TRANSACTION_ID": "tx-42",
                    "API_KEY": "user:secret==",
                    "DEADLINE": "4102444800000",
                    "VALUE": null,
                })
            );
        }
    });
}

#[test]
fn non_string_context_values_are_exported_compact_and_never_crash() {
    for_each_language(|language| {
        let p = language.start();
        init_ok(&p, language.context, "main");
        let keys = [
            "DEADLINE",
            "EXTRA",
            "FLAG",
            "NOTHING",
            "LIST",
            "NUM",
            "ACTIVATION_ID",
        ];
        let a = p.post_json(
            "/run",
            &json!({
                "value": {"keys": keys},
                "deadline": 123,
                "extra": {"a": 1},
                "flag": true,
                "nothing": null,
                "list": [1, "a"],
                "num": 1.5,
                "activation_id": "act-1",
            }),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(
            a.json(),
            json!({
                "DEADLINE": "123",
                "EXTRA": "{\"a\":1}",
                "FLAG": "true",
                "NOTHING": "null",
                "LIST": "[1,\"a\"]",
                "NUM": "1.5",
                "ACTIVATION_ID": "act-1",
            })
        );
        // Empty objects and arrays stay what they are, and the loop is still alive.
        let a = p.post_json(
            "/run",
            &json!({
                "value": {"keys": ["EXTRA", "ACTIVATION_ID"]},
                "extra": {"a": {}, "b": []},
                "activation_id": "act-2",
            }),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(
            a.json(),
            json!({"EXTRA": "{\"a\":{},\"b\":[]}", "ACTIVATION_ID": "act-2"})
        );
    });
}

#[test]
fn one_mib_argument_is_echoed() {
    for_each_language(|language| {
        let p = language.start();
        init_ok(&p, language.echo, "main");
        let big: String = (0..1024 * 1024)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let value = json!({"big": big, "tail": "end"});
        let result = run_ok(&p, value.clone());
        assert_eq!(result["big"].as_str().map(str::len), Some(1024 * 1024));
        assert_eq!(result, value);
        // And the action is fine afterwards.
        assert_eq!(run_ok(&p, json!({"small": 1})), json!({"small": 1}));
    });
}
