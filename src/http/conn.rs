//! One HTTP/1.1 connection: request heads read with `httparse`, bodies by `Content-Length` or
//! chunked, one answer per request, in order, each with `Content-Length`.
//!
//! A request that cannot be read gets a JSON error and the connection is closed: after a
//! malformed head or body there is no telling where the next request would start.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::clock::Watch;
use super::{Answer, Busy, Request, Server};
use crate::error::{HttpError, ProxyError};

/// The largest request head (request line and headers) read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// The longest request target.
const MAX_TARGET: usize = 8 * 1024;
/// A connection's read buffer between requests.
const BUFFER: usize = 8 * 1024;
/// Answers up to this size go out in one write with their head.
const SMALL_ANSWER: usize = 16 * 1024;
/// After a final answer, how long the rest of a request is read and dropped, so that closing
/// a socket with unread data does not reset the connection before the client reads the answer.
const LINGER: Duration = Duration::from_millis(500);

/// What the proxy needs of a request head.
struct Head {
    method: String,
    target: String,
    /// The head's bytes, kept for whoever wants its headers (see [`Request::headers`]).
    raw: Bytes,
    /// Bytes of the head, up to and including the empty line.
    len: usize,
    body: Framing,
    /// The client asked for `100 Continue` before it sends the body.
    expects_continue: bool,
    /// The connection ends after this request.
    close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// Why reading stopped without a request.
enum Stop {
    /// The connection is done: closed by the client, idle too long, or the proxy is stopping.
    Quietly,
    /// The request cannot be read: answer this, then close.
    Answer(ProxyError),
}

impl From<HttpError> for Stop {
    fn from(e: HttpError) -> Stop {
        Stop::Answer(ProxyError::Http(e))
    }
}

pub(super) async fn serve(
    mut stream: TcpStream,
    server: Arc<Server>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(BUFFER);
    let mut out = Vec::with_capacity(256);
    let watch = server.clock.watch();
    loop {
        let mut reader = Reader {
            stream: &mut stream,
            buf: &mut buf,
            server: &server,
            stop: &mut stop,
            watch: &watch,
        };
        let request = reader.request().await;
        let (head, body) = match request {
            Ok(request) => request,
            Err(Stop::Quietly) => return,
            Err(Stop::Answer(e)) => {
                let _ = write_answer(&mut stream, &mut out, &e.into(), true).await;
                linger(&mut stream).await;
                return;
            }
        };
        let close = {
            // From here on a stop waits for this request.
            let _busy = Busy::new(&server);
            let close = head.close;
            let request = Request {
                method: head.method,
                target: head.target,
                head: head.raw,
                body,
            };
            let answer = server.handle(request).await;
            let close = close || *stop.borrow();
            if write_answer(&mut stream, &mut out, &answer, close)
                .await
                .is_err()
            {
                return;
            }
            close
        };
        if close {
            linger(&mut stream).await;
            return;
        }
    }
}

/// Reads requests off one connection, within its deadlines.
struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: &'a mut BytesMut,
    server: &'a Server,
    stop: &'a mut watch::Receiver<bool>,
    watch: &'a Watch,
}

impl Reader<'_> {
    /// The next request: its head, then its body.
    async fn request(&mut self) -> Result<(Head, BytesMut), Stop> {
        // Between requests: wait for the first byte as long as the connection may idle.
        if self.buf.is_empty() {
            self.watch.set(self.server.idle_timeout);
            match self.more().await {
                Ok(1..) => {}
                Ok(0) | Err(Stop::Answer(_)) => return Err(Stop::Quietly),
                Err(stop) => return Err(stop),
            }
        }
        // The head must be complete within the head timeout of its first byte.
        self.watch.set(self.server.head_timeout);
        let head = loop {
            if let Some(head) = parse_head(self.buf)? {
                if head.len > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge.into());
                }
                break head;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::HeadTooLarge.into());
            }
            // A client that leaves halfway through a head gets no answer: it is gone.
            if self.more().await? == 0 {
                return Err(Stop::Quietly);
            }
        };
        let mut head = head;
        head.raw = self.buf.split_to(head.len).freeze();
        if let Framing::Length(n) = head.body
            && n > self.server.body_limit
        {
            return Err(Stop::Answer(ProxyError::TooLarge(self.server.body_limit)));
        }
        if head.expects_continue && !has_whole_body(self.buf, head.body) {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| Stop::Quietly)?;
        }
        let body = match head.body {
            Framing::Length(n) => self.exact_body(n as usize).await?,
            Framing::Chunked => self.chunked_body().await?,
        };
        Ok((head, body))
    }

    /// Reads more into the buffer before the deadline; `Ok(0)` at the end of the stream. A
    /// stop ends it quietly.
    async fn more(&mut self) -> Result<usize, Stop> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(BUFFER);
        }
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|s| *s) => Err(Stop::Quietly),
            _ = self.watch.passed() => Err(HttpError::Timeout.into()),
            read = self.stream.read_buf(self.buf) => match read {
                Ok(n) => Ok(n),
                Err(_) => Err(Stop::Quietly),
            },
        }
    }

    /// Reads more of a body, which must keep coming: no pause longer than the head timeout.
    async fn more_body(&mut self) -> Result<(), Stop> {
        self.watch.set(self.server.head_timeout);
        match self.more().await? {
            0 => Err(HttpError::Truncated.into()),
            _ => Ok(()),
        }
    }

    /// A body of `n` bytes, in one buffer of its own: read whole, never copied.
    async fn exact_body(&mut self, n: usize) -> Result<BytesMut, Stop> {
        if self.buf.len() < n {
            self.buf.reserve(n - self.buf.len());
        }
        while self.buf.len() < n {
            self.more_body().await?;
        }
        let body = self.buf.split_to(n);
        // The body owns its allocation: what is left (a pipelined request, if any) moves to a
        // small buffer of its own, so that a large body's memory goes with the body.
        if self.buf.capacity() > BUFFER * 4 {
            let mut fresh = BytesMut::with_capacity(BUFFER.max(self.buf.len()));
            fresh.extend_from_slice(self.buf);
            *self.buf = fresh;
        }
        Ok(body)
    }

    /// A chunked body, joined into one buffer.
    async fn chunked_body(&mut self) -> Result<BytesMut, Stop> {
        let limit = self.server.body_limit;
        let mut body = BytesMut::new();
        loop {
            // The size line.
            let (line, size) = loop {
                match httparse::parse_chunk_size(self.buf) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) if self.buf.len() < 1024 => {}
                    _ => return Err(HttpError::BadChunk.into()),
                }
                self.more_body().await?;
            };
            self.buf.advance(line);
            if body.len() as u64 + size > limit {
                return Err(Stop::Answer(ProxyError::TooLarge(limit)));
            }
            if size == 0 {
                break;
            }
            // The data and its line end.
            let size = size as usize;
            while self.buf.len() < size + 2 {
                self.more_body().await?;
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(HttpError::BadChunk.into());
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
        }
        // Trailers, if any, up to the empty line: read and dropped.
        loop {
            if let Some(end) = memchr::memmem::find(self.buf, b"\r\n") {
                let empty = end == 0;
                self.buf.advance(end + 2);
                if empty {
                    return Ok(body);
                }
                continue;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::BadChunk.into());
            }
            self.more_body().await?;
        }
    }
}

fn has_whole_body(buf: &BytesMut, framing: Framing) -> bool {
    match framing {
        Framing::Length(n) => buf.len() as u64 >= n,
        Framing::Chunked => false,
    }
}

/// The head at the start of `buf`, `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let method = request.method.unwrap_or_default().to_string();
    let target = request.path.unwrap_or_default();
    if target.len() > MAX_TARGET {
        return Err(HttpError::TargetTooLong);
    }
    // HTTP/1.0 closes after each answer unless asked not to; HTTP/1.1 keeps the connection.
    let mut close = request.version != Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut expects_continue = false;
    for header in request.headers.iter() {
        let name = header.name;
        let value = std::str::from_utf8(header.value)
            .map_err(|_| HttpError::Malformed(format!("the {name} header is not text")))?
            .trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| HttpError::Malformed(format!("Content-Length '{value}'")))?;
            if length.is_some_and(|m| m != n) {
                return Err(HttpError::Malformed("conflicting Content-Length".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") || chunked {
                return Err(HttpError::UnsupportedEncoding(value.to_string()));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expects_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let body = match (chunked, length) {
        // Both would let two readers of the request disagree on where it ends.
        (true, Some(_)) => {
            return Err(HttpError::Malformed(
                "both Content-Length and Transfer-Encoding".into(),
            ));
        }
        (true, None) => Framing::Chunked,
        (false, length) => Framing::Length(length.unwrap_or(0)),
    };
    Ok(Some(Head {
        method,
        target: target.to_string(),
        raw: Bytes::new(),
        len,
        body,
        expects_continue,
        close,
    }))
}

/// Writes an answer: its head, then its body, with `Content-Length` always, and JSON as its
/// type unless the answer names another.
async fn write_answer(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    answer: &Answer,
    close: bool,
) -> io::Result<()> {
    use std::io::Write;
    out.clear();
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        answer.status,
        reason(answer.status)
    )?;
    let typed = answer
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !typed {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    for (name, value) in &answer.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    write!(out, "Content-Length: {}\r\n", answer.body.len())?;
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if answer.body.len() <= SMALL_ANSWER {
        out.extend_from_slice(&answer.body);
        return stream.write_all(out).await;
    }
    // A large answer goes out as the child wrote it, not copied behind its head.
    let (mut head, mut body) = (&out[..], &answer.body[..]);
    while !head.is_empty() || !body.is_empty() {
        let slices = [IoSlice::new(head), IoSlice::new(body)];
        let n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    Ok(())
}

/// Ends a connection gently: no more writes, then what the client still sends is read and
/// dropped for a moment, so that its unread request does not reset the connection before
/// the answer is read.
async fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(1..) = stream.read(&mut sink).await {}
    })
    .await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, HttpError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn heads_are_read_with_their_framing() {
        let h = head("POST /run?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/run?x=1"));
        assert_eq!(h.body, Framing::Length(12));
        assert!(!h.close);
        assert_eq!(
            h.len,
            "POST /run?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n".len()
        );
        let h = head("POST /init HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Chunked);
        assert!(h.close, "HTTP/1.0 closes by default");
        assert!(
            head("POST /init HTTP/1.1\r\nHost: a\r\n")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn ambiguous_or_broken_heads_are_refused() {
        for bad in [
            "POST /run HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST /run HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST /run HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "this is not http\r\n\r\n",
        ] {
            assert!(matches!(head(bad), Err(HttpError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(
            head("POST /run HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HttpError::UnsupportedEncoding(_))
        ));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET));
        assert!(matches!(head(&long), Err(HttpError::TargetTooLong)));
    }
}
