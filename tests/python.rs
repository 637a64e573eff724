//! Python semantics (SPEC §5) and the canonical runtime cases of the OpenWhisk runtime test
//! suites, against the real binary and the real `python3`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn python() -> Proxy {
    require("python3");
    Proxy::start("python")
}

/// `pythonX.Y` of the `python3` on PATH, the one the proxy starts.
fn python_version_dir() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print('python%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn entry_point_can_be_any_top_level_function() {
    let code = r#"
def main(args):
    return {"called": "main"}

def niam(args):
    return {"called": "niam", "greeting": "hello " + args.get("name", "stranger")}

handler = lambda args: {"called": "handler"}
"#;
    let p = python();
    init_ok(&p, code, "niam");
    assert_eq!(
        run_ok(&p, json!({"name": "Jane"})),
        json!({"called": "niam", "greeting": "hello Jane"})
    );
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"called": "niam", "greeting": "hello stranger"})
    );

    let p = python();
    init_ok(&p, code, "handler");
    assert_eq!(run_ok(&p, json!({})), json!({"called": "handler"}));

    // Without `main` in the request, the function is `main`.
    let p = python();
    let a = p.init(json!({"code": code}));
    assert_eq!(a.status, 200, "{}", a.json());
    assert_eq!(run_ok(&p, json!({})), json!({"called": "main"}));
}

#[test]
fn missing_entry_function_fails_init() {
    let p = python();
    let a = p.init_code("def main(args):\n    return {}\n", "no_such_function");
    assert_eq!(a.status, 502, "{}", a.json());
    let error = a.error();
    assert!(error.starts_with(CANNOT_START), "{error}");
    assert!(error.contains("no_such_function"), "{error}");
    // The failure did not count.
    init_ok(&p, "def main(args):\n    return {'ok': 1}\n", "main");
    assert_eq!(run_ok(&p, json!({})), json!({"ok": 1}));
}

#[test]
fn exception_at_import_fails_init_with_its_message() {
    let p = python();
    let a = p.init_code(
        "raise RuntimeError('boom at import')\ndef main(args):\n    return {}\n",
        "main",
    );
    assert_eq!(a.status, 502);
    assert_eq!(
        a.error(),
        format!("{CANNOT_START} RuntimeError: boom at import")
    );
    let (_, err) = p.logs_after(1);
    assert!(
        before_first_sentinel(&err).contains("RuntimeError: boom at import"),
        "stderr: {err}"
    );
}

#[test]
fn async_main_is_awaited() {
    let code = r#"import asyncio

async def helper(x):
    await asyncio.sleep(0.01)
    return x * 2

async def main(args):
    if args.get("fail"):
        await asyncio.sleep(0)
        raise RuntimeError("async failure")
    doubled = await helper(args.get("n", 0))
    return {"awaited": True, "doubled": doubled}
"#;
    let p = python();
    init_ok(&p, code, "main");
    for n in [1, 21] {
        assert_eq!(
            run_ok(&p, json!({ "n": n })),
            json!({"awaited": true, "doubled": n * 2})
        );
    }
    assert_eq!(
        run_ok(&p, json!({"fail": true})),
        json!({"error": "async failure"})
    );
    assert_eq!(
        run_ok(&p, json!({"n": 5})),
        json!({"awaited": true, "doubled": 10})
    );
}

const ZIP_MAIN: &str = r#"import os
from helper import greet
from pkg.sub import VALUE

def main(args):
    return {
        "greeting": greet(args.get("name", "world")),
        "value": VALUE,
        "data": open("data/info.txt").read(),
        "cwd": os.getcwd(),
        "here": os.path.dirname(os.path.abspath(__file__)),
    }

def other(args):
    return {"other": greet("other")}
"#;

fn zip_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("__main__.py", ZIP_MAIN.as_bytes()),
        (
            "helper.py",
            b"def greet(name):\n    return 'Hello, ' + name\n",
        ),
        ("pkg/__init__.py", b""),
        ("pkg/sub.py", b"VALUE = 42\n"),
        ("data/info.txt", b"packed data"),
    ]
}

#[test]
fn zip_with_main_py_imports_its_sibling_modules() {
    let p = python();
    init_binary_ok(&p, &zip(&zip_files()), "main");
    let result = run_ok(&p, json!({"name": "zip"}));
    assert_eq!(result["greeting"], json!("Hello, zip"));
    assert_eq!(result["value"], json!(42));
    assert_eq!(result["data"], json!("packed data"));
    assert_eq!(result["cwd"], result["here"], "{result}");

    // Another function of the same zip.
    let p = python();
    init_binary_ok(&p, &zip(&zip_files()), "other");
    assert_eq!(run_ok(&p, json!({})), json!({"other": "Hello, other"}));
}

#[test]
fn zip_without_main_py_fails_naming_main_py() {
    let p = python();
    let files: Vec<_> = zip_files()
        .into_iter()
        .filter(|(name, _)| *name != "__main__.py")
        .collect();
    let a = p.init_binary(&zip(&files), "main");
    assert_eq!(a.status, 502);
    let error = a.error();
    assert!(error.starts_with(CANNOT_LOCATE), "{error}");
    assert!(error.contains("__main__.py"), "{error}");
    let (_, err) = p.logs_after(1);
    assert!(
        before_first_sentinel(&err).contains("__main__.py"),
        "stderr: {err}"
    );
}

#[test]
fn targz_with_main_py_works_and_keeps_symlinks() {
    let p = python();
    let mut files = zip_files();
    let main = r#"import os
from helper import greet

def main(args):
    return {
        "greeting": greet("tar"),
        "through_link": open("link.txt").read(),
        "is_link": os.path.islink("link.txt"),
    }
"#;
    files[0] = ("__main__.py", main.as_bytes());
    let bytes = targz(&files, &[("link.txt", "data/info.txt")]);
    init_binary_ok(&p, &bytes, "main");
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"greeting": "Hello, tar", "through_link": "packed data", "is_link": true})
    );
}

const VENV_MAIN: &str = r#"import os
import mymod

def main(args):
    link = "virtualenv/bin/python"
    return {
        "value": mymod.VALUE,
        "from": os.path.relpath(os.path.realpath(mymod.__file__)),
        "is_link": os.path.islink(link),
        "target": os.readlink(link) if os.path.islink(link) else None,
    }
"#;

#[test]
fn virtualenv_made_with_python_m_venv_is_activated() {
    require("python3");
    let stage = tempfile::tempdir().unwrap();
    let venv = stage.path().join("virtualenv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "python3 -m venv: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let site = venv
        .join("lib")
        .join(python_version_dir())
        .join("site-packages");
    assert!(site.is_dir(), "no {}", site.display());
    std::fs::write(site.join("mymod.py"), "VALUE = 'from the venv'\n").unwrap();
    std::fs::write(stage.path().join("__main__.py"), VENV_MAIN).unwrap();
    let link = venv.join("bin").join("python");
    let target = std::fs::read_link(&link).expect("venv's bin/python is a symlink");

    let p = python();
    init_binary_ok(&p, &zip_dir(stage.path()), "main");
    let result = run_ok(&p, json!({}));
    assert_eq!(result["value"], json!("from the venv"), "{result}");
    assert!(
        result["from"]
            .as_str()
            .unwrap()
            .starts_with("virtualenv/lib/"),
        "{result}"
    );
    assert_eq!(result["is_link"], json!(true), "{result}");
    assert_eq!(
        result["target"],
        json!(target.to_string_lossy()),
        "{result}"
    );
}

#[test]
fn virtualenv_made_by_hand_is_activated_and_keeps_its_symlink() {
    let site = format!("virtualenv/lib/{}/site-packages", python_version_dir());
    let mymod = format!("{site}/mymod.py");
    let pth = format!("{site}/extra.pth");
    let pthmod = format!("{site}/extra_dir/pthmod.py");
    let main = format!(
        "{VENV_MAIN}\nimport pthmod\n\ndef with_pth(args):\n    return {{'pth': pthmod.VALUE}}\n"
    );
    let bytes = zip_with_symlinks(
        &[
            ("__main__.py", main.as_bytes()),
            (&mymod, b"VALUE = 'made by hand'\n"),
            (&pth, b"extra_dir\n"),
            (&pthmod, b"VALUE = 'through a .pth file'\n"),
        ],
        &[("virtualenv/bin/python", "/usr/bin/python3")],
    );

    let p = python();
    init_binary_ok(&p, &bytes, "main");
    let result = run_ok(&p, json!({}));
    assert_eq!(result["value"], json!("made by hand"), "{result}");
    assert_eq!(result["is_link"], json!(true), "{result}");
    assert_eq!(result["target"], json!("/usr/bin/python3"), "{result}");

    let p = python();
    init_binary_ok(&p, &bytes, "with_pth");
    assert_eq!(run_ok(&p, json!({})), json!({"pth": "through a .pth file"}));
}

#[test]
fn exception_is_200_error_with_traceback_and_the_action_keeps_serving() {
    let code = r#"COUNT = 0

class AppError(Exception):
    pass

def main(args):
    global COUNT
    COUNT += 1
    kind = args.get("raise")
    if kind == "value":
        raise ValueError("bad input: " + args["why"])
    if kind == "key":
        return {}[args["why"]]
    if kind == "custom":
        raise AppError("custom failure")
    return {"count": COUNT}
"#;
    let p = python();
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"count": 1}));
    assert_eq!(
        run_ok(&p, json!({"raise": "value", "why": "x"})),
        json!({"error": "bad input: x"})
    );
    // str(KeyError('k')) is "'k'".
    assert_eq!(
        run_ok(&p, json!({"raise": "key", "why": "k"})),
        json!({"error": "'k'"})
    );
    assert_eq!(
        run_ok(&p, json!({"raise": "custom"})),
        json!({"error": "custom failure"})
    );
    // Same process, same module state: it kept serving.
    assert_eq!(run_ok(&p, json!({})), json!({"count": 5}));

    let (out, err) = p.logs_after(5);
    assert_eq!(count_sentinels(&out), 5, "stdout: {out}");
    assert_eq!(count_sentinels(&err), 5, "stderr: {err}");
    // The traceback of the second activation is in that activation's stderr.
    let second = err.split(&format!("{SENTINEL}\n")).nth(1).unwrap();
    assert!(
        second.contains("Traceback (most recent call last)"),
        "{second}"
    );
    assert!(second.contains("ValueError: bad input: x"), "{second}");
    assert!(err.contains("AppError: custom failure"), "stderr: {err}");
}

#[test]
fn none_result_is_an_empty_object() {
    let code = r#"
def main(args):
    if args.get("explicit"):
        return None
    print("returns nothing")
"#;
    let p = python();
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({"explicit": true})), json!({}));
    assert_eq!(run_ok(&p, json!({})), json!({}));
}

#[test]
fn unserialisable_result_is_502_and_the_action_keeps_serving() {
    let code = r#"COUNT = 0

def main(args):
    global COUNT
    COUNT += 1
    kind = args.get("kind")
    if kind == "set":
        return {"s": {1, 2}}
    if kind == "nan":
        return {"x": float("nan")}
    if kind == "bytes":
        return {"b": b"raw"}
    if kind == "object":
        return {"o": object()}
    return {"count": COUNT}
"#;
    let p = python();
    init_ok(&p, code, "main");
    for kind in ["set", "nan", "bytes", "object"] {
        let a = p.run(json!({ "kind": kind }));
        assert_eq!(a.status, 502, "{kind}: {}", a.json());
        assert!(!a.error().is_empty(), "{kind}");
        assert!(a.json().get("s").is_none());
    }
    assert_eq!(run_ok(&p, json!({})), json!({"count": 5}));
    let (out, err) = p.logs_after(5);
    assert_eq!(count_sentinels(&out), 5, "stdout: {out}");
    assert_eq!(count_sentinels(&err), 5, "stderr: {err}");
}

#[test]
fn non_string_context_values_are_exported_compact_and_never_crash() {
    let code = r#"import os
KEYS = ["DEADLINE", "EXTRA", "FLAG", "NOTHING", "LIST", "NUM", "ACTIVATION_ID"]

def main(args):
    return {k: os.environ.get("__OW_" + k) for k in KEYS}
"#;
    let p = python();
    init_ok(&p, code, "main");
    let body = json!({
        "value": {},
        "deadline": 123,
        "extra": {"a": 1},
        "flag": true,
        "nothing": null,
        "list": [1, "a"],
        "num": 1.5,
        "activation_id": "act-1",
    });
    let a = p.post_json("/run", &body);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
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
    // The loop is still alive.
    let a = p.post_json("/run", &json!({"value": {}, "activation_id": "act-2"}));
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["ACTIVATION_ID"], json!("act-2"));
}

#[test]
fn echo_of_four_values_with_logs_and_exactly_four_sentinels_per_stream() {
    let code = r#"import sys

def main(args):
    print("hello stdout!")
    print("hello stderr!", file=sys.stderr)
    return args
"#;
    let p = python();
    init_ok(&p, code, "main");
    let values = [
        json!({"a": "b"}),
        json!({"n": 1, "f": 2.5, "neg": -3}),
        json!({"nested": {"list": [1, {"x": null}], "t": true}, "empty": {}}),
        json!({}),
    ];
    for value in &values {
        assert_eq!(&run_ok(&p, value.clone()), value);
    }
    let (out, err) = p.logs_after(4);
    // Nothing but the action's lines and the sentinels.
    assert_eq!(out, format!("hello stdout!\n{SENTINEL}\n").repeat(4));
    assert_eq!(err, format!("hello stderr!\n{SENTINEL}\n").repeat(4));
}

#[test]
fn unicode_in_source_params_logs_and_result() {
    let code = r#"# -*- coding: utf-8 -*-
# Grüße aus Köln: 日本語, ☃, 🎉
import sys

GREETING = "Grüße 🎉"

def main(args):
    text = args["text"]
    print("stdout: " + text)
    print("stderr: " + text, file=sys.stderr)
    return {"echo": text, "greeting": GREETING, "länge": len(text), "reversed": text[::-1]}
"#;
    let text = "Ünïcödé ☃ 日本語 🎉 \u{1F600} ñ";
    let p = python();
    init_ok(&p, code, "main");
    let reversed: String = text.chars().rev().collect();
    assert_eq!(
        run_ok(&p, json!({ "text": text })),
        json!({
            "echo": text,
            "greeting": "Grüße 🎉",
            "länge": text.chars().count(),
            "reversed": reversed,
        })
    );
    let (out, err) = p.logs_after(1);
    assert!(
        out.lines().any(|l| l == format!("stdout: {text}")),
        "stdout: {out}"
    );
    assert!(
        err.lines().any(|l| l == format!("stderr: {text}")),
        "stderr: {err}"
    );
}

#[test]
fn activation_context_is_in_the_environment_with_api_host_whole() {
    let api_host = "https://openwhisk.example.org:443/api?a=b=c";
    let p = Proxy::start_with(
        "python",
        &[("__OW_API_HOST", api_host), ("__OW_OTHER_SETTING", "x=y=z")],
        &[],
    );
    let code = r#"import os
KEYS = ["API_HOST", "OTHER_SETTING", "NAMESPACE", "ACTION_NAME", "ACTION_VERSION",
        "ACTIVATION_ID", "TRANSACTION_ID", "API_KEY", "DEADLINE", "VALUE"]

def main(args):
    return {k: os.environ.get("__OW_" + k) for k in KEYS}
"#;
    init_ok(&p, code, "main");
    let context = |activation: &str| {
        json!({
            "value": {"some": "argument"},
            "namespace": "guest",
            "action_name": "/guest/ctx",
            "action_version": "0.0.1",
            "activation_id": activation,
            "transaction_id": "tx-42",
            "api_key": "user:secret==",
            "deadline": "4102444800000",
        })
    };
    for activation in ["0123456789abcdef", "fedcba9876543210"] {
        let a = p.post_json("/run", &context(activation));
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
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
}

#[test]
fn init_env_is_set_before_the_code_loads() {
    let code = r#"import os
KEYS = ["GREETING", "EMPTY", "NUMBER", "OBJECT", "NOTHING", "FLAG", "WITH_EQUALS", "UNICODE"]
AT_IMPORT = {k: os.environ.get(k) for k in KEYS}

def main(args):
    return {"at_import": AT_IMPORT, "at_run": {k: os.environ.get(k) for k in KEYS}}
"#;
    let p = python();
    let a = p.init(json!({
        "code": code,
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
    assert_eq!(a.status, 200, "{}", a.json());
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
        json!({"at_import": expected, "at_run": expected})
    );
}

#[test]
fn init_env_reaches_modules_imported_from_a_zip_and_the_interpreter_itself() {
    // PYTHONPATH only works when it is in the environment before the interpreter starts.
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("extmod.py"),
        "WHERE = 'outside the zip'\n",
    )
    .unwrap();
    let files: [(&str, &[u8]); 2] = [
        (
            "__main__.py",
            b"import config\nimport extmod\n\ndef main(args):\n    return {'mode': config.MODE, 'ext': extmod.WHERE}\n",
        ),
        ("config.py", b"import os\nMODE = os.environ['APP_MODE']\n"),
    ];
    let p = python();
    let a = p.init(json!({
        "code": b64(&zip(&files)),
        "binary": true,
        "main": "main",
        "env": {"APP_MODE": "production", "PYTHONPATH": extra.path().to_str().unwrap()},
    }));
    assert_eq!(a.status, 200, "{} / stderr: {}", a.json(), p.stderr());
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"mode": "production", "ext": "outside the zip"})
    );
}

#[test]
fn one_mib_argument_is_echoed() {
    let p = python();
    init_ok(&p, "def main(args):\n    return args\n", "main");
    let big: String = (0..1024 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let value = json!({"big": big, "tail": "end"});
    let result = run_ok(&p, value.clone());
    assert_eq!(result["big"].as_str().map(str::len), Some(1024 * 1024));
    assert_eq!(result, value);
    // And the action is fine afterwards.
    assert_eq!(run_ok(&p, json!({"small": 1})), json!({"small": 1}));
}

#[test]
fn subprocesses_work_and_inherit_path_and_logs() {
    let code = r#"import os, subprocess

def main(args):
    out = subprocess.check_output(["echo", "from a subprocess"]).decode().strip()
    subprocess.run(["sh", "-c", "echo child stdout line; echo child stderr line >&2"], check=True)
    stdin = subprocess.run(["cat"], capture_output=True, timeout=20).stdout.decode()
    return {"out": out, "stdin": stdin, "path": os.environ.get("PATH"), "home": os.environ.get("HOME")}
"#;
    let p = python();
    init_ok(&p, code, "main");
    let result = run_ok(&p, json!({}));
    assert_eq!(result["out"], json!("from a subprocess"));
    // The action's stdin is not the request channel.
    assert_eq!(result["stdin"], json!(""));
    let path = std::env::var("PATH").unwrap();
    assert!(
        result["path"].as_str().unwrap().contains(&path),
        "{result} vs {path}"
    );
    if let Ok(home) = std::env::var("HOME") {
        assert_eq!(result["home"], json!(home));
    }
    let (out, err) = p.logs_after(1);
    assert!(
        before_first_sentinel(&out).contains("child stdout line"),
        "stdout: {out}"
    );
    assert!(
        before_first_sentinel(&err).contains("child stderr line"),
        "stderr: {err}"
    );
    // Still serving after the subprocesses.
    assert_eq!(run_ok(&p, json!({}))["out"], json!("from a subprocess"));
}

#[test]
fn the_action_runs_in_its_own_folder_under_action() {
    let code = r#"import os

def main(args):
    return {
        "cwd": os.getcwd(),
        "here": os.path.dirname(os.path.abspath(__file__)),
        "sibling": open(os.path.basename(__file__)).read().startswith("import os"),
    }
"#;
    let p = python();
    init_ok(&p, code, "main");
    let result = run_ok(&p, json!({}));
    assert_eq!(result["cwd"], result["here"], "{result}");
    assert_eq!(result["sibling"], json!(true), "{result}");
    let cwd = canonical(Path::new(result["cwd"].as_str().unwrap()));
    let root = canonical(&p.path().join("action"));
    let inside = cwd
        .strip_prefix(&root)
        .unwrap_or_else(|_| panic!("{} is not under {}", cwd.display(), root.display()));
    let first = inside.components().next().expect("a folder below action/");
    assert!(
        first.as_os_str().to_string_lossy().parse::<u64>().is_ok(),
        "{}",
        cwd.display()
    );
}

#[test]
fn interpreter_comes_from_path_or_ow_interpreter() {
    require("python3");
    let real = String::from_utf8(
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let tools = tempfile::tempdir().unwrap();
    let wrapper = |name: &str, mark: &str| {
        let path = tools.path().join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nexport INTERPRETER_MARK={mark}\nexec {real} \"$@\"\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let code =
        "import os\ndef main(args):\n    return {'mark': os.environ.get('INTERPRETER_MARK')}\n";

    wrapper("python3", "from-path");
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let p = Proxy::start_with("python", &[("PATH", &path)], &[]);
    init_ok(&p, code, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"mark": "from-path"}));

    let chosen = wrapper("my-python", "from-ow-interpreter");
    let p = Proxy::start_with(
        "python",
        &[("OW_INTERPRETER", chosen.to_str().unwrap())],
        &[],
    );
    init_ok(&p, code, "main");
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"mark": "from-ow-interpreter"})
    );
}

#[test]
fn base64_source_that_is_not_an_archive_is_a_single_file() {
    let p = python();
    let code = "def main(args):\n    return {'from': 'base64 source'}\n";
    init_binary_ok(&p, code.as_bytes(), "main");
    assert_eq!(run_ok(&p, json!({})), json!({"from": "base64 source"}));
}
