//! `OW_PRELOAD`: modules the prewarmed interpreter loads before any code arrives, so that an
//! action importing them pays nothing at its cold start. Visible (already loaded when the
//! action's code runs), harmless (a missing one never fails `/init`, nothing lands in the
//! activations' logs, nothing lands in the action's namespace).

mod common;

use std::path::Path;

use common::*;

/// A proxy whose folder is prepared first (the interpreter is prewarmed as the proxy starts).
fn proxy_in(dir: tempfile::TempDir, runtime: &str, env: &[(&str, &str)]) -> Proxy {
    Proxy::start_as(Options {
        dir: Some(dir),
        env,
        args: &["--runtime", runtime],
        ..Options::default()
    })
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A Python module on `PYTHONPATH` that prints at import: preloading must keep that out of
/// the logs.
fn noisy_python_module(dir: &Path) -> String {
    let lib = dir.join("pylib");
    write(
        &lib.join("noisy_preload.py"),
        "print('noise from an import')\nVALUE = 42\n",
    );
    lib.to_str().unwrap().to_string()
}

const PYTHON_ACTION: &str = r#"import sys
LOADED_AT_IMPORT = "noisy_preload" in sys.modules and "decimal" in sys.modules
IN_NAMESPACE = "noisy_preload" in globals() or "decimal" in globals()
def main(args):
    import noisy_preload
    print("the action speaks")
    return {"loaded": LOADED_AT_IMPORT, "injected": IN_NAMESPACE, "value": noisy_preload.VALUE}
"#;

#[test]
fn python_modules_are_loaded_before_the_code_and_nothing_else_changes() {
    let settings: [&[(&str, &str)]; 3] = [&[], &[("OW_PREWARM", "0")], &[("OW_CONCURRENCY", "2")]];
    for extra in settings {
        let dir = tempfile::tempdir().unwrap();
        let pythonpath = noisy_python_module(dir.path());
        let mut env = vec![
            ("OW_PRELOAD", "decimal, noisy_preload"),
            ("PYTHONPATH", pythonpath.as_str()),
        ];
        env.extend_from_slice(extra);
        let p = proxy_in(dir, "python", &env);
        init_ok(&p, PYTHON_ACTION, "main");
        for _ in 0..2 {
            assert_eq!(
                run_ok(&p, json!({})),
                json!({"loaded": true, "injected": false, "value": 42}),
                "{extra:?}"
            );
        }
        let (out, err) = p.framed_logs(2);
        assert!(
            !out.contains("noise") && !err.contains("noise"),
            "{extra:?}: {out}{err}"
        );
        assert_eq!(
            out,
            format!("the action speaks\n{SENTINEL}\n").repeat(2),
            "{extra:?}"
        );
    }
}

#[test]
fn a_module_that_cannot_be_preloaded_is_logged_once_and_init_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = proxy_in(
        dir,
        "python",
        &[
            ("OW_PRELOAD", "no_such_module_for_preload,decimal"),
            ("OW_CONCURRENCY", "2"),
        ],
    );
    init_ok(
        &p,
        "import sys\nHAS = 'decimal' in sys.modules\ndef main(a):\n    return {'decimal': HAS}\n",
        "main",
    );
    assert_eq!(run_ok(&p, json!({})), json!({"decimal": true}));
    let (_, err) = p.framed_logs(1);
    let said = err
        .matches("cannot preload no_such_module_for_preload")
        .count();
    assert_eq!(said, 1, "logged once, whatever the pool size: {err}");
    // Outside the activation's frame: before the first sentinel there is only the preload line.
    assert!(
        before_first_sentinel(&err)
            .lines()
            .all(|l| l.contains("preload")),
        "{err}"
    );
}

#[test]
fn node_packages_are_in_the_require_cache_before_the_code_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Where the image keeps its packages: above the action folders, as Node's lookup finds it.
    write(
        &dir.path().join("node_modules/preloaded-pkg/index.js"),
        "console.log('noise from a require');\nmodule.exports = { value: 7 };\n",
    );
    write(
        &dir.path().join("node_modules/preloaded-pkg/package.json"),
        r#"{"name": "preloaded-pkg", "version": "1.0.0", "main": "index.js"}"#,
    );
    let p = proxy_in(
        dir,
        "nodejs",
        &[("OW_PRELOAD", "preloaded-pkg,missing-pkg-for-preload")],
    );
    let code = r#"const cached = Object.keys(require.cache).some((k) => k.includes('preloaded-pkg'));
function main() {
  const pkg = require('preloaded-pkg');
  console.log('the action speaks');
  return { cached, value: pkg.value, global: typeof globalThis.value };
}
"#;
    init_ok(&p, code, "main");
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"cached": true, "value": 7, "global": "undefined"})
    );
    let (out, err) = p.framed_logs(1);
    assert_eq!(out, format!("the action speaks\n{SENTINEL}\n"));
    assert_eq!(
        err.matches("cannot preload missing-pkg-for-preload")
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn php_files_are_included_before_the_code_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warm.php");
    write(
        &file,
        "<?php\necho \"noise from an include\\n\";\nfunction preloaded_helper() { return 'warm'; }\n$local_of_the_preload = 1;\n",
    );
    let preload = format!("{},/no/such/file.php", file.display());
    let p = proxy_in(dir, "php", &[("OW_PRELOAD", &preload)]);
    let code = r#"<?php
$had = function_exists('preloaded_helper');
function main(array $args): array {
    global $had;
    echo "the action speaks\n";
    return ['had' => $had, 'says' => preloaded_helper(), 'leaked' => isset($GLOBALS['local_of_the_preload'])];
}
"#;
    init_ok(&p, code, "main");
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"had": true, "says": "warm", "leaked": false})
    );
    let (out, err) = p.framed_logs(1);
    assert_eq!(out, format!("the action speaks\n{SENTINEL}\n"));
    assert_eq!(
        err.matches("cannot preload /no/such/file.php").count(),
        1,
        "{err}"
    );
}
