//! The few system calls std does not wrap. Each `unsafe` block is one call, explained.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arranges for `fd` to be the child's file descriptor 3 (the ActionLoop answer channel), and
/// for the child to be killed if the proxy dies first, so no interpreter outlives it.
pub fn setup_child(command: &mut Command, fd: RawFd) {
    // Compared after prctl below: as PID 1 in a container, a parent of 1 is no proof of death.
    let proxy = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (dup2, fcntl, prctl, getppid) on values copied into it.
    unsafe {
        command.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself keeps close-on-exec set: clear it by hand.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The proxy may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != proxy {
                return Err(io::Error::other("the proxy is gone"));
            }
            Ok(())
        });
    }
}

/// A pid that names one process we may kill. 0 and 1 never do: `kill(0)` and `kill(-0)` would
/// address the proxy's own process group, `kill(-1)` every process we may signal, and 1 is
/// init (or the proxy itself); a pid that was never known must not turn into one of those.
fn addressable(pid: u32) -> Option<libc::pid_t> {
    libc::pid_t::try_from(pid).ok().filter(|&pid| pid > 1)
}

/// Kills the whole process group led by `pid` (the child and whatever it started).
pub fn kill_group(pid: u32) {
    let Some(pid) = addressable(pid) else {
        return;
    };
    // SAFETY: kill has no memory effects; a negative pid addresses the process group, which
    // the child leads because it was spawned with `process_group(0)`.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Grows a pipe's buffer (Linux allows up to 1 MiB unprivileged), so that a large request or
/// answer crosses in a few system calls instead of hundreds of 64 KiB round trips.
pub fn grow_pipe(fd: RawFd, bytes: i32) {
    // SAFETY: F_SETPIPE_SZ only resizes the kernel buffer of a pipe we own; failure is harmless.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes);
    }
}

/// Collects the exit status of `pid` if it has ended, without waiting.
pub fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    // SAFETY: waitpid writes only into the local `status`; WNOHANG never blocks.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

/// One write of `bytes` to `fd` that never waits: a `send(2)` with `MSG_DONTWAIT` for a
/// socket (whose description is shared and stays blocking), a `write(2)` otherwise (the
/// caller opened `fd` non-blocking). `WouldBlock` when the reader is behind.
pub fn write_nonblocking(fd: RawFd, bytes: &[u8], socket: bool) -> io::Result<usize> {
    loop {
        // SAFETY: the kernel reads at most `bytes.len()` bytes from a live slice; the flags
        // keep a closed reader from raising SIGPIPE.
        let n = unsafe {
            if socket {
                libc::send(
                    fd,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            } else {
                libc::write(fd, bytes.as_ptr().cast(), bytes.len())
            }
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes all of `bytes` to `fd`, waiting as long as it takes: for a regular file, or before
/// the non-blocking streams are set up.
pub fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: as in `write_nonblocking`.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// The proxy's own stdout (1) or stderr (2), which stay open for the life of the process.
pub fn std_stream(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    assert!(fd == 1 || fd == 2, "not a standard stream: {fd}");
    // SAFETY: fd 1 and fd 2 are open from start to exit; nothing in the proxy closes them.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Watches `fd` for writability through tokio's reactor. Must run inside the runtime.
pub fn watch_writable(
    fd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an OwnedFd is open, and refers to the same description, until it is dropped,
    // which only the AsyncFd that now owns it can do.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::WRITABLE) }
        .map_err(io::Error::from)
}

/// Kills one process.
pub fn kill(pid: u32) {
    let Some(pid) = addressable(pid) else {
        return;
    };
    // SAFETY: kill has no memory effects; a pid that is gone makes it fail harmlessly.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Makes the proxy the parent of orphaned descendants (PR_SET_CHILD_SUBREAPER), as PID 1 is.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with this option only sets a flag of the calling process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Which of two pipes hold something to read right now, in one system call (`poll` with no
/// timeout). An error counts as readable: the reader then finds out what it is.
pub fn readable_now(fds: [RawFd; 2]) -> [bool; 2] {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: poll writes only the `revents` of the two entries of the local array.
    let n = unsafe { libc::poll(polled.as_mut_ptr(), 2, 0) };
    if n < 0 {
        return [true, true];
    }
    polled.map(|p| p.revents != 0)
}
