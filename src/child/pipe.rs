//! The readable end of one of a child's pipes: its answers (fd 3), its stdout, its stderr.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use tokio::net::unix::pipe;

/// Usable both ways: awaited through tokio, and read at once with a plain system call when we
/// must know what is in it *now*, whatever tokio last saw.
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

    /// Waits until there is something to read (or the other end closed).
    pub async fn readable(&self) -> io::Result<()> {
        self.pipe.readable().await
    }

    /// Reads what tokio knows to be there; `WouldBlock` (with tokio's readiness cleared) when
    /// nothing is.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.pipe.try_read(buf)
    }

    /// Waits for data and appends it to `buf` (within its spare capacity); `Ok(0)` at end of
    /// file, or when `buf` has no spare capacity. Through tokio's `AsyncRead`, which forgets
    /// the pipe's readiness after a read that did not fill `buf` (on Linux's edge-triggered
    /// epoll, such a read drained the pipe): the next answer is then awaited in epoll at once,
    /// instead of after a read that could only fail with EAGAIN, one system call per request.
    pub async fn read_buf(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.pipe.read_buf(buf).await
    }

    /// Reads what is there without waiting; `WouldBlock` when nothing is.
    pub fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.now).read(buf)
    }

    pub fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.now.as_raw_fd()
    }
}
