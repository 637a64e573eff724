//! The action's logs: the proxy's stdout and stderr, and the sentinel that ends each
//! activation's part of them.
//!
//! - [`output`]: the two streams, written without ever blocking the event loop.
//! - [`pump`]: a child's stdout and stderr, copied as they come and framed on request.
//! - [`capture`]: a child's output kept for its action (the forward server's actions).
//!
//! The proxy's own log lines (`tracing`, and a few fixed lines) are for the same streams, but
//! must never land inside an action's logs: while an activation runs they wait, and follow its
//! sentinel (see [`Activation`]).

pub mod capture;
pub mod output;
pub mod pump;

use std::io;
use std::sync::Mutex;
use std::time::Duration;

pub use capture::Capture;
pub use pump::{ChildLogs, Destination};

use tokio::time::Instant;

use crate::child::Child;

pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Switches both streams to non-blocking writes. Runs once, inside the runtime.
pub fn start() {
    output::stdout().start();
    output::stderr().start();
}

/// Stops waiting for a slow log reader: once the proxy is stopping, an activation's end must
/// not wait for room in a stream nobody may read again; what does not fit is dropped, counted.
pub fn hurry() {
    HURRY.store(true, std::sync::atomic::Ordering::SeqCst);
    HURRIED.notify_waiters();
}

static HURRY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static HURRIED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Resolves once [`hurry`] was called.
async fn hurried() {
    loop {
        let notified = HURRIED.notified();
        if HURRY.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// Gives queued log bytes up to `limit` to leave, before the proxy exits.
pub async fn flush(limit: Duration) {
    output::stdout().flush(limit).await;
    output::stderr().flush(limit).await;
}

/// Ends an activation's logs: what its child wrote (when it had one), then the proxy's
/// explanation (when there is one) on stderr, then the sentinel on each stream, all where
/// the child's output goes (`to`, for an activation without a child). This is the one place
/// where an activation's logs are framed; see [`pump::ChildLogs::frame`] for how long it may
/// wait for a slow log reader (`until`).
pub async fn end_activation(
    to: &Destination,
    child: Option<&Child>,
    note: Option<&str>,
    until: Option<Instant>,
) {
    match child {
        Some(child) => child.logs().frame(note, until).await,
        None => to.frame_without_child(note),
    }
}

/// Ends a forwarded activation's logs (forward mode's client): what the server captured of
/// it on each stream, then the sentinel. The server's own sentinel lines (the fork's server
/// and ours end each stream with one; after a failed run the fork's also carries that run's,
/// since it empties its capture only after a success) are dropped for this one, so that each
/// stream holds exactly one per activation whichever server answered. While a stream's reader
/// is behind, this waits for room first (unless the proxy is in a hurry to stop).
pub async fn end_forwarded(out: &str, err: &str) {
    for (output, text) in [(output::stdout(), out), (output::stderr(), err)] {
        if output.is_full() {
            tokio::select! {
                _ = output.room() => {}
                _ = hurried() => {}
            }
        }
        output.push(without_sentinels(text).as_bytes());
        output.line(SENTINEL);
    }
}

/// `text` without its sentinel lines: lines that are the sentinel and nothing else.
fn without_sentinels(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(SENTINEL) {
        return text.into();
    }
    text.split_inclusive('\n')
        .filter(|line| line.strip_suffix('\n').unwrap_or(line) != SENTINEL)
        .collect::<String>()
        .into()
}

/// Marks an activation (a `/run`, or an `/init` attempt) as running, from its start until its
/// frame is written. While any runs, the proxy's own log lines wait and follow the sentinel,
/// so that even with `-debug` none lands inside an action's logs (SPEC section 4). Held lines
/// are bounded; past the bound they are counted and dropped.
pub struct Activation(());

/// Proxy log bytes held while activations run.
const HOLD_BYTES: usize = 256 * 1024;

struct Held {
    running: usize,
    lines: Vec<u8>,
    dropped: usize,
}

static HELD: Mutex<Held> = Mutex::new(Held {
    running: 0,
    lines: Vec::new(),
    dropped: 0,
});

impl Activation {
    pub fn begin() -> Activation {
        if let Ok(mut held) = HELD.lock() {
            held.running += 1;
        }
        Activation(())
    }

    /// An activation whose logs go `to`: only one on the proxy's own streams holds the
    /// proxy's lines back (a forward server's actions write elsewhere, and one of them runs
    /// nearly all the time).
    pub fn begin_for(to: &Destination) -> Option<Activation> {
        matches!(to, Destination::Proxy).then(Activation::begin)
    }
}

impl Drop for Activation {
    fn drop(&mut self) {
        let Ok(mut held) = HELD.lock() else {
            return;
        };
        held.running = held.running.saturating_sub(1);
        if held.running > 0 {
            return;
        }
        let lines = std::mem::take(&mut held.lines);
        output::stderr().push(&lines);
        if held.dropped > 0 {
            output::stderr().line(&format!(
                "actionloop: {} bytes of proxy log lines dropped",
                held.dropped
            ));
            held.dropped = 0;
        }
    }
}

/// Writes one of the proxy's own log lines to stderr, or holds it while an activation runs.
pub fn proxy_line(bytes: &[u8]) {
    let Ok(mut held) = HELD.lock() else {
        return;
    };
    if held.running == 0 {
        output::stderr().push(bytes);
    } else if held.lines.len() + bytes.len() <= HOLD_BYTES {
        held.lines.extend_from_slice(bytes);
    } else {
        held.dropped += bytes.len();
    }
}

/// The writer the proxy's `tracing` lines go through: [`proxy_line`] per event.
pub struct ProxyLog;

impl io::Write for ProxyLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        proxy_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_activation_loses_every_sentinel_line_of_the_server() {
        let framed = format!("one\ntwo\n{SENTINEL}\n");
        assert_eq!(without_sentinels(&framed), "one\ntwo\n");
        assert_eq!(without_sentinels(&format!("{SENTINEL}\n")), "");
        assert_eq!(without_sentinels(SENTINEL), "");
        assert_eq!(without_sentinels("plain\n"), "plain\n");
        let glued = format!("no line break{SENTINEL}\n");
        assert_eq!(without_sentinels(&glued), glued);
        // The fork's server after a failed run: that run's logs and sentinel come first.
        let twice = format!("failed\n{SENTINEL}\nthis one\n{SENTINEL}\n");
        assert_eq!(without_sentinels(&twice), "failed\nthis one\n");
    }
}
