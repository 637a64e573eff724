//! What the proxy serves, chosen once at start from the settings: the kind of action (an
//! ActionLoop action, [`crate::service`], or a black box, [`crate::blackbox`]) and who calls
//! (OpenWhisk's invoker on `POST /init` and `POST /run`, or the single entrypoint of
//! [`crate::knative`]). A baked action (`__OW_ACTION_CODE`, `OW_ACTION_FILE`) is initialised
//! here, before the first request.
//!
//! This is the only place that looks at a request's route.

use std::sync::Arc;

use base64::Engine;
use bytes::{Bytes, BytesMut};

use crate::blackbox::Blackbox;
use crate::error::{ProxyError, StartupError};
use crate::http::{Answer, Request};
use crate::service::Service;
use crate::settings::{Baked, BakedCode, Mode, Platform, Settings};

pub struct App {
    backend: Backend,
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
        Ok(App { backend })
    }

    pub fn settings(&self) -> &Settings {
        self.backend.settings()
    }

    /// Routes one request.
    pub async fn handle(&self, request: Request) -> Answer {
        match &self.settings().platform {
            Platform::OpenWhisk => openwhisk(&self.backend, request).await,
            Platform::Knative { methods } => {
                crate::knative::handle(&self.backend, methods, request).await
            }
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

/// The invoker's two routes. The query string does not matter, as in the Go proxy.
async fn openwhisk(backend: &Backend, request: Request) -> Answer {
    match (request.method.as_str(), request.path()) {
        ("POST", "/init") if backend.baked() => {
            crate::logs::proxy_line(format!("{}\n", crate::error::ALREADY_INITIALIZED).as_bytes());
            ProxyError::AlreadyInitialized.into()
        }
        ("POST", "/init") => match backend.init(request.body).await {
            Ok(()) => Answer::ok(Bytes::from_static(b"{\"ok\":true}")),
            Err(e) => e.into(),
        },
        ("POST", "/run") => match backend.run(request.body).await {
            Ok(answer) => Answer::ok(answer),
            Err(e) => e.into(),
        },
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
