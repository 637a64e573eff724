//! PHP semantics (SPEC §5, issue 3), against the real binary and the real `php`. The canonical
//! runtime cases of the OpenWhisk test suites, shared by the three languages, are in
//! tests/canonical.rs.

mod common;

use common::*;

fn php() -> Proxy {
    require("php");
    Proxy::php()
}

/// A proxy whose `php` also reads `ini` (an extra ini file, on top of the usual ones).
fn php_with_ini(ini: &str) -> (Proxy, tempfile::TempDir) {
    require("php");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zz-test.ini"), ini).unwrap();
    // A leading `:` keeps the compiled-in scan folder and adds ours.
    let scan = format!(":{}", dir.path().display());
    let p = Proxy::start_with("php", &[("PHP_INI_SCAN_DIR", &scan)], &[]);
    (p, dir)
}

// ---------------------------------------------------------------------------------------------
// Loading

#[test]
fn zip_index_php_with_vendor_autoload_loaded_first() {
    let autoload = br#"<?php
spl_autoload_register(function ($class) {
    require __DIR__ . '/../src/' . str_replace('\\', '/', $class) . '.php';
});
define('AUTOLOADED_FIRST', true);
"#;
    let index = br#"<?php
use App\Greeter;
$loadedFirst = defined('AUTOLOADED_FIRST');
$greeter = new Greeter('Hello');
function main(array $args) {
    global $greeter, $loadedFirst;
    return ["greeting" => $greeter->greet($args["name"] ?? "zip"), "first" => $loadedFirst,
            "data" => trim(file_get_contents("data/info.txt"))];
}
"#;
    let greeter = br#"<?php
namespace App;
class Greeter {
    public function __construct(private string $word) {}
    public function greet(string $name): string { return "$this->word, $name"; }
}
"#;
    let files: [(&str, &[u8]); 4] = [
        ("index.php", index),
        ("vendor/autoload.php", autoload),
        ("src/App/Greeter.php", greeter),
        ("data/info.txt", b"packed\n"),
    ];
    let p = php();
    init_binary_ok(&p, &Archive::zip().files(&files).build(), "main");
    assert_eq!(
        run_ok(&p, json!({"name": "PHP"})),
        json!({"greeting": "Hello, PHP", "first": true, "data": "packed"})
    );
}

#[test]
fn missing_main_function_fails_init() {
    let p = php();
    let a = p.init_code("<?php function niam() { return []; }", "main");
    assert_eq!(a.status, 502, "{}", a.json());
    let error = a.error();
    assert!(error.starts_with(CANNOT_START), "{error}");
    assert!(error.contains("'main'"), "{error}");
    // And a fatal error while loading (not an exception) fails /init too, saying why.
    let a = p.init_code("<?php function strlen($s) { return 0; }", "main");
    assert_eq!(a.status, 502, "{}", a.json());
    assert!(a.error().contains("Cannot redeclare"), "{}", a.error());
}

#[test]
fn text_outside_php_tags_and_echo_do_not_corrupt_the_result() {
    let code = "Plain text before the tag {\"not\": \"a result\"}\n<?php\n\
                function main(array $args) { echo \"{\\\"echoed\\\": 1}\\n\"; print \"printed\\n\"; \
                return [\"ok\" => true]; }\n?>\nText after the closing tag\n";
    let p = php();
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"ok": true}));
    assert_eq!(run_ok(&p, json!({})), json!({"ok": true}));
    let (out, _) = p.logs_after(2);
    let first = before_first_sentinel(&out);
    assert!(first.contains("Plain text before the tag"), "{out}");
    assert!(first.contains("Text after the closing tag"), "{out}");
    assert!(first.contains("{\"echoed\": 1}\nprinted\n"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Results

#[test]
fn arrays_and_objects_become_json_objects() {
    let code = r#"<?php
function main(array $args) {
    switch ($args["kind"]) {
        case "list": return ["a", "b"];
        case "nested": return ["list" => [1, 2], "map" => ["k" => "v"]];
        case "empty": return [];
        case "stdclass": $o = new stdClass; $o->x = 1; $o->y = ["z"]; return $o;
        case "arrayobject": return new ArrayObject(["a" => 1, "b" => [true]]);
        case "null": return null;
        case "nothing": return;
    }
}"#;
    let p = php();
    init_ok(&p, code, "main");
    for (kind, expected) in [
        ("list", json!({"0": "a", "1": "b"})),
        ("nested", json!({"list": [1, 2], "map": {"k": "v"}})),
        ("empty", json!({})),
        ("stdclass", json!({"x": 1, "y": ["z"]})),
        ("arrayobject", json!({"a": 1, "b": [true]})),
        ("null", json!({})),
        ("nothing", json!({})),
    ] {
        assert_eq!(run_ok(&p, json!({ "kind": kind })), expected, "{kind}");
    }
}

#[test]
fn throwable_is_200_error_with_trace_on_stderr_and_the_action_keeps_serving() {
    let code = r#"<?php
$count = 0;
class AppError extends Exception {}
function main(array $args) {
    global $count;
    $count++;
    switch ($args["how"] ?? "") {
        case "exception": throw new RuntimeException("bad input: " . $args["why"]);
        case "error": return undefined_function_for_the_test();
        case "custom": throw new AppError("custom failure");
        case "type": return strlen([]);
    }
    return ["count" => $count];
}"#;
    let p = php();
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"count": 1}));
    assert_eq!(
        run_ok(&p, json!({"how": "exception", "why": "x"})),
        json!({"error": "bad input: x"})
    );
    assert_eq!(
        run_ok(&p, json!({"how": "error"})),
        json!({"error": "Call to undefined function undefined_function_for_the_test()"})
    );
    assert_eq!(
        run_ok(&p, json!({"how": "custom"})),
        json!({"error": "custom failure"})
    );
    let typed = run_ok(&p, json!({"how": "type"}));
    assert!(
        typed["error"].as_str().unwrap().contains("strlen()"),
        "{typed}"
    );
    // Same process, same state.
    assert_eq!(run_ok(&p, json!({})), json!({"count": 6}));
    let (out, err) = p.logs_after(6);
    let second = activations(&err)[1];
    assert!(
        second.contains("RuntimeException: bad input: x"),
        "{second}"
    );
    assert!(second.contains("Stack trace:"), "{second}");
    assert!(!out.contains("Stack trace"), "{out}");
}

#[test]
fn fatal_error_during_a_run_is_non_200_with_fatal_error_in_the_logs() {
    let code = r#"<?php
function main(array $args) {
    if ($args["fatal"] ?? false) {
        echo "before the fatal error\n";
        trigger_error("deliberately fatal", E_USER_ERROR);
    }
    return ["pid" => getmypid()];
}"#;
    let p = php();
    init_ok(&p, code, "main");
    let before = run_ok(&p, json!({}))["pid"].clone();
    let a = p.run(json!({"fatal": true}));
    assert_ne!(a.status, 200, "{}", a.text());
    assert_eq!(a.status, 400, "{}", a.json());
    assert!(a.error().contains("command exited"), "{}", a.error());
    // Then a restart, not a hang.
    let after = run_ok(&p, json!({}))["pid"].clone();
    assert_ne!(before, after);
    let (out, err) = p.logs_after(3);
    let second = activations(&err)[1];
    assert!(
        second.to_lowercase().contains("fatal error"),
        "stderr: {err}"
    );
    assert!(second.contains("deliberately fatal"), "stderr: {err}");
    assert!(out.contains("before the fatal error"), "{out}");
}

#[test]
fn invalid_utf8_in_the_result_is_502_and_the_action_keeps_serving() {
    let code = r#"<?php
function main(array $args) {
    return ($args["bad"] ?? false) ? ["bytes" => "\xff\xfe"] : ["fine" => true];
}"#;
    let p = php();
    init_ok(&p, code, "main");
    let a = p.run(json!({"bad": true}));
    assert_eq!(a.status, 502, "{}", a.json());
    assert!(a.error().contains("UTF-8"), "{}", a.error());
    assert_eq!(run_ok(&p, json!({})), json!({"fine": true}));
}

// ---------------------------------------------------------------------------------------------
// Environment, php.ini and channels

#[test]
fn context_is_visible_through_getenv_and_env_whatever_variables_order() {
    let code = r#"<?php
function main(array $args) {
    return ["getenv" => getenv("__OW_ACTIVATION_ID"), "env" => $_ENV["__OW_ACTIVATION_ID"] ?? null,
            "host_getenv" => getenv("__OW_API_HOST"), "host_env" => $_ENV["__OW_API_HOST"] ?? null,
            "order" => ini_get("variables_order")];
}"#;
    for order in ["GPCS", "EGPCS"] {
        require("php");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("zz-order.ini"),
            format!("variables_order = \"{order}\"\n"),
        )
        .unwrap();
        let scan = format!(":{}", dir.path().display());
        let p = Proxy::start_with(
            "php",
            &[
                ("PHP_INI_SCAN_DIR", &scan),
                ("__OW_API_HOST", "http://host"),
            ],
            &[],
        );
        init_ok(&p, code, "main");
        let a = p.post_json("/run", &json!({"value": {}, "activation_id": "act-1"}));
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(
            a.json(),
            json!({"getenv": "act-1", "env": "act-1", "host_getenv": "http://host",
                   "host_env": "http://host", "order": order}),
            "variables_order {order}"
        );
    }
}

#[test]
fn php_ini_cannot_send_errors_to_stdout() {
    let (p, _ini) = php_with_ini("display_errors = On\nlog_errors = Off\nerror_log = syslog\n");
    let code = r#"<?php
echo "loaded\n";
function main(array $args) {
    echo "echoed during the run\n";
    return ["w" => "x" . $args["missing"]];
}"#;
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"w": "x"}));
    let (out, err) = p.logs_after(1);
    let out_first = before_first_sentinel(&out);
    assert!(out_first.contains("loaded\necho"), "{out}");
    assert!(!out.contains("Warning"), "a warning on stdout: {out}");
    assert!(
        before_first_sentinel(&err).contains("PHP Warning:  Undefined array key \"missing\""),
        "{err}"
    );
}

#[test]
fn output_left_in_a_buffer_is_flushed_before_the_sentinel() {
    let code = r#"<?php
function main(array $args) {
    ob_start();
    echo "buffered by the action " . $args["n"] . "\n";
    return [];
}"#;
    let p = php();
    init_ok(&p, code, "main");
    run_ok(&p, json!({"n": 1}));
    run_ok(&p, json!({"n": 2}));
    let (out, _) = p.logs_after(2);
    assert_eq!(
        out,
        format!("buffered by the action 1\n{SENTINEL}\nbuffered by the action 2\n{SENTINEL}\n")
    );
}

#[test]
fn the_action_cannot_read_the_request_channel() {
    let code = r#"<?php
$count = 0;
function main(array $args) {
    global $count;
    $count++;
    $child = shell_exec("timeout 5 cat");
    $stdin = file_get_contents("php://stdin");
    return ["count" => $count, "child" => $child ?? "", "stdin" => $stdin];
}"#;
    let p = php();
    init_ok(&p, code, "main");
    for n in 1..=3 {
        assert_eq!(
            run_ok(&p, json!({"n": n})),
            json!({"count": n, "child": "", "stdin": ""})
        );
    }
}
