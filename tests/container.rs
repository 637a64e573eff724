//! The proxy as a container runs it: PID 1 of its own PID namespace (through `unshare`, as
//! root), where it must still start children and must reap the orphans handed to it.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// Starts the proxy as PID 1 of a new PID namespace (with its own /proc). `--kill-child`: when
/// the test kills `unshare`, the proxy inside goes too.
fn as_pid_one() -> Proxy {
    Proxy::launch(
        &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"],
        &[],
        &["--runtime", "python"],
    )
}

/// The proxy's pid as seen from outside: the child of the `unshare` process.
fn proxy_pid(proxy: &Proxy) -> u32 {
    let unshare = proxy.pid();
    let list = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap();
    list.split_whitespace()
        .next()
        .expect("unshare has the proxy as its child")
        .parse()
        .unwrap()
}

/// The proxy's children as (pid, state letter, command name).
fn children(pid: u32) -> Vec<(u32, char, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in list
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if let Some((head, rest)) = stat.rsplit_once(") ") {
                let name = head.split_once(" (").map_or("", |(_, n)| n).to_string();
                found.push((child, rest.chars().next().unwrap_or('?'), name));
            }
        }
    }
    found
}

#[test]
fn as_pid_one_it_starts_actions_and_answers() {
    let proxy = as_pid_one();
    let code = "import os\ndef main(args):\n    return {'ppid': os.getppid(), 'echo': args['x']}\n";
    let init = proxy.init_code(code, "main");
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let run = proxy.run(json!({"x": 5}));
    assert_eq!(run.status, 200);
    // Inside the namespace the action's parent is the proxy, PID 1.
    assert_eq!(run.json(), json!({"ppid": 1, "echo": 5}));
}

#[test]
fn as_pid_one_it_reaps_the_orphans_of_a_dead_action() {
    let proxy = as_pid_one();
    let code = "import os, subprocess\n\
                def main(args):\n    \
                    subprocess.Popen(['sleep', '300'])\n    \
                    os._exit(3)\n";
    assert_eq!(proxy.init_code(code, "main").status, 200);
    let run = proxy.run(json!({}));
    assert_eq!(run.status, 400);
    assert!(
        run.error().contains("command exited (status 3)"),
        "{}",
        run.error()
    );
    // The `sleep` was orphaned to the proxy and killed with its process group; it must go
    // away entirely, not linger as a zombie.
    let pid = proxy_pid(&proxy);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left;
    loop {
        left = children(pid)
            .into_iter()
            .filter(|(_, state, name)| *state == 'Z' || name == "sleep")
            .collect::<Vec<_>>();
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let proxy = Proxy::launch(
        &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"],
        &[("OW_COMPILER", compiler.to_str().unwrap())],
        &["--runtime", "python"],
    );
    let mut connection = proxy.connect();
    for i in 0..1000 {
        let main = format!("main{i}");
        let body = json!({"value": {"code": "source", "main": main}}).to_string();
        let answer = connection.post("/init", body.as_bytes());
        assert_eq!(
            answer.status,
            502,
            "compile {i}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let error = answer.error();
        assert!(
            error.ends_with(&format!("compiler refuses {main}")),
            "compile {i}: {error}"
        );
    }
    // And the orphans were reaped, not left as zombies.
    let pid = proxy_pid(&proxy);
    let deadline = Instant::now() + Duration::from_secs(10);
    while children(pid).iter().any(|(_, state, _)| *state == 'Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let zombies: Vec<_> = children(pid)
        .into_iter()
        .filter(|(_, s, _)| *s == 'Z')
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
}

#[test]
fn as_pid_one_sigterm_stops_daemons_that_left_the_process_group() {
    let marker = format!("300.{}7", std::process::id());
    let proxy = as_pid_one();
    let code = format!(
        "import subprocess\ndef main(args):\n    subprocess.Popen(['setsid', 'sleep', '{marker}'])\n    return {{}}\n"
    );
    assert_eq!(proxy.init_code(&code, "main").status, 200);
    assert_eq!(proxy.run(json!({})).status, 200);
    let sleeping = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains(&marker)
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeping() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sleeping(), 1, "the daemon did not start");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &proxy_pid(&proxy).to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeping() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sleeping(), 0, "the daemon outlived the proxy");
}
