//! actionloop: an OpenWhisk ActionLoop proxy.
//!
//! The invoker POSTs an action's code to `/init` and each activation to `/run`; the proxy
//! keeps the action in a long-lived child process that speaks the ActionLoop protocol (a JSON
//! line in on stdin, a JSON line back on file descriptor 3) and frames its logs.
//!
//! The modules, from the outside in:
//!
//! - [`settings`]: flags and environment, read once into one struct.
//! - [`compile`]: `-compile`, the offline build of a ready-to-run zip.
//! - `http`: the HTTP/1.1 server and its life (listen, stop on a signal), and the small
//!   client forward mode sends requests with.
//! - `app`: what the proxy serves, by mode and platform; the one place that routes requests;
//!   a baked action initialised at start.
//! - `knative`: the single-entrypoint contract (`/`, init and activation in one body).
//! - `forward`: OpenServerless's forward mode, its client and its server.
//! - [`error`]: every failure, with its HTTP status and exact text; startup errors.
//! - [`request`]: the `/init` and `/run` bodies, checked at the door.
//! - `service`: `/init` and `/run`, and the state across them (prewarmed interpreter, action).
//! - `blackbox`: the Docker skeleton's protocol: an executable started for every activation.
//! - [`package`]: decoding and safely unpacking the code (source, zip, tar.gz).
//! - `plan`: from unpacked code to what to start: executable, compiler output or launcher.
//! - `install`: an action's declared dependencies, installed at `/init` and for `-compile`.
//! - [`language`]: the built-in languages, one table entry each, with their embedded
//!   launchers (`runtimes/`).
//! - `action`: an initialised action's children, starting them and running activations.
//! - [`answer`]: what an action may answer, checked and passed on as it is.
//! - `child`: one child process, its pipes, and the reaper of orphans.
//! - `logs`: the proxy's stdout and stderr, the children's output, the sentinels.
//! - `memory`: allocator tuning that keeps big activations off fresh pages.
//! - `sys`: the few system calls std does not wrap, each in one small function.
//!
//! The public modules are what the binary, the tests and the fuzzers use; the rest is private.

mod action;
pub mod answer;
mod app;
mod blackbox;
mod child;
pub mod compile;
pub mod error;
mod forward;
mod http;
mod install;
mod knative;
pub mod language;
mod logs;
mod memory;
pub mod package;
mod plan;
pub mod request;
mod service;
pub mod settings;
mod sys;

use std::net::SocketAddr;

pub use error::StartupError;
use settings::Settings;

/// Sends the proxy's own log lines to stderr: warnings and errors by default, everything with
/// `-debug`, or the level named by `RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`, `off`).
pub fn init_tracing(settings: &Settings) {
    use tracing_subscriber::filter::LevelFilter;
    let level = if settings.debug {
        LevelFilter::DEBUG
    } else {
        settings
            .log_level
            .as_deref()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(LevelFilter::WARN)
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| logs::ProxyLog)
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// Runs the server on `--port` of every interface until a stop signal, on a runtime of its
/// own: one thread, which the children are tied to (see `child`).
pub fn serve(settings: Settings) -> Result<(), StartupError> {
    memory::tune();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartupError::Io("cannot start the async runtime".into(), e))?;
    let addr = SocketAddr::from(([0, 0, 0, 0], settings.port));
    runtime.block_on(async move {
        logs::start();
        child::reaper::start();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| StartupError::Io(format!("cannot listen on {addr}"), e))?;
        tracing::info!("listening on {addr}");
        let served = http::serve(listener, settings, http::signalled()).await;
        logs::flush(std::time::Duration::from_secs(1)).await;
        served
    })
}
