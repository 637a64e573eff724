//! A child's stdout and stderr, copied to the proxy's as they come, and framed on request.
//!
//! The invoker reads a container's logs up to a line `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX`
//! on each stream, so every byte the action wrote during an activation must be out before that
//! line. One task per stream copies as data arrives; framing drains what is left in the pipe
//! and queues the sentinel after it. Both hold the same lock, so no byte is copied twice or
//! out of order, and the proxy's [`Output`] keeps that order on the way out.
//!
//! The copies go to the proxy's own streams, or, for the actions a forward server holds, to a
//! [`Capture`] of the action's (see [`Destination`]).

use std::io;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::SENTINEL;
use super::capture::{Buffer, Capture};
use super::output::{self, Output};
use crate::child::pipe::Source;

/// Where a child's output goes, chosen when it is started.
#[derive(Clone, Default)]
pub enum Destination {
    /// The proxy's own stdout and stderr, which the invoker reads.
    #[default]
    Proxy,
    /// Buffers of the action's own, read after each activation.
    Capture(Arc<Capture>),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Destination::Proxy => "Proxy",
            Destination::Capture(_) => "Capture",
        })
    }
}

impl Destination {
    fn stdout(&self) -> Sink {
        match self {
            Destination::Proxy => Sink::Proxy(output::stdout()),
            Destination::Capture(c) => Sink::Kept(Arc::clone(&c.stdout)),
        }
    }

    fn stderr(&self) -> Sink {
        match self {
            Destination::Proxy => Sink::Proxy(output::stderr()),
            Destination::Capture(c) => Sink::Kept(Arc::clone(&c.stderr)),
        }
    }

    /// Ends an activation that had no child: `note` on stderr, then the sentinels.
    pub fn frame_without_child(&self, note: Option<&str>) {
        let (out, err) = (self.stdout(), self.stderr());
        if let Some(note) = note {
            err.line(note);
        }
        out.line(SENTINEL);
        err.line(SENTINEL);
    }
}

/// One stream's destination. The proxy's streams may make the copier wait for their reader;
/// a capture never does.
enum Sink {
    Proxy(&'static Output),
    Kept(Arc<Buffer>),
}

impl Sink {
    fn push(&self, bytes: &[u8]) {
        match self {
            Sink::Proxy(output) => output.push(bytes),
            Sink::Kept(buffer) => buffer.push(bytes),
        }
    }

    fn line(&self, text: &str) {
        match self {
            Sink::Proxy(output) => output.line(text),
            Sink::Kept(buffer) => buffer.line(text),
        }
    }

    fn is_full(&self) -> bool {
        match self {
            Sink::Proxy(output) => output.is_full(),
            Sink::Kept(_) => false,
        }
    }

    async fn room(&self) {
        if let Sink::Proxy(output) = self {
            output.room().await;
        }
    }
}

/// The two pumps of one child.
pub struct ChildLogs {
    stdout: Pump,
    stderr: Pump,
}

impl ChildLogs {
    /// Starts copying the child's streams to `to`.
    pub fn start(stdout: Source, stderr: Source, to: &Destination) -> ChildLogs {
        ChildLogs {
            stdout: Pump::start(stdout, to.stdout()),
            stderr: Pump::start(stderr, to.stderr()),
        }
    }

    /// Everything the child has written so far, then the sentinel on both streams; `note` (why
    /// the activation failed) goes to stderr after the child's own output. The launchers flush
    /// before they answer, so "so far" covers the whole activation. While the proxy's stdout
    /// is not read, this waits for room, until `until`: what the child wrote after that is
    /// dropped and counted, so that an activation past its deadline still ends.
    pub async fn frame(&self, note: Option<&str>, until: Option<Instant>) {
        // Whether each pipe still holds output, asked of the kernel once for both: tokio's
        // readiness may not have caught up with what the child wrote just before its answer.
        let waiting = crate::sys::readable_now([
            self.stdout.source.as_raw_fd(),
            self.stderr.source.as_raw_fd(),
        ]);
        self.stdout.frame(None, until, waiting[0]).await;
        self.stderr.frame(note, until, waiting[1]).await;
    }
}

/// One stream: a task copies data as it arrives; `frame` drains and ends the activation.
struct Pump {
    source: Arc<Source>,
    /// Fixed for the child's life, so it is read without the lock.
    sink: Arc<Sink>,
    copier: Arc<Mutex<Copier>>,
    task: tokio::task::JoinHandle<()>,
}

struct Copier {
    /// The child's end may still write.
    open: bool,
    buf: Vec<u8>,
}

impl Pump {
    fn start(source: Source, sink: Sink) -> Pump {
        let source = Arc::new(source);
        let sink = Arc::new(sink);
        let copier = Arc::new(Mutex::new(Copier {
            open: true,
            buf: vec![0u8; 64 * 1024],
        }));
        let task = tokio::spawn(copy_as_it_comes(
            Arc::clone(&source),
            Arc::clone(&sink),
            Arc::clone(&copier),
        ));
        Pump {
            source,
            sink,
            copier,
            task,
        }
    }

    /// `waiting`: whether the pipe held output when the activation ended.
    async fn frame(&self, note: Option<&str>, until: Option<Instant>, waiting: bool) {
        let mut copier = self.copier.lock().await;
        let output = &*self.sink;
        let mut dropped = 0;
        while copier.open && waiting {
            let keep = dropped == 0 && room_until(output, until).await;
            let n = copier.read(&self.source, output, keep);
            if !keep {
                dropped += n;
            }
            // Less than a buffer's worth: that was all of it (the child is done writing).
            if n < copier.buf.len() {
                break;
            }
        }
        if dropped > 0 {
            output.line(&format!(
                "actionloop: {dropped} bytes of output dropped: the log reader is not keeping up"
            ));
        }
        if let Some(note) = note {
            output.line(note);
        }
        output.line(SENTINEL);
    }
}

/// Waits for room in `output` until `until` (forever without one, unless the proxy is in a
/// hurry to stop); whether there is room.
async fn room_until(output: &Sink, until: Option<Instant>) -> bool {
    if output.is_full() {
        let until = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = output.room() => {}
            _ = until => {}
            _ = super::hurried() => {}
        }
    }
    !output.is_full()
}

impl Drop for Pump {
    fn drop(&mut self) {
        // The child is gone or going: what it left in the pipe still belongs in the logs.
        if let Ok(mut copier) = self.copier.try_lock() {
            while copier.open && copier.read(&self.source, &self.sink, true) > 0 {}
        }
        self.task.abort();
    }
}

impl Copier {
    /// One read of what the pipe holds now, asking the kernel, not tokio's last word; copied
    /// out when `keep`, else dropped. The bytes read; 0 when the pipe is empty or closed.
    fn read(&mut self, source: &Source, output: &Sink, keep: bool) -> usize {
        loop {
            match source.read_now(&mut self.buf) {
                Ok(0) => {
                    self.open = false;
                    return 0;
                }
                Ok(n) => {
                    if keep {
                        output.push(&self.buf[..n]);
                    }
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(_) => {
                    self.open = false;
                    return 0;
                }
            }
        }
    }
}

/// Copies one stream until the child's side closes, pausing while the proxy's own stream is
/// full: the child then waits on its pipe, which is the backpressure a slow reader must cause.
/// A capture is never full.
async fn copy_as_it_comes(source: Arc<Source>, output: Arc<Sink>, copier: Arc<Mutex<Copier>>) {
    loop {
        output.room().await;
        if source.readable().await.is_err() {
            return;
        }
        let mut copier = copier.lock().await;
        // Through tokio, so that its readiness is cleared once the pipe is empty.
        while !output.is_full() {
            let Copier { buf, .. } = &mut *copier;
            match source.try_read(buf) {
                Ok(0) => {
                    copier.open = false;
                    return;
                }
                Ok(n) => output.push(&copier.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    copier.open = false;
                    return;
                }
            }
        }
    }
}
