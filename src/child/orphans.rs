//! Reaping orphans when the proxy is PID 1.
//!
//! In a container the proxy is the entrypoint, so every process whose parent dies is handed
//! to it: a subprocess of an action that was killed, for instance. Nobody else will collect
//! their exit status, and unreaped they stay in the process table as zombies. The proxy's own
//! children are left to tokio, which waits for them by pid; only the others are reaped here.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::signal::unix::{SignalKind, signal};

use crate::sys;

/// Children started through [`super::Child::spawn`] and not yet waited for.
static OURS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

pub fn adopt(pid: u32) {
    if let Ok(mut ours) = OURS.lock() {
        ours.insert(pid);
    }
}

pub fn release(pid: u32) {
    if let Ok(mut ours) = OURS.lock() {
        ours.remove(&pid);
    }
}

/// Kills every child still running, with its process group (the proxy is stopping).
pub fn kill_all() {
    let ours = OURS.lock().map(|o| o.clone()).unwrap_or_default();
    for pid in ours {
        sys::kill_group(pid);
    }
}

/// Starts reaping orphans on every SIGCHLD, if this process is PID 1.
pub fn reap_when_init() {
    if std::process::id() != 1 {
        return;
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
    let ours = OURS.lock().map(|o| o.clone()).unwrap_or_default();
    for pid in zombie_children() {
        if !ours.contains(&pid) {
            sys::reap(pid);
        }
    }
}

/// Our children in state Z, from /proc.
fn zombie_children() -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return found;
    };
    for task in tasks.flatten() {
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in list
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state follows the command name, which is in parentheses and may hold spaces.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            if state == Some('Z') {
                found.push(pid);
            }
        }
    }
    found
}
