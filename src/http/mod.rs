//! The HTTP surface: `POST /init` and `POST /run` over HTTP/1.1, JSON everywhere, and a stop
//! that waits only for the requests being answered.
//!
//! A small server of our own on `httparse` rather than a framework, because the proxy must own
//! every byte it answers: every answer, protocol errors included, is a JSON body with
//! `Content-Length` (the invoker's client takes a chunked or empty answer for none); a client
//! that half-closes its side still gets its answer; a connection that sends no request head in
//! time, or idles too long, is closed; and a stop does not wait for idle connections.
//! [`conn`] speaks the protocol on one connection; this module accepts them, routes requests
//! and stops.

pub mod client;
mod clock;
mod conn;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::app::App;
use crate::error::{ProxyError, StartupError};
use crate::settings::Settings;

/// One request, as the routes see it.
pub struct Request {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    /// The request head as it came, from which [`Request::headers`] reads.
    head: Bytes,
    pub body: BytesMut,
}

impl Request {
    /// The path, without the query string (which the Go proxy's routes ignore too).
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(&self.target, |(path, _)| path)
    }

    /// The query string, without its `?`.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }

    /// The headers, read from the head when asked for: most routes never need them.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut fields = [httparse::EMPTY_HEADER; 100];
        let mut parsed = httparse::Request::new(&mut fields);
        if parsed.parse(&self.head).is_err() {
            return Vec::new();
        }
        parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect()
    }
}

/// One answer: a status, its headers beyond the framing ones, and its body (JSON unless a
/// `Content-Type` header says otherwise).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Answer {
    pub fn ok(body: Bytes) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }
}

impl From<ProxyError> for Answer {
    fn from(e: ProxyError) -> Answer {
        Answer {
            status: e.status(),
            headers: Vec::new(),
            body: Bytes::from(e.body()),
        }
    }
}

/// What the connections need to know, fixed at start.
struct Server {
    app: Arc<App>,
    body_limit: u64,
    head_timeout: Duration,
    idle_timeout: Duration,
    clock: Arc<clock::Clock>,
    /// Requests being read past their head, handled or answered; a stop waits for these only.
    busy: AtomicUsize,
    idle: Notify,
}

/// Marks a request as being worked on until dropped.
struct Busy<'a>(&'a Server);

impl<'a> Busy<'a> {
    fn new(server: &'a Server) -> Busy<'a> {
        server.busy.fetch_add(1, Ordering::SeqCst);
        Busy(server)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Server {
    /// Hands one request to what the proxy serves, with a debug line for `-debug`.
    async fn handle(&self, request: Request) -> Answer {
        let started = std::time::Instant::now();
        let (method, path) = (request.method.clone(), request.path().to_string());
        let answer = self.app.handle(request).await;
        tracing::debug!(elapsed = ?started.elapsed(), status = answer.status, "{method} {path}");
        answer
    }

    /// Resolves once no request is being worked on.
    async fn settled(&self) {
        loop {
            let notified = self.idle.notified();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// How long the requests that are running may take once the grace period is over and their
/// children have been killed: long enough to frame their logs and send their answers.
const LAST_WORDS: Duration = Duration::from_secs(3);

/// How long what the proxy serves may take for its own errands once the requests are done
/// (the forward client's `/stop` to its server): a container being stopped is not waited for.
const LAST_ERRANDS: Duration = Duration::from_secs(3);

/// Serves the protocol on `listener` until `shutdown` resolves. Then it stops accepting,
/// closes the connections that wait for a request, lets the requests being answered finish
/// for up to the grace period, gives what it serves a moment for its last errands
/// ([`App::stopping`]), kills every child (so those still running end with an answer of
/// their own), and returns.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartupError> {
    let app = Arc::new(App::new(settings).await?);
    let settings: &Settings = app.settings();
    let grace = settings.shutdown_grace;
    let server = Arc::new(Server {
        body_limit: settings.limits.request_bytes,
        head_timeout: settings.http.head_timeout,
        idle_timeout: settings.http.idle_timeout,
        clock: clock::Clock::start(),
        app: Arc::clone(&app),
        busy: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small answers must leave at once, not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(conn::serve(stream, Arc::clone(&server), stop.clone()));
                }
                // Out of descriptors, most likely: wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("stopping");
    let _ = stopping.send(true);
    let settled = tokio::time::timeout(grace, server.settled()).await.is_ok();
    // Before the last words: a forward client's `/stop` is what ends its running activations
    // (their server stops the action and answers them).
    if tokio::time::timeout(LAST_ERRANDS, app.stopping())
        .await
        .is_err()
    {
        tracing::warn!("stopping: the last errands took too long");
    }
    if !settled {
        tracing::warn!("grace period over: stopping the running activations");
        crate::logs::hurry();
        app.stop();
        let _ = tokio::time::timeout(LAST_WORDS, server.settled()).await;
    }
    app.stop();
    Ok(())
}

/// Resolves on SIGTERM, SIGINT, SIGHUP, SIGQUIT or SIGABRT: all of them stop the proxy (the
/// fork's forward client stops on the same five). A panic still ends the proxy at once: glibc's
/// `abort` raises SIGABRT again with its default action once a handler has returned.
pub async fn signalled() {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::from_raw(libc::SIGABRT), "SIGABRT"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(stream) => streams.push((stream, name)),
            Err(e) => tracing::warn!("cannot watch a stop signal: {e}"),
        }
    }
    if streams.is_empty() {
        return std::future::pending().await;
    }
    // Which one, in the proxy's log: a proxy that stopped unasked is then explained.
    let name = std::future::poll_fn(|cx| {
        for (stream, name) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*name);
            }
        }
        std::task::Poll::Pending
    })
    .await;
    tracing::info!("{name} received");
}
