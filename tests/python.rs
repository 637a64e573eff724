//! Python semantics (SPEC §5), against the real binary and the real `python3`. The canonical
//! runtime cases of the OpenWhisk test suites, shared by the three languages, are in
//! tests/canonical.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn python() -> Proxy {
    require("python3");
    Proxy::python()
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
    init_binary_ok(&p, &Archive::zip().files(&zip_files()).build(), "main");
    let result = run_ok(&p, json!({"name": "zip"}));
    assert_eq!(result["greeting"], json!("Hello, zip"));
    assert_eq!(result["value"], json!(42));
    assert_eq!(result["data"], json!("packed data"));
    assert_eq!(result["cwd"], result["here"], "{result}");

    // Another function of the same zip.
    let p = python();
    init_binary_ok(&p, &Archive::zip().files(&zip_files()).build(), "other");
    assert_eq!(run_ok(&p, json!({})), json!({"other": "Hello, other"}));
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
    let bytes = Archive::targz()
        .files(&files)
        .symlink("link.txt", "data/info.txt")
        .build();
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
    init_binary_ok(&p, &Archive::zip_of_dir(stage.path()), "main");
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
    let bytes = Archive::zip()
        .file("__main__.py", main)
        .file(&mymod, "VALUE = 'made by hand'\n")
        .file(&pth, "extra_dir\n")
        .file(&pthmod, "VALUE = 'through a .pth file'\n")
        .symlink("virtualenv/bin/python", "/usr/bin/python3")
        .build();

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

    let (_, err) = p.framed_logs(5);
    // The traceback of the second activation is in that activation's stderr.
    let second = activations(&err)[1];
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
    p.framed_logs(5);
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
        "code": b64(&Archive::zip().files(&files).build()),
        "binary": true,
        "main": "main",
        "env": {"APP_MODE": "production", "PYTHONPATH": extra.path().to_str().unwrap()},
    }));
    assert_initialised(&p, &a);
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"mode": "production", "ext": "outside the zip"})
    );
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

#[test]
fn python_children_get_allocator_tunables_unless_the_environment_sets_its_own() {
    let code = "import os\ndef main(args):\n    return {'t': os.environ.get('GLIBC_TUNABLES')}\n";
    let tuned = Proxy::python();
    init_ok(&tuned, code, "main");
    let t = run_ok(&tuned, json!({}))["t"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(t.contains("glibc.malloc.mmap_threshold="), "{t}");
    let own = Proxy::start_with(
        "python",
        &[("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")],
        &[],
    );
    init_ok(&own, code, "main");
    assert_eq!(
        run_ok(&own, json!({}))["t"],
        json!("glibc.malloc.arena_max=2")
    );
}
