//! Dependencies installed at `/init`: an archive that declares them and does not bundle them
//! (`requirements.txt` without `virtualenv/`, `package.json` dependencies without
//! `node_modules/`, `composer.json` without `vendor/`) gets them from the image's own tools,
//! from local artefacts here (no network). The installer's words are in the attempt's logs;
//! a failure names the installer and its last line; `OW_ENABLE_INIT_INSTALL=false` opts out;
//! a slow install is stopped.

mod common;

use std::path::Path;

use common::*;

/// pip, offline: only the wheels in `wheels`.
fn offline_pip(wheels: &Path) -> Vec<(String, String)> {
    vec![
        ("PIP_NO_INDEX".into(), "1".into()),
        ("PIP_FIND_LINKS".into(), wheels.to_str().unwrap().into()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
    ]
}

fn start(runtime: &str, env: &[(String, String)]) -> Proxy {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Proxy::start_with(runtime, &env, &[])
}

const PYTHON_MAIN: &[u8] =
    b"import actionloop_initdep\ndef main(args):\n    return {'dep': actionloop_initdep.VALUE}\n";

#[test]
fn python_requirements_are_installed_from_a_local_wheel() {
    let wheels = tempfile::tempdir().unwrap();
    local_wheel(wheels.path(), "actionloop_initdep", "from-a-local-wheel");
    let p = start("python", &offline_pip(wheels.path()));
    let archive = Archive::zip()
        .files(&[
            ("__main__.py", PYTHON_MAIN),
            ("requirements.txt", b"actionloop-initdep==0.1\n"),
        ])
        .build();
    init_binary_ok(&p, &archive, "main");
    assert_eq!(run_ok(&p, json!({})), json!({"dep": "from-a-local-wheel"}));
    // pip's words went to the logs, before the first activation's sentinel.
    let (_, err) = p.framed_logs(1);
    assert!(
        before_first_sentinel(&err).contains("actionloop-initdep"),
        "{err}"
    );
}

#[test]
fn a_failing_install_is_a_502_naming_the_installer_and_its_last_line() {
    let wheels = tempfile::tempdir().unwrap();
    let p = start("python", &offline_pip(wheels.path()));
    let archive = Archive::zip()
        .files(&[
            ("__main__.py", PYTHON_MAIN),
            ("requirements.txt", b"no-such-package-for-actionloop==9.9\n"),
        ])
        .build();
    let init = p.init_binary(&archive, "main");
    assert_eq!(init.status, 502, "{}", String::from_utf8_lossy(&init.body));
    let error = init.error();
    assert!(error.starts_with(CANNOT_LOCATE), "{error}");
    assert!(
        error.contains("installing the dependencies failed") && error.contains("pip"),
        "{error}"
    );
    assert!(error.contains("no-such-package-for-actionloop"), "{error}");
    let (_, err) = p.framed_logs(1);
    assert!(
        before_first_sentinel(&err).contains("No matching distribution"),
        "{err}"
    );
    // The attempt does not count, and its half-installed files are gone.
    assert!(
        std::fs::read_dir(p.path().join("action"))
            .unwrap()
            .all(|e| {
                let name = e.unwrap().file_name();
                name.to_string_lossy().parse::<u32>().is_err()
            })
    );
}

#[test]
fn with_init_install_off_the_dependencies_are_not_installed() {
    let wheels = tempfile::tempdir().unwrap();
    local_wheel(wheels.path(), "actionloop_initdep", "from-a-local-wheel");
    let mut env = offline_pip(wheels.path());
    env.push(("OW_ENABLE_INIT_INSTALL".into(), "false".into()));
    let p = start("python", &env);
    let archive = Archive::zip()
        .files(&[
            ("__main__.py", PYTHON_MAIN),
            ("requirements.txt", b"actionloop-initdep==0.1\n"),
        ])
        .build();
    let init = p.init_binary(&archive, "main");
    assert_eq!(init.status, 502);
    assert!(
        init.error()
            .contains("No module named 'actionloop_initdep'"),
        "{}",
        init.error()
    );
}

/// A package.json whose one dependency is a tarball inside the archive, which npm installs
/// without a registry.
fn node_package(extra_scripts: &str) -> Vec<u8> {
    let dep = Archive::targz()
        .file(
            "package/package.json",
            r#"{"name": "initdep", "version": "1.0.0", "main": "index.js"}"#,
        )
        .file(
            "package/index.js",
            "module.exports = { value: 'from-a-local-tarball' };\n",
        )
        .build();
    let manifest = format!(
        r#"{{"name": "act", "version": "1.0.0", "main": "index.js", "dependencies": {{"initdep": "file:./initdep-1.0.0.tgz"}}{extra_scripts}}}"#
    );
    Archive::zip()
        .files(&[
            ("package.json", manifest.as_bytes()),
            ("initdep-1.0.0.tgz", &dep),
            (
                "index.js",
                b"const dep = require('initdep');\nexports.main = () => ({ dep: dep.value });\n",
            ),
        ])
        .build()
}

fn offline_npm(cache: &Path) -> Vec<(String, String)> {
    vec![
        ("npm_config_offline".into(), "true".into()),
        ("npm_config_cache".into(), cache.to_str().unwrap().into()),
        ("npm_config_update_notifier".into(), "false".into()),
    ]
}

#[test]
fn node_dependencies_are_installed_from_a_local_tarball() {
    let cache = tempfile::tempdir().unwrap();
    let p = start("nodejs", &offline_npm(cache.path()));
    init_binary_ok(&p, &node_package(""), "main");
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"dep": "from-a-local-tarball"})
    );
}

#[test]
fn a_slow_install_is_stopped_at_its_limit() {
    let cache = tempfile::tempdir().unwrap();
    let mut env = offline_npm(cache.path());
    env.push(("OW_INIT_INSTALL_TIMEOUT_SECONDS".into(), "1".into()));
    let p = start("nodejs", &env);
    // npm runs the package's own preinstall script: here, one that takes far too long.
    let slow = node_package(r#", "scripts": {"preinstall": "sleep 30"}"#);
    let started = std::time::Instant::now();
    let init = p.init_binary(&slow, "main");
    assert_eq!(init.status, 502, "{}", String::from_utf8_lossy(&init.body));
    assert!(
        init.error().contains("OW_INIT_INSTALL_TIMEOUT_SECONDS"),
        "{}",
        init.error()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "it was not stopped"
    );
    p.framed_logs(1);
}

#[test]
fn php_dependencies_are_installed_from_a_path_repository() {
    let p = Proxy::start_with(
        "php",
        &[("COMPOSER_HOME", "/tmp/actionloop-test-composer")],
        &[],
    );
    let manifest = br#"{
  "repositories": [{"type": "path", "url": "lib/initdep", "options": {"symlink": false}}, {"packagist.org": false}],
  "require": {"acme/initdep": "*"}
}"#;
    let dep_manifest =
        br#"{"name": "acme/initdep", "version": "1.0.0", "autoload": {"files": ["initdep.php"]}}"#;
    let archive = Archive::zip()
        .files(&[
            ("composer.json", manifest),
            ("lib/initdep/composer.json", dep_manifest),
            (
                "lib/initdep/initdep.php",
                b"<?php\nfunction initdep_value() { return 'from-a-path-repository'; }\n",
            ),
            (
                "index.php",
                b"<?php\nfunction main(array $a): array { return ['dep' => initdep_value()]; }\n",
            ),
        ])
        .build();
    init_binary_ok(&p, &archive, "main");
    assert_eq!(
        run_ok(&p, json!({})),
        json!({"dep": "from-a-path-repository"})
    );
}
