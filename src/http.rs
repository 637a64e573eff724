//! The HTTP surface: `POST /init`, `POST /run`, JSON everywhere, and a clean stop on SIGTERM.
//!
//! Every answer is a complete JSON body with `Content-Length`: the invoker's HTTP client
//! treats a chunked answer as no answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::net::TcpListener;

use crate::error::ProxyError;
use crate::proxy::Proxy;

struct AppState {
    proxy: Arc<Proxy>,
    body_limit: u64,
    /// `OW_LOG_INIT_ERROR`: `/init` failures in the Go proxy's fixed words.
    log_init_error: bool,
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        json(self.status(), self.body())
    }
}

fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Reads the whole body into one buffer sized from `Content-Length`, so a large body is held
/// once, not as a list of chunks plus their concatenation. A body over the limit is refused
/// before it is read when its length is announced, and as soon as it passes the limit when not.
async fn body(request: Request, limit: u64) -> Result<Bytes, ProxyError> {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(ProxyError::TooLarge(limit));
    }
    let mut buffer = BytesMut::with_capacity(announced.unwrap_or(0) as usize);
    let mut incoming = request.into_body();
    while let Some(frame) = incoming.frame().await {
        let frame = frame
            .map_err(|e| ProxyError::BadRequest(format!("Could not read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > limit {
                return Err(ProxyError::TooLarge(limit));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// Runs the work in a task of its own. A client that hangs up drops its request's future: the
/// work must not stop halfway (a request sent to a child whose answer nobody reads would be
/// taken as the answer to the next request), so it finishes and its answer is dropped.
async fn finish_detached<T, F, Fut>(state: &AppState, work: F) -> Result<T, ProxyError>
where
    T: Send + 'static,
    F: FnOnce(Arc<Proxy>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProxyError>> + Send + 'static,
{
    tokio::spawn(work(Arc::clone(&state.proxy)))
        .await
        .unwrap_or_else(|e| Err(ProxyError::Internal(e.to_string())))
}

async fn init(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let outcome = async {
        let bytes = body(request, state.body_limit).await?;
        finish_detached(&state, move |proxy| async move { proxy.init(&bytes).await })
            .await
            .map_err(|e| e.worded_for_init(state.log_init_error))
    };
    respond("/init", outcome, |()| b"{\"ok\":true}".to_vec()).await
}

async fn run(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let outcome = async {
        let bytes = body(request, state.body_limit).await?;
        finish_detached(&state, move |proxy| async move { proxy.run(bytes).await }).await
    };
    respond("/run", outcome, |answer| answer).await
}

/// Awaits the outcome and turns it into the answer, with a debug line for `-debug`.
async fn respond<T, B: Into<Body>>(
    route: &str,
    outcome: impl std::future::Future<Output = Result<T, ProxyError>>,
    ok: impl FnOnce(T) -> B,
) -> Response {
    let started = std::time::Instant::now();
    let outcome = outcome.await;
    match outcome {
        Ok(value) => {
            tracing::debug!(elapsed = ?started.elapsed(), "{route} ok");
            json(StatusCode::OK, ok(value))
        }
        Err(e) => {
            tracing::debug!(elapsed = ?started.elapsed(), error = %e.message(), "{route} failed");
            e.into_response()
        }
    }
}

/// Reads (and drops) the body first, so that the connection stays usable for the next request.
async fn not_found(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let _ = body(request, state.body_limit).await;
    ProxyError::NotFound.into_response()
}

pub fn router(proxy: Arc<Proxy>) -> Router {
    let settings = proxy.settings();
    let state = Arc::new(AppState {
        body_limit: settings.limits.request_bytes,
        log_init_error: settings.log_init_error,
        proxy,
    });
    Router::new()
        .route("/init", post(init))
        .route("/run", post(run))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(state)
}

/// Serves until SIGTERM or SIGINT, then lets a running activation finish for up to the grace
/// period, and kills every child before returning.
pub async fn serve(
    proxy: Arc<Proxy>,
    addr: SocketAddr,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?.tap_io(|tcp| {
        // Small answers must leave at once, not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!("listening on {addr}");
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    let app = router(Arc::clone(&proxy));
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    tokio::select! {
        served = server => served?,
        _ = async {
            signalled().await;
            tracing::info!("stopping");
            let _ = stopping.send(true);
            tokio::time::sleep(grace).await;
        } => tracing::warn!("grace period over"),
    }
    proxy.stop();
    Ok(())
}

async fn signalled() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
