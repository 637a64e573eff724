//! The proxy's own processes and the orphans it inherits.
//!
//! In a container the proxy is PID 1, and elsewhere it makes itself a child subreaper: either
//! way every process whose parent dies is handed to it (a subprocess of an action that was
//! killed, a daemon that left its process group with `setsid`). Nobody else will collect their
//! exit status, and unreaped they stay in the process table as zombies, so they are reaped
//! here, and stopped with the proxy.
//!
//! The proxy's own children (actions, compilers, installers) are waited for by whoever
//! started them, and their exit status must reach that waiter, never the reaper. So each is
//! started through [`spawn`], which registers it under the same lock the reaper holds while
//! it reaps: between `fork` and registration the reaper cannot run, and after it, it skips
//! the process.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Mutex, MutexGuard};

use tokio::signal::unix::{SignalKind, signal};

use super::procfs;
use crate::sys;

/// Processes started through [`spawn`] and not yet waited for.
static OURS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn ours() -> MutexGuard<'static, BTreeSet<u32>> {
    OURS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a process that its caller will wait for: `start` forks it (std or tokio), `pid`
/// reads its pid. Its exit status is left to that wait.
pub fn spawn<C>(start: impl FnOnce() -> io::Result<C>, pid: impl Fn(&C) -> u32) -> io::Result<C> {
    let mut ours = ours();
    let child = start()?;
    ours.insert(pid(&child));
    Ok(child)
}

/// The process was waited for: from now on its pid may belong to someone else.
pub fn release(pid: u32) {
    ours().remove(&pid);
}

/// Runs a command to its end with its output captured, as [`std::process::Command::output`]
/// does, with its exit status kept from the reaper. Blocking.
pub fn output(command: &mut std::process::Command) -> io::Result<std::process::Output> {
    use std::process::Stdio;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = spawn(|| command.spawn(), std::process::Child::id)?;
    let pid = child.id();
    let output = child.wait_with_output();
    release(pid);
    output
}

/// Kills every process the proxy started, with their process groups and everything below
/// them, and the orphans it inherited: the proxy is stopping.
pub fn kill_all() {
    let registered: Vec<u32> = ours().iter().copied().collect();
    for pid in registered {
        kill_tree(pid);
    }
    for pid in procfs::descendants(std::process::id(), 10_000) {
        sys::kill(pid);
    }
}

/// Kills `pid`, its process group, and every process below it, including those that left the
/// group. The tree is read first: once the leader is dead its children are no longer its.
pub fn kill_tree(pid: u32) {
    let below = procfs::descendants(pid, 10_000);
    sys::kill_group(pid);
    for pid in below {
        sys::kill(pid);
    }
}

/// Takes in orphans (as PID 1, or as a child subreaper) and reaps them on every SIGCHLD.
pub fn start() {
    if std::process::id() != 1 && !sys::become_subreaper() {
        tracing::warn!("cannot become a child subreaper: orphans will go to init");
    }
    let Ok(mut children) = signal(SignalKind::child()) else {
        tracing::warn!("cannot watch SIGCHLD: orphans will not be reaped");
        return;
    };
    tokio::spawn(async move {
        while children.recv().await.is_some() {
            reap_orphans();
        }
    });
}

/// Reaps every child that has ended and is not one of ours.
fn reap_orphans() {
    let ours = ours();
    let me = std::process::id();
    for pid in procfs::children(me) {
        if ours.contains(&pid) {
            continue;
        }
        if procfs::state(format!("/proc/{pid}/stat").as_ref()) == Some('Z') {
            sys::reap(pid);
        }
    }
}
