//! One action process and its pipes: requests on stdin, answers on file descriptor 3, logs on
//! stdout and stderr (handed to [`crate::logs`]).
//!
//! Every wait on the child also watches for its exit, so a child that dies is noticed at
//! once, at start, during an activation or while it idles.

pub mod pipe;
mod procfs;
pub mod reaper;
mod settle;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe as tokio_pipe;
use tokio::sync::watch;

use crate::logs::{ChildLogs, Destination};
use crate::sys;
use pipe::Source;

/// Requests and answers up to this size cross the pipe in one go.
const PIPE_BYTES: i32 = 1024 * 1024;

/// Requests up to this size are sent with their newline in a single write.
const SMALL_LINE: usize = 64 * 1024;

/// An idle answer buffer larger than this is given back.
const KEEP_BUFFER: usize = 8 * 1024 * 1024;

/// How to start a child.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Added to the proxy's own environment, which the child inherits.
    pub env: Vec<(String, String)>,
    /// Where its stdout and stderr are copied to.
    pub logs: Destination,
}

/// How a child ended, in words for the error body.
#[derive(Debug, Clone)]
pub struct Exit(String);

impl Exit {
    fn from_status(status: io::Result<ExitStatus>) -> Exit {
        let status = match status {
            Ok(status) => status,
            Err(e) => return Exit(format!("unknown status: {e}")),
        };
        if let Some(code) = status.code() {
            return Exit(format!("status {code}"));
        }
        let signal = status.signal().unwrap_or(0);
        let what = match signal {
            libc::SIGKILL => "killed, possibly out of memory",
            libc::SIGSEGV => "segmentation fault",
            libc::SIGABRT => "aborted",
            libc::SIGBUS => "bus error",
            libc::SIGFPE => "arithmetic error",
            libc::SIGILL => "illegal instruction",
            libc::SIGTERM => "terminated",
            libc::SIGINT => "interrupted",
            libc::SIGPIPE => "broken pipe",
            libc::SIGXCPU => "CPU time limit exceeded",
            _ => "killed by a signal",
        };
        Exit(format!("signal {signal}: {what}"))
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What went wrong talking to a child.
#[derive(Debug)]
pub enum ChildError {
    /// The process ended.
    Exited(Exit),
    /// An answer line grew past the limit.
    TooLong(u64),
    /// A pipe failed for another reason.
    Io(io::Error),
}

pub struct Child {
    pid: u32,
    stdin: tokio_pipe::Sender,
    answers: Source,
    /// Bytes read from the answer channel past the last full line. Answers are split off it
    /// without copying; once the answer sent to the client is dropped, its room is reused.
    pending: BytesMut,
    exit: watch::Receiver<Option<Exit>>,
    logs: ChildLogs,
    /// A launcher started with `OW_PRELOAD` writes its preload report before it reads the
    /// init line; until that line is read, it is not the ack's turn.
    pub preload_report_due: bool,
}

impl Child {
    /// Starts the process. Must run on the runtime's thread: the child is tied to the life of
    /// the thread that forks it.
    pub fn spawn(spec: &Spec) -> io::Result<Child> {
        let (stdin_read, stdin_write) = io::pipe()?;
        let (stdout_read, stdout_write) = io::pipe()?;
        let (stderr_read, stderr_write) = io::pipe()?;
        let (answer_read, answer_write) = io::pipe()?;
        sys::grow_pipe(stdin_write.as_raw_fd(), PIPE_BYTES);
        sys::grow_pipe(answer_write.as_raw_fd(), PIPE_BYTES);

        let mut command = std::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .current_dir(&spec.cwd)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(stdin_read))
            .stdout(Stdio::from(stdout_write))
            .stderr(Stdio::from(stderr_write))
            .process_group(0);
        sys::setup_child(&mut command, answer_write.as_raw_fd());
        let mut command = tokio::process::Command::from(command);
        let mut process = reaper::spawn(|| command.spawn(), |p| p.id().unwrap_or(0))?;
        // The child has its copies now; ours must go, or the pipes would never report its end.
        drop(answer_write);
        let pid = process.id().unwrap_or(0);

        let (tell_exit, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = process.wait().await;
            // What the child left running in its group goes with it, now: its pid is free
            // from here on, and a group killed later by that number could be someone else's.
            sys::kill_group(pid);
            reaper::release(pid);
            let _ = tell_exit.send(Some(Exit::from_status(status)));
        });

        Ok(Child {
            pid,
            stdin: tokio_pipe::Sender::from_owned_fd(OwnedFd::from(stdin_write))?,
            answers: Source::new(OwnedFd::from(answer_read))?,
            pending: BytesMut::new(),
            exit,
            logs: ChildLogs::start(
                Source::new(OwnedFd::from(stdout_read))?,
                Source::new(OwnedFd::from(stderr_read))?,
                &spec.logs,
            ),
            preload_report_due: false,
        })
    }

    /// How the child ended, if it has.
    pub fn exited(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    /// Waits until the child (with whatever it started) is idle, waiting for its first
    /// request: for an executable that owes no ack. See [`settle`].
    pub fn settled(&self) -> impl std::future::Future<Output = ()> + use<> {
        settle::settled(self.pid)
    }

    /// Waits until the child ends.
    pub async fn wait_exit(&mut self) -> Exit {
        match self.exit.wait_for(|e| e.is_some()).await {
            Ok(exit) => exit.clone().unwrap_or(Exit("gone".into())),
            Err(_) => Exit("gone".into()),
        }
    }

    /// Sends one request line (the newline is added here).
    pub async fn send(&mut self, line: &[u8]) -> Result<(), ChildError> {
        let stdin = &mut self.stdin;
        let write = async {
            // One write for a small request: the child wakes once, not twice.
            if line.len() <= SMALL_LINE {
                let mut whole = Vec::with_capacity(line.len() + 1);
                whole.extend_from_slice(line);
                whole.push(b'\n');
                stdin.write_all(&whole).await
            } else {
                stdin.write_all(line).await?;
                stdin.write_all(b"\n").await
            }
        };
        let mut exit = self.exit.clone();
        let written = tokio::select! {
            biased;
            written = write => written,
            _ = exit.wait_for(|e| e.is_some()) => return Err(self.exit_error()),
        };
        written.map_err(|e| match self.exited() {
            Some(exit) => ChildError::Exited(exit),
            None => ChildError::Io(e),
        })
    }

    fn exit_error(&self) -> ChildError {
        ChildError::Exited(self.exited().unwrap_or(Exit("gone".into())))
    }

    /// Drops answer lines nobody asked for (an action writing twice, or after a timeout), so
    /// that the next answer read belongs to the next request. `in_pipe`: also what the pipe
    /// holds now (a system call). Our launchers write exactly one line per request, on a
    /// channel no user code can reach, so for them the bytes already read are all there is.
    pub fn discard_stale(&mut self, in_pipe: bool) -> usize {
        let mut dropped = self.pending.len();
        self.pending.clear();
        if in_pipe {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = self.answers.read_now(&mut buf) {
                dropped += n;
            }
        }
        dropped
    }

    /// Reads the next answer line (without its newline), or says why there is none.
    pub async fn answer(&mut self, limit: u64) -> Result<Bytes, ChildError> {
        if self.pending.is_empty() && self.pending.capacity() > KEEP_BUFFER {
            // One huge answer must not pin its buffer for the child's whole life.
            self.pending = BytesMut::new();
        }
        let mut exit = self.exit.clone();
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.pending[scanned..]) {
                let end = scanned + i;
                if end as u64 > limit {
                    return Err(ChildError::TooLong(limit));
                }
                let mut line = self.pending.split_to(end + 1);
                line.truncate(end);
                return Ok(line.freeze());
            }
            scanned = self.pending.len();
            if scanned as u64 > limit {
                return Err(ChildError::TooLong(limit));
            }
            self.pending
                .reserve(scanned.clamp(64 * 1024, 4 * 1024 * 1024));
            let read = tokio::select! {
                biased;
                read = self.answers.read_buf(&mut self.pending) => read,
                _ = exit.wait_for(|e| e.is_some()) => {
                    // It may have answered just before ending: take what the pipe holds.
                    let mut chunk = vec![0u8; 64 * 1024];
                    let n = self.answers.read_now(&mut chunk).unwrap_or(0);
                    self.pending.extend_from_slice(&chunk[..n]);
                    Ok(n)
                }
            };
            match read {
                Ok(0) => return Err(ChildError::Exited(self.wait_exit().await)),
                Ok(_) => {}
                Err(e) => return Err(ChildError::Io(e)),
            }
        }
    }

    /// The child's stdout and stderr, as they are copied to where they go.
    pub fn logs(&self) -> &ChildLogs {
        &self.logs
    }

    /// Kills the child and everything it started, in its process group or out of it.
    /// The group may outlive its leader, so it is killed whether or not the leader has ended.
    pub fn kill(&self) {
        self.kill_unless_ended();
    }

    /// Once the child has ended its group was killed with it (see [`Child::spawn`]), and its
    /// pid may already name another process: then there is nothing left to kill by it.
    fn kill_unless_ended(&self) {
        if self.exited().is_none() {
            reaper::kill_tree(self.pid);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // The group may outlive its leader (a background process the action started).
        self.kill_unless_ended();
    }
}
