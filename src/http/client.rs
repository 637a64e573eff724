//! A small HTTP/1.1 client, for forward mode's client: one `POST` of a JSON body per
//! connection, over TCP or TLS, and its answer read whole (by `Content-Length`, chunked, or up
//! to the end of the connection).
//!
//! The proxy needs no more of a client than that, and the other end is a proxy too. One
//! connection per request (`Connection: close`) leaves nothing to pool and no half-read
//! connection to reuse by mistake, for the price of a handshake per request: little next to
//! an action's run, and nothing next to a GPU action's.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};

use crate::error::ClientError;

/// How long a connection (and its TLS handshake) may take to open.
const CONNECT: Duration = Duration::from_secs(10);
/// The largest answer head read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// Where requests go: only a scheme and a host, as the fork uses a proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// A name or an address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port` as a `Host` header and a URL write it.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Sends requests; made once, with the certificates `https://` trusts.
pub struct Client {
    tls: TlsConnector,
    /// The largest answer body held.
    limit: u64,
}

impl Client {
    /// A client that trusts the Mozilla roots and the PEM certificates in `ca_file`, and
    /// holds answers of up to `limit` bytes.
    pub fn new(ca_file: Option<&Path>, limit: u64) -> Result<Client, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            use pki_types::pem::PemObject;
            let what = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let certs = pki_types::CertificateDer::pem_file_iter(path).map_err(|e| what(&e))?;
            let mut added = 0;
            for cert in certs {
                roots
                    .add(cert.map_err(|e| what(&e))?)
                    .map_err(|e| what(&e))?;
                added += 1;
            }
            if added == 0 {
                return Err(what(&"no PEM certificate in it"));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            limit,
        })
    }

    /// `POST`s a JSON `body` to `path` at `to` and reads the answer, all of it before `until`
    /// when given.
    pub async fn post(
        &self,
        to: &Endpoint,
        path: &str,
        body: &[u8],
        until: Option<Instant>,
    ) -> Result<Reply, ClientError> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: actionloop/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            to.authority(),
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        let exchange = async {
            let connect = TcpStream::connect((to.host.as_str(), to.port));
            let tcp = tokio::time::timeout(CONNECT, connect)
                .await
                .map_err(|_| ClientError::Timeout("connecting"))?
                .map_err(ClientError::Connect)?;
            let _ = tcp.set_nodelay(true);
            if !to.tls {
                return exchange(tcp, head.as_bytes(), body, self.limit).await;
            }
            let name = pki_types::ServerName::try_from(to.host.clone())
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            let handshake = self.tls.connect(name, tcp);
            let tls = tokio::time::timeout(CONNECT, handshake)
                .await
                .map_err(|_| ClientError::Timeout("the TLS handshake"))?
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            exchange(tls, head.as_bytes(), body, self.limit).await
        };
        match until {
            None => exchange.await,
            Some(at) => tokio::time::timeout_at(at, exchange)
                .await
                .map_err(|_| ClientError::Timeout("the answer"))?,
        }
    }
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// Neither: at the end of the connection.
    ToEnd,
}

/// What the client needs of an answer head.
#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    content_type: Option<String>,
}

/// Sends the request and reads the final answer (interim `1xx` ones are skipped).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &[u8],
    body: &[u8],
    limit: u64,
) -> Result<Reply, ClientError> {
    stream.write_all(head).await.map_err(ClientError::Io)?;
    stream.write_all(body).await.map_err(ClientError::Io)?;
    stream.flush().await.map_err(ClientError::Io)?;
    let mut reader = Reader {
        stream,
        buf: BytesMut::with_capacity(8 * 1024),
    };
    loop {
        let head = reader.head().await?;
        reader.buf.advance(head.len);
        if (100..200).contains(&head.status) {
            continue;
        }
        let body = match head.framing {
            // These carry no body, whatever their head says.
            _ if head.status == 204 || head.status == 304 => Bytes::new(),
            Framing::Length(n) if n > limit => return Err(ClientError::TooLarge(limit)),
            Framing::Length(n) => reader.exact(n as usize).await?,
            Framing::Chunked => reader.chunked(limit).await?,
            Framing::ToEnd => reader.until_closed(limit).await?,
        };
        return Ok(Reply {
            status: head.status,
            content_type: head.content_type,
            body,
        });
    }
}

struct Reader<S> {
    stream: S,
    buf: BytesMut,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    /// Reads more; `Ok(0)` at the end of the connection. A TLS peer that closes without
    /// `close_notify` ends it too: whether the answer is whole is for its framing to tell.
    async fn more(&mut self) -> Result<usize, ClientError> {
        self.buf.reserve(8 * 1024);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    async fn head(&mut self) -> Result<Head, ClientError> {
        loop {
            if let Some(head) = parse_head(&self.buf)? {
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ClientError::Malformed("the head is too large".into()));
            }
            if self.more().await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    async fn exact(&mut self, n: usize) -> Result<Bytes, ClientError> {
        if self.buf.len() < n {
            self.buf.reserve(n - self.buf.len());
        }
        while self.buf.len() < n {
            if self.more().await? == 0 {
                return Err(ClientError::Closed);
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    async fn until_closed(&mut self, limit: u64) -> Result<Bytes, ClientError> {
        while self.more().await? > 0 {
            if self.buf.len() as u64 > limit {
                return Err(ClientError::TooLarge(limit));
            }
        }
        Ok(std::mem::take(&mut self.buf).freeze())
    }

    async fn chunked(&mut self, limit: u64) -> Result<Bytes, ClientError> {
        let bad = || ClientError::Malformed("a chunked body that is not".into());
        let mut body = BytesMut::new();
        loop {
            let (line, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) if self.buf.len() < 1024 => {}
                    _ => return Err(bad()),
                }
                if self.more().await? == 0 {
                    return Err(ClientError::Closed);
                }
            };
            self.buf.advance(line);
            if body.len() as u64 + size > limit {
                return Err(ClientError::TooLarge(limit));
            }
            if size == 0 {
                break;
            }
            let size = size as usize;
            while self.buf.len() < size + 2 {
                if self.more().await? == 0 {
                    return Err(ClientError::Closed);
                }
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(bad());
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
        }
        // Trailers, if any, then the empty line; a server that closes instead is done too.
        loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n") {
                self.buf.advance(end + 2);
                if end == 0 {
                    return Ok(body.freeze());
                }
                continue;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(bad());
            }
            if self.more().await? == 0 {
                return Ok(body.freeze());
            }
        }
    }
}

/// The answer head at the start of `buf`, `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ClientError::Malformed(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut content_type = None;
    for header in response.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_string();
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .map_err(|_| ClientError::Malformed(format!("Content-Length '{value}'")))?;
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value);
        }
    }
    // Chunked wins over a length, as RFC 9112 section 6.3 says.
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::ToEnd,
    };
    Ok(Some(Head {
        len,
        status,
        framing,
        content_type,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer `bytes` as the client reads it, from a peer that then closes.
    fn read(bytes: &'static [u8], limit: u64) -> Result<Reply, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (mut near, far) = tokio::io::duplex(1 << 16);
            let server = async move {
                near.write_all(bytes).await.unwrap();
                near.shutdown().await.unwrap();
                let mut request = Vec::new();
                near.read_to_end(&mut request).await.unwrap();
                request
            };
            let (request, reply) = tokio::join!(server, async {
                let mut far = far;
                let reply = exchange(&mut far, b"POST / HTTP/1.1\r\n\r\n", b"{}", limit).await;
                drop(far);
                reply
            });
            assert_eq!(request, b"POST / HTTP/1.1\r\n\r\n{}");
            reply
        })
    }

    #[test]
    fn answers_are_read_by_length_chunks_or_to_the_end() {
        let r = read(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}extra",
            100,
        )
        .unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let r = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
            100,
        )
        .unwrap();
        assert_eq!((r.status, &r.body[..]), (502, &b"abcde"[..]));
        let r = read(b"HTTP/1.0 404 Not Found\r\n\r\nto the end", 100).unwrap();
        assert_eq!((r.status, &r.body[..]), (404, &b"to the end"[..]));
    }

    #[test]
    fn short_large_or_broken_answers_are_errors() {
        let closed = |e: &ClientError| matches!(e, ClientError::Closed);
        let large = |e: &ClientError| matches!(e, ClientError::TooLarge(100));
        let malformed = |e: &ClientError| matches!(e, ClientError::Malformed(_));
        type Expected = fn(&ClientError) -> bool;
        let cases: [(&'static [u8], Expected); 5] = [
            (b"", closed),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", closed),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", large),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n80\r\n",
                large,
            ),
            (b"SMTP ready\r\n\r\n", malformed),
        ];
        for (bytes, expected) in cases {
            let e = read(bytes, 100).unwrap_err();
            assert!(expected(&e), "{e}");
        }
    }

    #[test]
    fn endpoints_write_ipv6_hosts_in_brackets() {
        let v6 = Endpoint {
            tls: true,
            host: "::1".into(),
            port: 8443,
        };
        assert_eq!(v6.to_string(), "https://[::1]:8443");
        let name = Endpoint {
            tls: false,
            host: "ops-cuda-service".into(),
            port: 8080,
        };
        assert_eq!(name.authority(), "ops-cuda-service:8080");
    }
}
