//! The physical floors `make bench` measures the proxy against (bench/), in std only.
//!
//! - `hop [--echo] [--threads N]`: a minimal HTTP/1.1 server on an ephemeral loopback port. It
//!   prints `port N` on stdout once it listens, then answers every request with
//!   `{"ok":true}` (or, with `--echo`, with the request's own body), always with a
//!   `Content-Length`, keeping the connection open until the client closes it (or asks with
//!   `Connection: close`). No routing, no parsing beyond the head's end and `Content-Length`:
//!   what is left of an HTTP exchange when the proxy's work is taken out.
//! - `hop --pipe`: copies stdin to file descriptor 3 as it comes, the shape of the ActionLoop
//!   pipes with no interpreter behind them: the cost of driving two pipes.
//!
//! N threads (8 by default) block in `accept` on the one socket, so neither a spawn nor a
//! hand-over between threads lands on a request; one connection keeps its thread until it
//! closes. Built by `cargo build --release --examples`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The answer without `--echo`.
const FIXED: &[u8] = br#"{"ok":true}"#;
/// What one read may bring while the head is still incomplete; a longer head is refused.
const HEAD_BUFFER: usize = 64 * 1024;
/// The answer to a longer head.
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn main() {
    let mut echo = false;
    let mut pipe = false;
    let mut threads = 8usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--echo" => echo = true,
            "--pipe" => pipe = true,
            "--threads" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => threads = n,
                _ => fail("--threads needs a positive number"),
            },
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    if pipe {
        if let Err(e) = copy_pipe() {
            fail(&format!("pipe: {e}"));
        }
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("port {port}");
    io::stdout().flush().ok();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let listener = listener
                .try_clone()
                .unwrap_or_else(|e| fail(&format!("clone: {e}")));
            std::thread::spawn(move || {
                loop {
                    if let Ok((stream, _)) = listener.accept() {
                        // A connection that breaks only ends itself.
                        let _ = serve(stream, echo);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("hop: {message}");
    std::process::exit(2);
}

/// Answers the requests of one connection until it closes.
fn serve(mut stream: TcpStream, echo: bool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; HEAD_BUFFER];
    let mut have = 0;
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf[..have], b"\r\n\r\n") {
                break i + 4;
            }
            if have >= HEAD_BUFFER {
                stream.write_all(TOO_LARGE)?;
                return Ok(());
            }
            let n = stream.read(&mut buf[have..HEAD_BUFFER])?;
            if n == 0 {
                return Ok(());
            }
            have += n;
        };
        let (length, close) = head_fields(&buf[..head_end]);
        let end = head_end + length;
        if buf.len() < end {
            buf.resize(end, 0);
        }
        while have < end {
            let n = stream.read(&mut buf[have..end])?;
            if n == 0 {
                return Ok(());
            }
            have += n;
        }
        let body = if echo { &buf[head_end..end] } else { FIXED };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        write_both(&mut stream, head.as_bytes(), body)?;
        if close {
            return Ok(());
        }
        // Bytes of a pipelined next request move to the front.
        buf.copy_within(end..have, 0);
        have -= end;
    }
}

/// `Content-Length` (0 when absent) and whether the client asked for `Connection: close`.
fn head_fields(head: &[u8]) -> (usize, bool) {
    let mut length = 0;
    let mut close = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    (length, close)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Head and body in as few system calls as the socket takes (one, as a rule).
fn write_both(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut slices = [IoSlice::new(head), IoSlice::new(body)];
    let mut left: &mut [IoSlice] = &mut slices;
    while !left.is_empty() {
        let n = stream.write_vectored(left)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut left, n);
    }
    Ok(())
}

/// `--pipe`: stdin to fd 3, unchanged, one read and one write at a time.
fn copy_pipe() -> io::Result<()> {
    let mut answers = std::fs::OpenOptions::new().write(true).open("/dev/fd/3")?;
    let mut requests = io::stdin().lock();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = match requests.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        answers.write_all(&buf[..n])?;
    }
}
