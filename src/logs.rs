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

use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

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

    /// Waits for data; `Ok(0)` at end of file.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.pipe.readable().await?;
            match self.pipe.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
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
    stdout: mpsc::UnboundedSender<oneshot::Sender<()>>,
    stderr: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl Logs {
    /// Starts copying the child's streams to the proxy's.
    pub fn start(stdout: Source, stderr: Source) -> Logs {
        Logs {
            stdout: spawn_pump(stdout, Stream::Stdout),
            stderr: spawn_pump(stderr, Stream::Stderr),
        }
    }

    /// Copies everything the child has written so far, then the sentinel on both streams.
    /// The launchers flush before they answer, so "so far" covers the whole activation.
    pub async fn frame(&self) {
        let (out_done, out_wait) = oneshot::channel();
        let (err_done, err_wait) = oneshot::channel();
        let out_sent = self.stdout.send(out_done).is_ok();
        let err_sent = self.stderr.send(err_done).is_ok();
        if out_sent {
            let _ = out_wait.await;
        }
        if err_sent {
            let _ = err_wait.await;
        }
    }
}

fn spawn_pump(source: Source, stream: Stream) -> mpsc::UnboundedSender<oneshot::Sender<()>> {
    let (requests, receiver) = mpsc::unbounded_channel();
    tokio::spawn(pump(source, stream, receiver));
    requests
}

/// Copies one stream until the child's side closes, serving sentinel requests all along.
async fn pump(
    source: Source,
    stream: Stream,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut copier = Copier {
        stream,
        mid_line: false,
        open: true,
    };
    loop {
        tokio::select! {
            biased;
            request = requests.recv() => {
                copier.drain(&source, &mut buf);
                let Some(done) = request else { return };
                copier.sentinel();
                let _ = done.send(());
            }
            read = source.read(&mut buf), if copier.open => match read {
                Ok(0) | Err(_) => copier.open = false,
                Ok(n) => copier.copy(&buf[..n]),
            },
        }
    }
}

struct Copier {
    stream: Stream,
    /// The last byte written did not end a line.
    mid_line: bool,
    /// The child's end may still write.
    open: bool,
}

impl Copier {
    fn copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // Nowhere to report a failing stdout; keep draining so the child never blocks on us.
        let _ = self.stream.write(bytes);
        self.mid_line = bytes.last() != Some(&b'\n');
    }

    /// Copies whatever is in the pipe right now.
    fn drain(&mut self, source: &Source, buf: &mut [u8]) {
        while self.open {
            match source.read_now(buf) {
                Ok(0) => self.open = false,
                Ok(n) => self.copy(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
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
