//! What the proxy serves, chosen once at start from the settings. Either an action of its
//! own, of one of two kinds (an ActionLoop action, [`crate::service`], or a black box,
//! [`crate::blackbox`]) and called one of two ways (OpenWhisk's invoker on `POST /init` and
//! `POST /run`, or the single entrypoint of [`crate::knative`]); or one end of
//! OpenServerless's forward mode ([`crate::forward`]), with the fork's `POST /stop` (and, with
//! `-debug`, `POST /reset`). A baked action (`__OW_ACTION_CODE`, `OW_ACTION_FILE`) is
//! initialised here, before the first request.
//!
//! This is the only place that looks at a request's route.

use std::sync::Arc;

use base64::Engine;
use bytes::{Bytes, BytesMut};

use crate::blackbox::Blackbox;
use crate::error::{ForwardError, ProxyError, StartupError};
use crate::forward::{client, server};
use crate::http::{Answer, Request};
use crate::service::Service;
use crate::settings::{Baked, BakedCode, ForwardMode, Mode, Platform, Settings};

pub enum App {
    /// The action runs here.
    Local(Backend),
    /// `OW_ACTIVATE_PROXY_CLIENT`: the action runs on a forward server.
    ForwardClient(client::Client),
    /// `OW_ACTIVATE_PROXY_SERVER`: the actions of forward clients run here.
    ForwardServer(server::Server),
}

/// The kind of action, whichever way it is called.
pub enum Backend {
    ActionLoop(Arc<Service>),
    Blackbox(Arc<Blackbox>),
}

impl App {
    /// Makes what the settings ask for, ready to serve: the interpreter prewarmed, a baked
    /// action initialised (a container whose action cannot start must not look healthy).
    pub async fn new(settings: Settings) -> Result<App, StartupError> {
        match settings.forward.mode {
            ForwardMode::Client => return Ok(App::ForwardClient(client::Client::new(settings)?)),
            ForwardMode::Server => return Ok(App::ForwardServer(server::Server::new(settings)?)),
            ForwardMode::Off => {}
        }
        let baked = settings.baked.clone();
        let backend = match settings.mode {
            Mode::ActionLoop => {
                let service = Arc::new(Service::new(settings)?);
                service.prewarm().await;
                Backend::ActionLoop(service)
            }
            Mode::Blackbox => Backend::Blackbox(Arc::new(Blackbox::new(settings))),
        };
        if let Some(baked) = baked {
            let body = baked_init(&baked)?;
            backend.init(body).await.map_err(|e| {
                StartupError::Baked(format!("the baked action cannot start: {}", e.message()))
            })?;
        }
        Ok(App::Local(backend))
    }

    pub fn settings(&self) -> &Settings {
        match self {
            App::Local(backend) => backend.settings(),
            App::ForwardClient(client) => client.settings(),
            App::ForwardServer(server) => server.settings(),
        }
    }

    /// Routes one request.
    pub async fn handle(&self, request: Request) -> Answer {
        match self {
            App::Local(backend) => match &backend.settings().platform {
                Platform::OpenWhisk => openwhisk(backend, request).await,
                Platform::Knative { methods } => {
                    crate::knative::handle(backend, methods, request).await
                }
            },
            App::ForwardClient(client) => forward_client(client, request).await,
            App::ForwardServer(server) => forward_server(server, request).await,
        }
    }

    /// The last errands once the requests are done, before [`App::stop`]: a forward client
    /// tells its server that it is gone.
    pub async fn stopping(&self) {
        if let App::ForwardClient(client) = self {
            client.stopping().await;
        }
    }

    /// Kills every process the proxy started.
    pub fn stop(&self) {
        crate::child::reaper::kill_all();
    }
}

impl Backend {
    pub fn settings(&self) -> &Settings {
        match self {
            Backend::ActionLoop(service) => service.settings(),
            Backend::Blackbox(blackbox) => blackbox.settings(),
        }
    }

    /// The answer to a successful `/init`: `{"ok":true}`, or for a black box the Docker
    /// skeleton's own (Flask's `('OK', 200)`: the text `OK` as HTML).
    pub fn initialised(&self) -> Answer {
        match self {
            Backend::ActionLoop(_) => ok(),
            Backend::Blackbox(_) => Answer {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
                body: Bytes::from_static(b"OK"),
            },
        }
    }

    /// Whether the action came with the image: then no `/init` may replace it.
    pub fn baked(&self) -> bool {
        self.settings().baked.is_some()
    }

    /// `/init`, its failures worded as the settings want (`OW_LOG_INIT_ERROR`).
    pub async fn init(&self, body: BytesMut) -> Result<(), ProxyError> {
        match self {
            Backend::ActionLoop(service) => service
                .init(body)
                .await
                .map_err(|e| e.worded_for_init(service.settings().log_init_error)),
            Backend::Blackbox(blackbox) => blackbox.init(body).await,
        }
    }

    pub async fn run(&self, body: BytesMut) -> Result<Bytes, ProxyError> {
        match self {
            Backend::ActionLoop(service) => service.run(body).await,
            Backend::Blackbox(blackbox) => blackbox.run(body).await,
        }
    }
}

fn ok() -> Answer {
    Answer::ok(Bytes::from_static(b"{\"ok\":true}"))
}

/// The invoker's two routes. The query string does not matter, as in the Go proxy.
async fn openwhisk(backend: &Backend, request: Request) -> Answer {
    match (request.method.as_str(), request.path()) {
        ("POST", "/init") if backend.baked() => {
            crate::logs::proxy_line(format!("{}\n", crate::error::ALREADY_INITIALIZED).as_bytes());
            ProxyError::AlreadyInitialized.into()
        }
        ("POST", "/init") => match backend.init(request.body).await {
            Ok(()) => backend.initialised(),
            Err(e) => e.into(),
        },
        ("POST", "/run") => match backend.run(request.body).await {
            Ok(answer) => Answer::ok(answer),
            Err(e) => e.into(),
        },
        _ => not_a_server(backend.settings(), &request),
    }
}

/// The fork's routes of a server, asked of a proxy that is none: `/stop` always, `/reset`
/// with `-debug`, each refused in the fork's words.
fn not_a_server(settings: &Settings, request: &Request) -> Answer {
    match (request.method.as_str(), request.path()) {
        ("POST", "/stop") => ProxyError::from(ForwardError::StopNotServer).into(),
        ("POST", "/reset") if settings.debug => {
            ProxyError::from(ForwardError::ResetNotServer).into()
        }
        _ => ProxyError::NotFound.into(),
    }
}

async fn forward_client(client: &client::Client, request: Request) -> Answer {
    let answer = match (request.method.as_str(), request.path()) {
        ("POST", "/init") => client.init(request.body).await,
        ("POST", "/run") => client.run(request.body).await,
        _ => return not_a_server(client.settings(), &request),
    };
    answer.unwrap_or_else(Answer::from)
}

async fn forward_server(server: &server::Server, request: Request) -> Answer {
    let log_init_error = server.settings().log_init_error;
    match (request.method.as_str(), request.path()) {
        ("POST", "/init") => match server.init(request.body).await {
            Ok(()) => ok(),
            Err(e) => e.worded_for_init(log_init_error).into(),
        },
        ("POST", "/run") => match server.run(request.body).await {
            Ok(answer) => Answer::ok(answer),
            Err(e) => e.into(),
        },
        ("POST", "/stop") => match server.stop(&request.body) {
            Ok(()) => ok(),
            Err(e) => e.into(),
        },
        ("POST", "/reset") if server.settings().debug => {
            server.reset();
            ok()
        }
        _ => ProxyError::NotFound.into(),
    }
}

/// The `/init` body of a baked action: its code as text, or base64 of a file or folder.
fn baked_init(baked: &Baked) -> Result<BytesMut, StartupError> {
    let (code, binary) = match &baked.code {
        BakedCode::Text(text) => (text.clone(), false),
        BakedCode::Base64(text) => (text.clone(), true),
        BakedCode::Path(path) => {
            let bytes = if path.is_dir() {
                crate::compile::zip_folder(path)
            } else {
                std::fs::read(path)
            }
            .map_err(|e| StartupError::Io(format!("cannot read {}", path.display()), e))?;
            match (
                crate::package::Kind::detect(&bytes),
                String::from_utf8(bytes),
            ) {
                (crate::package::Kind::Plain, Ok(text)) => (text, false),
                (_, Ok(text)) => (base64::engine::general_purpose::STANDARD.encode(text), true),
                (_, Err(e)) => (
                    base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                    true,
                ),
            }
        }
    };
    let mut value = serde_json::json!({"code": code, "binary": binary, "main": baked.main});
    if let Some(name) = &baked.name {
        value["name"] = serde_json::Value::String(name.clone());
    }
    Ok(BytesMut::from(
        serde_json::json!({ "value": value }).to_string().as_bytes(),
    ))
}
