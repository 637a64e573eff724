//! Node.js semantics (SPEC §5, issue 3), against the real binary and the real `node`. The
//! canonical runtime cases of the OpenWhisk test suites, shared by the three languages, are in
//! tests/canonical.rs.

mod common;

use common::*;

fn node() -> Proxy {
    require("node");
    Proxy::node()
}

/// A proxy running `code` as a single file, answering 200 to `{}` with `expected`.
fn assert_single_file(code: &str, main: &str, expected: Value) {
    let p = node();
    init_ok(&p, code, main);
    assert_eq!(run_ok(&p, json!({})), expected, "code: {code}");
}

// ---------------------------------------------------------------------------------------------
// Single files

#[test]
fn single_file_top_level_function_main() {
    assert_single_file(
        "function helper() { return 1 }\nfunction main() { return {how: 'top-level', n: helper()} }",
        "main",
        json!({"how": "top-level", "n": 1}),
    );
    // Also a top-level const arrow function.
    assert_single_file(
        "'use strict';\nconst main = async () => ({how: 'const'});",
        "main",
        json!({"how": "const"}),
    );
}

#[test]
fn single_file_exports_main() {
    assert_single_file(
        "exports.main = () => ({how: 'exports.main'})",
        "main",
        json!({"how": "exports.main"}),
    );
}

#[test]
fn single_file_module_exports_main() {
    assert_single_file(
        "module.exports.main = () => ({how: 'module.exports.main'})",
        "main",
        json!({"how": "module.exports.main"}),
    );
}

#[test]
fn single_file_module_exports_is_the_function() {
    assert_single_file(
        "module.exports = function (args) { return {how: 'module.exports = fn'} }",
        "main",
        json!({"how": "module.exports = fn"}),
    );
}

#[test]
fn single_file_global_main() {
    assert_single_file(
        "global.main = () => ({how: 'global.main'})",
        "main",
        json!({"how": "global.main"}),
    );
}

#[test]
fn single_file_es_module_is_detected() {
    // `export function`, with an import and top-level await.
    let code = r#"import { platform } from "node:os";
const ready = await Promise.resolve("awaited at load");
export function main() { return {how: "export function", ready, os: typeof platform()} }"#;
    assert_single_file(
        code,
        "main",
        json!({"how": "export function", "ready": "awaited at load", "os": "string"}),
    );
    assert_single_file(
        "export default async function (args) { return {how: 'export default'} }",
        "main",
        json!({"how": "export default"}),
    );
    // A function that the module does not export is still found by its name.
    assert_single_file(
        "import path from 'node:path';\nfunction niam() { return {how: 'unexported', sep: path.sep} }",
        "niam",
        json!({"how": "unexported", "sep": "/"}),
    );
}

#[test]
fn a_builtin_global_is_not_the_entry_function() {
    // A name that is nowhere is a canonical case (tests/canonical.rs).
    let p = node();
    let a = p.init_code("function main() { return {} }", "setTimeout");
    assert_eq!(a.status, 502, "{}", a.json());
    init_ok(&p, "function main() { return {ok: 1} }", "main");
    assert_eq!(run_ok(&p, json!({})), json!({"ok": 1}));
}

#[test]
fn syntax_error_in_an_es_module_fails_init() {
    // In a plain script it is a canonical case (tests/canonical.rs).
    let p = node();
    let a = p.init_code(
        "import fs from 'node:fs';\nexport function main( {}\n",
        "main",
    );
    assert_eq!(a.status, 502, "{}", a.json());
    assert!(a.error().contains("SyntaxError"), "{}", a.error());
    let (_, err) = p.logs_after(1);
    assert!(before_first_sentinel(&err).contains("SyntaxError"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Zips

fn index_js(body: &str) -> String {
    format!("module.exports.main = {body};\n")
}

/// A proxy running the zip `archive` with the entry point `main`, answering 200 to `{}` with
/// `expected`.
fn assert_zip(archive: &[u8], main: &str, expected: Value) {
    let p = node();
    init_binary_ok(&p, archive, main);
    assert_eq!(run_ok(&p, json!({})), expected, "main: {main}");
}

#[test]
fn zip_uses_package_json_main() {
    let package = br#"{"name": "action", "main": "lib/app.js"}"#;
    let app = index_js("() => ({from: 'lib/app.js'})");
    let index = index_js("() => ({from: 'index.js'})");
    let archive = Archive::zip()
        .file("package.json", package)
        .file("lib/app.js", app)
        .file("index.js", index)
        .build();
    assert_zip(&archive, "main", json!({"from": "lib/app.js"}));
}

#[test]
fn zip_without_package_json_uses_index_js() {
    let index = index_js("() => ({from: 'index.js'})");
    let archive = Archive::zip().file("index.js", index).build();
    assert_zip(&archive, "main", json!({"from": "index.js"}));
}

#[test]
fn zip_main_names_a_file_and_a_nested_property() {
    let handlers = "exports.hello = () => ({which: 'handlers.hello'});\n\
                    exports.api = { v1: { get: () => ({which: 'handlers.api.v1.get'}) } };\n";
    let index = index_js("() => ({which: 'index'})");
    let archive = Archive::zip()
        .file("index.js", index)
        .file("handlers.js", handlers)
        .build();
    assert_zip(
        &archive,
        "handlers.hello",
        json!({"which": "handlers.hello"}),
    );
    let expected = json!({"which": "handlers.api.v1.get"});
    assert_zip(&archive, "handlers.api.v1.get", expected);
    // A property that is not there fails /init.
    let p = node();
    let a = p.init_binary(&archive, "handlers.api.v2.get");
    assert_eq!(a.status, 502, "{}", a.json());
    assert!(a.error().starts_with(CANNOT_START), "{}", a.error());
}

#[test]
fn zip_bundled_node_modules_resolve() {
    let index = "const pad = require('left-pad-lite');\nconst { twice } = require('@scope/twice');\n\
                 exports.main = (args) => ({padded: pad(args.s, 5), twice: twice(args.s)});\n";
    let files: [(&str, &[u8]); 5] = [
        ("index.js", index.as_bytes()),
        (
            "node_modules/left-pad-lite/package.json",
            br#"{"name": "left-pad-lite", "main": "pad.js"}"#,
        ),
        (
            "node_modules/left-pad-lite/pad.js",
            b"module.exports = (s, n) => s.padStart(n, '.');\n",
        ),
        (
            "node_modules/@scope/twice/index.js",
            b"exports.twice = (s) => s + s;\n",
        ),
        ("package.json", br#"{"name": "with-deps"}"#),
    ];
    let p = node();
    init_binary_ok(&p, &Archive::zip().files(&files).build(), "main");
    assert_eq!(
        run_ok(&p, json!({"s": "ab"})),
        json!({"padded": "...ab", "twice": "abab"})
    );
}

#[test]
fn zip_type_module_loads_es_modules() {
    let files: [(&str, &[u8]); 3] = [
        ("package.json", br#"{"type": "module", "main": "app.js"}"#),
        (
            "app.js",
            b"import { shout } from './util.js';\nexport async function main(args) { return {esm: shout('hi')} }\n",
        ),
        ("util.js", b"export const shout = (s) => s.toUpperCase() + '!';\n"),
    ];
    let archive = Archive::zip().files(&files).build();
    assert_zip(&archive, "main", json!({"esm": "HI!"}));
}

#[test]
fn zip_mjs_files_load_as_es_modules() {
    let files: [(&str, &[u8]); 3] = [
        ("package.json", br#"{"main": "entry.mjs"}"#),
        (
            "entry.mjs",
            b"export default function (args) { return {mjs: 'default'} }\n",
        ),
        (
            "other.mjs",
            b"export const handlers = { go: () => ({mjs: 'other.handlers.go'}) };\n",
        ),
    ];
    let archive = Archive::zip().files(&files).build();
    assert_zip(&archive, "main", json!({"mjs": "default"}));
    assert_zip(
        &archive,
        "other.handlers.go",
        json!({"mjs": "other.handlers.go"}),
    );
}

#[test]
fn the_working_directory_is_the_action_folder() {
    let code = r#"const fs = require("fs");
function main() {
    return {same: __dirname === process.cwd(), sibling: fs.readdirSync(".").includes("index.js"), cwd: process.cwd()};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    let result = run_ok(&p, json!({}));
    assert_eq!(result["same"], json!(true), "{result}");
    assert_eq!(result["sibling"], json!(true), "{result}");
    assert!(
        result["cwd"].as_str().unwrap().contains("/action/"),
        "{result}"
    );

    let index = "const fs = require('fs');\nexports.main = () => ({same: __dirname === process.cwd(), \
                 data: fs.readFileSync('data/info.txt', 'utf8')});\n";
    let archive = Archive::zip()
        .file("index.js", index)
        .file("data/info.txt", "packed")
        .build();
    assert_zip(&archive, "main", json!({"same": true, "data": "packed"}));
}

// ---------------------------------------------------------------------------------------------
// Results

#[test]
fn promises_are_awaited_and_undefined_or_null_is_an_empty_object() {
    let code = r#"
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main(args) {
    await sleep(20);
    if (args.kind === "undefined") return undefined;
    if (args.kind === "null") return null;
    if (args.kind === "then") return new Promise((r) => setTimeout(() => r({thenable: true}), 20));
    if (args.kind === "nothing") { console.log("returns nothing"); return; }
    return {awaited: args.n * 2};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({"n": 21})), json!({"awaited": 42}));
    for kind in ["undefined", "null", "nothing"] {
        assert_eq!(run_ok(&p, json!({ "kind": kind })), json!({}), "{kind}");
    }
    assert_eq!(
        run_ok(&p, json!({"kind": "then"})),
        json!({"thenable": true})
    );
}

#[test]
fn thrown_or_rejected_error_keeps_its_message_and_its_stack_goes_to_stderr() {
    let code = r#"
async function main(args) {
    if (args.how === "throw") throw new Error("app error");
    if (args.how === "reject") return Promise.reject(new TypeError("rejected " + args.why));
    if (args.how === "async") { await null; throw new RangeError("after await"); }
    return {fine: true};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    assert_eq!(
        run_ok(&p, json!({"how": "throw"})),
        json!({"error": "Error: app error"})
    );
    assert_eq!(
        run_ok(&p, json!({"how": "reject", "why": "x"})),
        json!({"error": "TypeError: rejected x"})
    );
    assert_eq!(
        run_ok(&p, json!({"how": "async"})),
        json!({"error": "RangeError: after await"})
    );
    assert_eq!(run_ok(&p, json!({})), json!({"fine": true}));
    let (out, err) = p.logs_after(4);
    let first = before_first_sentinel(&err);
    assert!(first.contains("Error: app error\n    at main ("), "{err}");
    assert!(first.contains("index.js:"), "{err}");
    assert!(err.contains("TypeError: rejected x"), "{err}");
    assert!(!out.contains("app error"), "no stack on stdout: {out}");
    assert!(!out.contains("    at "), "no stack on stdout: {out}");
}

#[test]
fn rejected_plain_value_is_the_error_itself() {
    let code = r#"
function main(args) {
    if (args.how === "object") return Promise.reject({code: 42, reason: "plain"});
    if (args.how === "string") throw "thrown string";
    if (args.how === "nothing") return Promise.reject();
    return {fine: true};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    assert_eq!(
        run_ok(&p, json!({"how": "object"})),
        json!({"error": {"code": 42, "reason": "plain"}})
    );
    assert_eq!(
        run_ok(&p, json!({"how": "string"})),
        json!({"error": "thrown string"})
    );
    assert_eq!(run_ok(&p, json!({"how": "nothing"})), json!({"error": {}}));
    assert_eq!(run_ok(&p, json!({})), json!({"fine": true}));
}

#[test]
fn stray_exceptions_and_rejections_do_not_kill_the_loop() {
    let code = r#"
let count = 0;
function main(args) {
    count += 1;
    if (args.how === "timer") {
        setTimeout(() => { throw new Error("thrown in a timer") }, 10);
        return new Promise(() => {});
    }
    if (args.how === "unhandled") {
        Promise.reject(new Error("nobody handles me"));
        return new Promise((resolve) => setTimeout(() => resolve({late: true}), 200));
    }
    if (args.how === "later") {
        setTimeout(() => { throw new Error("thrown between activations") }, 20);
        setTimeout(() => Promise.reject(new Error("rejected between activations")), 20);
    }
    return {count};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    // During an activation: that activation's answer.
    assert_eq!(
        run_ok(&p, json!({"how": "timer"})),
        json!({"error": "Error: thrown in a timer"})
    );
    assert_eq!(
        run_ok(&p, json!({"how": "unhandled"})),
        json!({"error": "Error: nobody handles me"})
    );
    // Between activations: logged, and the loop goes on. The late resolution of the second
    // activation is dropped, not taken for the next answer.
    assert_eq!(run_ok(&p, json!({"how": "later"})), json!({"count": 3}));
    p.wait_stderr("rejected between activations");
    assert_eq!(run_ok(&p, json!({})), json!({"count": 4}));
    let (_, err) = p.logs_after(4);
    for text in [
        "thrown in a timer",
        "nobody handles me",
        "thrown between activations",
        "rejected between activations",
    ] {
        assert!(err.contains(text), "{text}: {err}");
    }
}

#[test]
fn unserialisable_result_is_502_and_the_action_keeps_serving() {
    let code = r#"
let count = 0;
function main(args) {
    count += 1;
    if (args.kind === "bigint") return {n: 1n};
    if (args.kind === "circular") { const o = {}; o.self = o; return o; }
    if (args.kind === "toJSON") return {x: {toJSON() { throw new Error("no JSON for you") }}};
    return {count};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    for kind in ["bigint", "circular", "toJSON"] {
        let a = p.run(json!({ "kind": kind }));
        assert_eq!(a.status, 502, "{kind}: {}", a.json());
        assert!(!a.error().is_empty(), "{kind}");
    }
    assert_eq!(run_ok(&p, json!({})), json!({"count": 4}));
    p.framed_logs(4);
}

// ---------------------------------------------------------------------------------------------
// Channels and logs

#[test]
fn the_action_cannot_read_or_forge_the_protocol_channels() {
    let code = r#"const fs = require("fs");
const { spawnSync } = require("child_process");
let count = 0;
function main() {
    count += 1;
    const child = spawnSync("cat", [], {stdio: ["inherit", "pipe", "inherit"], timeout: 5000});
    let own;
    try { own = fs.readFileSync(0, "utf8"); } catch (e) { own = e.code; }
    try { fs.writeSync(3, '{"forged":true}\n'); } catch (e) {}
    return {count, child: child.stdout.toString(), own};
}"#;
    let p = node();
    init_ok(&p, code, "main");
    for n in 1..=3 {
        assert_eq!(
            run_ok(&p, json!({"n": n})),
            json!({"count": n, "child": "", "own": ""})
        );
    }
}

#[test]
fn output_written_during_an_activation_precedes_its_sentinel() {
    let code = r#"
async function main(args) {
    process.stdout.write("x".repeat(args.size) + "\n");
    await new Promise((r) => setTimeout(r, 10));
    process.stdout.write("last words without newline");
    process.stderr.write("e".repeat(args.size) + "\n");
    return {};
}"#;
    let size = 512 * 1024;
    let p = node();
    init_ok(&p, code, "main");
    run_ok(&p, json!({ "size": size }));
    run_ok(&p, json!({ "size": 10 }));
    let (out, err) = p.framed_logs(2);
    let first = before_first_sentinel(&out);
    assert!(
        first.contains(&"x".repeat(size)),
        "{} bytes before the sentinel",
        first.len()
    );
    assert!(
        first.ends_with("last words without newline\n"),
        "{}",
        &first[first.len().saturating_sub(60)..]
    );
    assert!(before_first_sentinel(&err).contains(&"e".repeat(size)));
}
