//! The proxy as a container runs it: PID 1 of its own PID namespace (through `unshare`, as
//! root), where it must still start children and must reap the orphans handed to it.

mod common;
use common::*;

use std::time::Duration;

/// The command that makes the proxy PID 1 of a new PID namespace (with its own /proc).
/// `--kill-child`: when the test kills `unshare`, the proxy inside goes too.
const PID_ONE: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// The python proxy as PID 1, with extra environment variables. It logs what it does
/// (`RUST_LOG=info`: when it listens, why it stops), which a failure shows.
fn as_pid_one_with(env: &[(&str, &str)]) -> Proxy {
    let mut all = vec![("RUST_LOG", "info")];
    all.extend_from_slice(env);
    Proxy::start_through(PID_ONE, &all, &["--runtime", "python"])
}

fn as_pid_one() -> Proxy {
    as_pid_one_with(&[])
}

/// The proxy's pid as seen from outside: the child of the `unshare` process.
fn proxy_pid(proxy: &Proxy) -> u32 {
    *procfs::children(proxy.pid())
        .first()
        .expect("unshare has the proxy as its child")
}

/// The proxy's children that are zombies, or (with `sleep`) `sleep` processes.
fn left_over(pid: u32, sleep: bool) -> Vec<procfs::Stat> {
    procfs::children(pid)
        .into_iter()
        .filter_map(procfs::stat)
        .filter(|c| c.state == 'Z' || (sleep && c.comm == "sleep"))
        .collect()
}

/// Waits up to 10 s for the proxy to have no such children; what is left then.
fn wait_left_over(pid: u32, sleep: bool) -> Vec<procfs::Stat> {
    poll(Duration::from_secs(10), || {
        let left = left_over(pid, sleep);
        left.is_empty().then_some(())
    });
    left_over(pid, sleep)
}

#[test]
fn as_pid_one_it_starts_actions_and_answers() {
    let proxy = as_pid_one();
    let code = "import os\ndef main(args):\n    return {'ppid': os.getppid(), 'echo': args['x']}\n";
    init_ok(&proxy, code, "main");
    // Inside the namespace the action's parent is the proxy, PID 1.
    assert_eq!(
        run_ok(&proxy, json!({"x": 5})),
        json!({"ppid": 1, "echo": 5})
    );
}

#[test]
fn as_pid_one_it_reaps_the_orphans_of_a_dead_action() {
    let proxy = as_pid_one();
    let code = "import os, subprocess\n\
                def main(args):\n    \
                    subprocess.Popen(['sleep', '300'])\n    \
                    os._exit(3)\n";
    init_ok(&proxy, code, "main");
    let run = proxy.run(json!({}));
    assert_eq!(run.status, 400);
    assert!(
        run.error().contains("command exited (status 3)"),
        "{}",
        run.error()
    );
    // The `sleep` was orphaned to the proxy and killed with its process group; it must go
    // away entirely, not linger as a zombie.
    let left = wait_left_over(proxy_pid(&proxy), true);
    assert!(left.is_empty(), "orphans left with the proxy: {left:?}");
    // And the action comes back for the next request.
    let again = proxy.run(json!({}));
    assert_eq!(
        again.status, 400,
        "the restarted action exits again the same way"
    );
}

/// A compile script that leaves a background helper behind (it ends a moment later, an orphan
/// for PID 1 to reap) and refuses the code with words of its own.
const REFUSING_COMPILER: &str =
    "#!/bin/bash\n(sleep 0.005 &)\necho \"compiler refuses $1\"\nexit 1\n";

#[test]
fn as_pid_one_every_compile_keeps_its_own_exit_status_and_words() {
    let tools = tempfile::tempdir().unwrap();
    let compiler = tools.path().join("compile");
    std::fs::write(&compiler, REFUSING_COMPILER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&compiler, std::fs::Permissions::from_mode(0o755)).unwrap();
    let proxy = as_pid_one_with(&[("OW_COMPILER", compiler.to_str().unwrap())]);
    let mut connection = proxy.connect();
    for i in 0..1000 {
        let main = format!("main{i}");
        let body = json!({"value": {"code": "source", "main": main}}).to_string();
        let answer = connection.post("/init", body.as_bytes());
        assert_eq!(answer.status, 502, "compile {i}: {}", answer.text());
        let error = answer.error();
        assert!(
            error.ends_with(&format!("compiler refuses {main}")),
            "compile {i}: {error}"
        );
    }
    // And the orphans were reaped, not left as zombies.
    let zombies = wait_left_over(proxy_pid(&proxy), false);
    assert!(zombies.is_empty(), "{zombies:?}");
}

#[test]
fn as_pid_one_sigterm_stops_daemons_that_left_the_process_group() {
    let marker = format!("300.{}7", std::process::id());
    let proxy = as_pid_one();
    let code = format!(
        "import subprocess\ndef main(args):\n    subprocess.Popen(['setsid', 'sleep', '{marker}'])\n    return {{}}\n"
    );
    init_ok(&proxy, &code, "main");
    run_ok(&proxy, json!({}));
    let sleeping = || procfs::sleeping_with(&marker).len();
    poll(Duration::from_secs(5), || (sleeping() > 0).then_some(()));
    assert_eq!(sleeping(), 1, "the daemon did not start");
    kill(proxy_pid(&proxy), "TERM");
    poll(Duration::from_secs(10), || (sleeping() == 0).then_some(()));
    assert_eq!(sleeping(), 0, "the daemon outlived the proxy");
}
