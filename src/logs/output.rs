//! The proxy's stdout and stderr, written without ever blocking the event loop.
//!
//! A container's log driver may read slowly, or stop reading. A blocking write to a full
//! stdout pipe would then freeze the whole proxy: other connections, deadlines, SIGTERM. So
//! each stream writes through a private non-blocking file description (opened through
//! `/proc/self/fd`, which leaves the one shared with the container runtime as it is), keeps
//! in order what the reader cannot take yet, and has one task that writes it out when the
//! stream is writable again. Those who copy a child's output wait while more than
//! [`SOFT_LIMIT`] is queued, which makes the child itself wait on its own pipe: nothing is
//! lost or reordered, and memory stays bounded.
//!
//! The common case costs one `write(2)`: when nothing is queued, bytes go out at once.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use crate::sys;

/// Queued bytes past which copying from children waits for the reader.
pub const SOFT_LIMIT: usize = 1024 * 1024;

/// One of the proxy's two output streams.
pub struct Output {
    fd: RawFd,
    state: Mutex<State>,
    /// Wakes the writer task: something is queued.
    queued: Notify,
    /// Wakes those waiting for room: the queue shrank.
    room: Notify,
    /// How writes reach the stream once [`Output::start`] has run.
    sink: OnceLock<Sink>,
}

enum Sink {
    /// A regular file or /dev/null: writes never wait for a reader.
    Direct,
    /// A pipe, a terminal or a socket, non-blocking and watched for writability.
    Watched(Arc<AsyncFd<OwnedFd>>, Kind),
}

#[derive(Clone, Copy)]
enum Kind {
    /// A private non-blocking description: plain `write(2)`.
    Private,
    /// A socket, which cannot be reopened: `send(2)` with `MSG_DONTWAIT` on the shared one.
    Socket,
}

struct State {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The last byte written or queued did not end a line.
    mid_line: bool,
    /// The stream is gone (nobody will ever read it): bytes are dropped, not kept.
    broken: bool,
}

static STDOUT: Output = Output::new(1);
static STDERR: Output = Output::new(2);

pub fn stdout() -> &'static Output {
    &STDOUT
}

pub fn stderr() -> &'static Output {
    &STDERR
}

impl Output {
    const fn new(fd: RawFd) -> Output {
        Output {
            fd,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                mid_line: false,
                broken: false,
            }),
            queued: Notify::const_new(),
            room: Notify::const_new(),
            sink: OnceLock::new(),
        }
    }

    /// Switches the stream to non-blocking writes and starts its writer task. Runs inside the
    /// runtime, once; until then (and in `-compile`) writes are plain blocking ones.
    pub fn start(&'static self) {
        let sink = match self.open() {
            Ok(sink) => sink,
            Err(e) => {
                // Still correct, only no longer safe from a stalled reader.
                eprintln!("actionloop: fd {} stays blocking: {e}", self.fd);
                Sink::Direct
            }
        };
        if self.sink.set(sink).is_ok()
            && let Some(Sink::Watched(fd, kind)) = self.sink.get()
        {
            let (fd, kind) = (Arc::clone(fd), *kind);
            tokio::spawn(async move { self.write_queued(&fd, kind).await });
        }
    }

    fn open(&self) -> io::Result<Sink> {
        let fd = sys::std_stream(self.fd);
        let kind = File::from(fd.try_clone_to_owned()?).metadata()?.file_type();
        if kind.is_file() || kind.is_char_device() && !is_terminal(fd) {
            return Ok(Sink::Direct);
        }
        let (owned, kind) = if kind.is_socket() {
            (fd.try_clone_to_owned()?, Kind::Socket)
        } else {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(format!("/proc/self/fd/{}", self.fd))?;
            (OwnedFd::from(file), Kind::Private)
        };
        Ok(Sink::Watched(Arc::new(sys::watch_writable(owned)?), kind))
    }

    /// Writes `bytes` after everything queued before, without waiting.
    pub fn push(&self, bytes: &[u8]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        self.push_locked(&mut state, bytes);
    }

    /// Writes `text` on a line of its own (after a line break if the stream is mid-line).
    pub fn line(&self, text: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut line = Vec::with_capacity(text.len() + 2);
        if state.mid_line {
            line.push(b'\n');
        }
        line.extend_from_slice(text.trim_end().as_bytes());
        line.push(b'\n');
        self.push_locked(&mut state, &line);
    }

    fn push_locked(&self, state: &mut State, mut bytes: &[u8]) {
        if bytes.is_empty() || state.broken {
            return;
        }
        state.mid_line = bytes.last() != Some(&b'\n');
        if state.queue.is_empty() {
            match self.write_now(bytes) {
                Ok(n) if n == bytes.len() => return,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    // Nowhere to report a failing stdout; never hold bytes for nobody.
                    state.broken = true;
                    return;
                }
            }
        }
        state.bytes += bytes.len();
        state.queue.push_back(bytes.to_vec());
        self.queued.notify_one();
    }

    /// Whether more than [`SOFT_LIMIT`] waits for the reader.
    pub fn is_full(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.bytes > SOFT_LIMIT)
            .unwrap_or(false)
    }

    /// Waits until no more than [`SOFT_LIMIT`] is queued.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            if !self.is_full() {
                return;
            }
            notified.await;
        }
    }

    /// One write, as the stream takes it now.
    fn write_now(&self, bytes: &[u8]) -> io::Result<usize> {
        match self.sink.get() {
            Some(Sink::Watched(fd, kind)) => write_fd(fd.get_ref().as_fd(), *kind, bytes),
            _ => sys::write_all(self.fd, bytes).map(|()| bytes.len()),
        }
    }

    /// The writer task: whatever is queued, in order, as the stream becomes writable. Bytes
    /// leave the queue only once written, so a push never overtakes them.
    async fn write_queued(&self, fd: &AsyncFd<OwnedFd>, kind: Kind) {
        loop {
            let notified = self.queued.notified();
            if self
                .state
                .lock()
                .map(|s| s.queue.is_empty())
                .unwrap_or(true)
            {
                notified.await;
                continue;
            }
            let Ok(mut ready) = fd.writable().await else {
                return;
            };
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            let before = state.bytes;
            while let Some(front) = state.queue.front_mut() {
                match ready.try_io(|fd| write_fd(fd.get_ref().as_fd(), kind, front)) {
                    Ok(Ok(n)) => {
                        front.drain(..n);
                        if front.is_empty() {
                            state.queue.pop_front();
                        }
                        state.bytes -= n;
                    }
                    Ok(Err(_)) => {
                        state.broken = true;
                        state.queue.clear();
                        state.bytes = 0;
                    }
                    Err(_would_block) => break,
                }
            }
            let shrank = state.bytes < before;
            drop(state);
            if shrank {
                self.room.notify_waiters();
            }
        }
    }

    /// Waits (up to `limit`) until everything queued is written: before the proxy exits.
    pub async fn flush(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.room.notified();
                let empty = self
                    .state
                    .lock()
                    .map(|s| s.queue.is_empty())
                    .unwrap_or(true);
                if empty {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

fn write_fd(fd: BorrowedFd<'_>, kind: Kind, bytes: &[u8]) -> io::Result<usize> {
    sys::write_nonblocking(fd.as_raw_fd(), bytes, matches!(kind, Kind::Socket))
}

fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    use std::io::IsTerminal;
    fd.is_terminal()
}
