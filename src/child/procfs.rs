//! What `/proc` tells about processes: whose children they are, what state they are in.

/// The children of `pid` (of every thread of it), as `/proc` lists them.
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            found.extend(
                list.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    found
}

/// Every descendant of `pid`, parents before their children, at most `limit` of them.
pub fn descendants(pid: u32, limit: usize) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = 0;
    found.extend(children(pid));
    while next < found.len() && found.len() < limit {
        let more = children(found[next]);
        found.extend(more);
        next += 1;
    }
    found.truncate(limit);
    found
}

/// The state letter of a process or thread (`R`, `S`, `D`, `Z`...) from its `stat` file.
pub fn state(stat_path: &std::path::Path) -> Option<char> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The state follows the command name, which is in parentheses and may hold spaces.
    stat.rsplit_once(") ")?.1.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawned_process_is_a_child_and_a_descendant() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        assert!(children(me).contains(&sleeper.id()));
        assert!(descendants(me, 1000).contains(&sleeper.id()));
        let stat = format!("/proc/{}/stat", sleeper.id());
        // Running, sleeping or loading from disk: alive, whichever it is at this moment.
        let now = state(stat.as_ref());
        assert!(matches!(now, Some('S' | 'R' | 'D')), "{now:?}");
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
