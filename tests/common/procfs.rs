//! What the tests read about processes from `/proc`: who is whose child, in what state, with
//! what command line and memory. Every function reads afresh; a process that is gone reads as
//! absent, never as an error.

/// The fields of `/proc/<pid>/stat` the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// The command name (`comm`), at most 15 bytes of the program's name.
    pub comm: String,
    /// `R`, `S`, `D`, `Z` (zombie: dead, not yet reaped), `X`...
    pub state: char,
    pub ppid: u32,
}

/// `/proc/<pid>/stat`, if the process is there.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ')'.
    let (head, rest) = text.rsplit_once(')')?;
    let (_, comm) = head.split_once('(')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        comm: comm.to_string(),
        state,
        ppid,
    })
}

/// The state letter, if the process is there.
pub fn state(pid: u32) -> Option<char> {
    stat(pid).map(|s| s.state)
}

/// Any trace of the process, a zombie included: it is gone only once reaped.
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The process is there and not dead: neither a zombie (`Z`) nor dying (`X`).
pub fn running(pid: u32) -> bool {
    state(pid).is_some_and(|s| !matches!(s, 'Z' | 'X'))
}

/// Every process id on the machine (as this PID namespace sees them).
pub fn pids() -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// The processes whose parent is `pid`, found by their `stat` (the `children` files of
/// `/proc/<pid>/task` need a kernel option that not every kernel has).
pub fn children(pid: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// The children of `pid`, their children, and so on.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for child in children(parent) {
            found.push(child);
            next.push(child);
        }
    }
    found
}

/// `pid` and every process below it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    all.extend(descendants(pid));
    all
}

/// The raw command line: words ending in NUL bytes; empty for a zombie or a gone process.
pub fn cmdline(pid: u32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

/// The command line's words.
pub fn argv(pid: u32) -> Vec<String> {
    cmdline(pid)
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// The processes whose command line is exactly `words`.
pub fn with_argv(words: &[&str]) -> Vec<u32> {
    pids().into_iter().filter(|&p| argv(p) == words).collect()
}

/// The running processes (zombies count as gone) whose command line holds `marker`.
pub fn running_with(marker: &str) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&p| String::from_utf8_lossy(&cmdline(p)).contains(marker) && running(p))
        .collect()
}

/// The `sleep` processes of [`running_with`]: a daemon started as `setsid sleep <marker>` once
/// it is settled. While a process execs, its command line reads empty for a moment, so a
/// process seen by its marker before that (as `setsid`) can vanish from a count taken during
/// it; once it is `sleep` with its marker it execs no more, and every later count sees it.
pub fn sleeping_with(marker: &str) -> Vec<u32> {
    running_with(marker)
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|s| s.comm == "sleep"))
        .collect()
}

/// A field of `/proc/<pid>/status` (`State`, `PPid`, `Uid`...), its value trimmed.
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`...), if the process is there.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(pid, field)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One line about a process for a failure message: its command line, state and parent.
pub fn describe(pid: u32) -> String {
    format!(
        "{pid} ({}) state {} parent {}",
        argv(pid).join(" "),
        status_field(pid, "State").unwrap_or_default(),
        status_field(pid, "PPid").unwrap_or_default()
    )
}

/// The inodes of the TCP sockets (IPv4 and IPv6) that listen on `port`, from this network
/// namespace's `/proc/net/tcp*`.
pub fn listeners(port: u16) -> Vec<u64> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some((_, local_port)) = fields.get(1).and_then(|a| a.rsplit_once(':')) else {
                continue;
            };
            let listening = fields.get(3) == Some(&"0A");
            if listening && u16::from_str_radix(local_port, 16) == Ok(port) {
                found.extend(fields.get(9).and_then(|i| i.parse::<u64>().ok()));
            }
        }
    }
    found
}

/// The inodes of the sockets `pid` holds open.
pub fn sockets(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?;
            inode.parse().ok()
        })
        .collect()
}

/// The processes, anywhere on the machine, that hold a socket listening on `port`.
pub fn listening_on(port: u16) -> Vec<u32> {
    let wanted = listeners(port);
    if wanted.is_empty() {
        return Vec::new();
    }
    pids()
        .into_iter()
        .filter(|&p| sockets(p).iter().any(|i| wanted.contains(i)))
        .collect()
}
