//! The action's stdout and stderr, copied to the proxy's own, and the sentinel framing.
//!
//! The invoker reads a container's logs up to a line `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX`
//! on each stream. So every byte the action wrote during an activation must be out before
//! that line, and the line must start a line of its own. The child's streams therefore come
//! through pipes that one task per stream owns: it copies as data arrives, remembers whether
//! the last byte ended a line, and on request drains what is left and writes the sentinel.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use tokio::net::unix::pipe;

pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// One of the proxy's own output streams.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Writes straight through: the proxy keeps no log buffer of its own, so memory stays flat
    /// however much an action prints.
    fn write(self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Stream::Stderr => io::stderr().lock().write_all(bytes),
        }
    }
}

/// Writes the sentinel on both streams for an activation that had no child to drain (the
/// proxy itself explained the failure on stderr).
pub fn frame_without_child() {
    let line = format!("{SENTINEL}\n");
    let _ = Stream::Stdout.write(line.as_bytes());
    let _ = Stream::Stderr.write(line.as_bytes());
}

/// A line from the proxy for the activation's logs, e.g. why `/init` failed.
pub fn explain(text: &str) {
    let mut line = text.trim_end().to_string();
    line.push('\n');
    let _ = Stream::Stderr.write(line.as_bytes());
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
        let mut lines = std::mem::take(&mut held.lines);
        if held.dropped > 0 {
            lines.extend_from_slice(
                format!(
                    "actionloop: {} bytes of proxy log lines dropped\n",
                    held.dropped
                )
                .as_bytes(),
            );
            held.dropped = 0;
        }
        if !lines.is_empty() {
            let _ = Stream::Stderr.write(&lines);
        }
    }
}

/// Writes one of the proxy's own log lines to stderr, or holds it while an activation runs.
pub fn proxy_line(bytes: &[u8]) {
    let Ok(mut held) = HELD.lock() else {
        return;
    };
    if held.running == 0 {
        let _ = Stream::Stderr.write(bytes);
    } else if held.lines.len() + bytes.len() <= HOLD_BYTES {
        held.lines.extend_from_slice(bytes);
    } else {
        held.dropped += bytes.len();
    }
}

/// The writer the proxy's `tracing` lines go through: [`proxy_line`] per event.
pub struct ProxyLog;

impl Write for ProxyLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        proxy_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The readable end of a pipe, usable both ways: awaited through tokio, and read at once with
/// a plain system call when we must know what is in it *now*, whatever tokio last saw.
pub struct Source {
    pipe: pipe::Receiver,
    now: File,
}

impl Source {
    pub fn new(fd: OwnedFd) -> io::Result<Source> {
        let now = File::from(fd.try_clone()?);
        // This also makes the shared file description non-blocking, for `now` too.
        let pipe = pipe::Receiver::from_owned_fd(fd)?;
        Ok(Source { pipe, now })
    }

    /// Waits for data and appends it to `buf` (within its spare capacity); `Ok(0)` at end of
    /// file, or when `buf` has no spare capacity.
    pub async fn read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        loop {
            self.pipe.readable().await?;
            match self.pipe.try_read_buf(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// Reads what is there without waiting; `WouldBlock` when nothing is.
    pub fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.now).read(buf)
    }
}

/// The two log pumps of one child.
pub struct Logs {
    stdout: Pump,
    stderr: Pump,
}

impl Logs {
    /// Starts copying the child's streams to the proxy's.
    pub fn start(stdout: Source, stderr: Source) -> Logs {
        Logs {
            stdout: Pump::start(stdout, Stream::Stdout),
            stderr: Pump::start(stderr, Stream::Stderr),
        }
    }

    /// Copies everything the child has written so far, then the sentinel on both streams.
    /// The launchers flush before they answer, so "so far" covers the whole activation.
    /// Done right here, not by the pump tasks: no round trip through the scheduler.
    pub fn frame(&self) {
        self.frame_with(None);
    }

    /// The same, with a line from the proxy (why the activation failed) after the child's own
    /// stderr and before its sentinel.
    pub fn frame_with(&self, note: Option<&str>) {
        self.stdout.frame(None);
        self.stderr.frame(note);
    }
}

/// One stream: a task copies data as it arrives; `frame` drains and ends the activation.
/// Both go through the same [`Copier`], so no byte is copied twice or out of order.
struct Pump {
    source: Arc<Source>,
    copier: Arc<Mutex<Copier>>,
    task: tokio::task::JoinHandle<()>,
}

impl Pump {
    fn start(source: Source, stream: Stream) -> Pump {
        let source = Arc::new(source);
        let copier = Arc::new(Mutex::new(Copier {
            stream,
            mid_line: false,
            open: true,
            buf: vec![0u8; 64 * 1024],
        }));
        let task = tokio::spawn(copy_as_it_comes(Arc::clone(&source), Arc::clone(&copier)));
        Pump {
            source,
            copier,
            task,
        }
    }

    fn frame(&self, note: Option<&str>) {
        if let Ok(mut copier) = self.copier.lock() {
            copier.drain(&self.source);
            if let Some(note) = note {
                copier.note(note);
            }
            copier.sentinel();
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        if let Ok(mut copier) = self.copier.lock() {
            copier.drain(&self.source);
        }
        self.task.abort();
    }
}

/// Copies one stream until the child's side closes.
async fn copy_as_it_comes(source: Arc<Source>, copier: Arc<Mutex<Copier>>) {
    loop {
        if source.pipe.readable().await.is_err() {
            return;
        }
        let Ok(mut copier) = copier.lock() else {
            return;
        };
        // Through tokio, so that its readiness is cleared once the pipe is empty.
        loop {
            let Copier { buf, .. } = &mut *copier;
            match source.pipe.try_read(buf) {
                Ok(0) => {
                    copier.open = false;
                    return;
                }
                Ok(n) => copier.copy_buffered(n),
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

struct Copier {
    stream: Stream,
    /// The last byte written did not end a line.
    mid_line: bool,
    /// The child's end may still write.
    open: bool,
    buf: Vec<u8>,
}

impl Copier {
    /// Writes out the first `n` bytes of the buffer.
    fn copy_buffered(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        // Nowhere to report a failing stdout; keep draining so the child never blocks on us.
        let _ = self.stream.write(&self.buf[..n]);
        self.mid_line = self.buf[n - 1] != b'\n';
    }

    /// Copies whatever is in the pipe right now, asking the kernel, not tokio's last word.
    fn drain(&mut self, source: &Source) {
        while self.open {
            match source.read_now(&mut self.buf) {
                Ok(0) => self.open = false,
                Ok(n) => self.copy_buffered(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// A line of the proxy's own, starting a line of its own.
    fn note(&mut self, text: &str) {
        let start = if self.mid_line { "\n" } else { "" };
        let line = format!("{start}{}\n", text.trim_end());
        let _ = self.stream.write(line.as_bytes());
        self.mid_line = false;
    }

    fn sentinel(&mut self) {
        let line = if self.mid_line {
            format!("\n{SENTINEL}\n")
        } else {
            format!("{SENTINEL}\n")
        };
        let _ = self.stream.write(line.as_bytes());
        self.mid_line = false;
    }
}
