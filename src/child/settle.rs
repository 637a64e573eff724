//! When has a child that owes no ack finished starting?
//!
//! An executable started without `OW_WAIT_FOR_ACK` (the PHP images' `runner.php`, for one)
//! never says it is ready. The Go proxy waits 5 ms and calls it started, so a PHP action
//! with a syntax error, a missing `require` or an `exit` at load time is usually reported
//! at its first `/run` instead of at `/init`, depending on how busy the machine is. Instead
//! the child is watched until it has settled: every thread of every process it started is
//! asleep (waiting for its first request, in practice) and none has run for a few samples.
//! A child that ends first has failed to start. One that never settles (a busy loop, a
//! thread that keeps working) is taken as started once it has had [`LONGEST_CPU`] of CPU time
//! (on a loaded machine that may take much longer than the same wall-clock time, and a start
//! that dies after a busy while must still be seen), or after [`LONGEST`] whatever it did.

use std::time::Duration;

use tokio::time::Instant;

/// The Go proxy's window: no child counts as started sooner.
const SHORTEST: Duration = Duration::from_millis(5);
/// Past this much CPU time, a child that is still busy counts as started.
const LONGEST_CPU: Duration = Duration::from_secs(1);
/// Past this, any child counts as started (one that waits on something other than a read).
const LONGEST: Duration = Duration::from_secs(10);
const SAMPLE: Duration = Duration::from_millis(2);
/// Consecutive quiet samples that make a child settled.
const QUIET_SAMPLES: u32 = 3;

/// Waits until the process tree led by `pid` has settled, has worked for [`LONGEST_CPU`], or
/// for [`LONGEST`].
pub async fn settled(pid: u32) {
    let start = Instant::now();
    let mut last: Option<Sample> = None;
    let mut quiet = 0;
    while start.elapsed() < LONGEST {
        tokio::time::sleep(SAMPLE).await;
        let now = sample(pid);
        if now.is_some_and(|n| n.cpu_ns >= LONGEST_CPU.as_nanos() as u64) {
            return;
        }
        quiet = match (now, last) {
            (Some(now), Some(before)) if now.asleep && now.cpu_ns == before.cpu_ns => quiet + 1,
            _ => 0,
        };
        if quiet >= QUIET_SAMPLES && start.elapsed() >= SHORTEST {
            return;
        }
        last = now;
    }
}

#[derive(Clone, Copy)]
struct Sample {
    /// Time on a CPU of every thread in the tree, in nanoseconds.
    cpu_ns: u64,
    /// Every thread in the tree is in interruptible sleep.
    asleep: bool,
}

/// The tree's state, or `None` when the leader cannot be read (it is gone, or there is no
/// /proc). Processes and threads that end while they are read are left out.
fn sample(pid: u32) -> Option<Sample> {
    let mut total = Sample {
        cpu_ns: 0,
        asleep: true,
    };
    let mut pending = vec![pid];
    let mut seen = 0;
    while let Some(pid) = pending.pop() {
        seen += 1;
        if seen > 4096 {
            break;
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            if seen == 1 {
                return None;
            }
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let (Some(state), Ok(schedstat)) = (
                super::procfs::state(&path.join("stat")),
                std::fs::read_to_string(path.join("schedstat")),
            ) else {
                continue;
            };
            total.asleep &= state == 'S';
            let cpu = schedstat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            total.cpu_ns += cpu.unwrap_or(0);
            if let Ok(children) = std::fs::read_to_string(path.join("children")) {
                pending.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled() {
        let now = sample(std::process::id()).expect("/proc is readable");
        assert!(now.cpu_ns > 0);
        // The test thread itself is running.
        assert!(!now.asleep);
        assert!(sample(u32::MAX).is_none());
    }
}
