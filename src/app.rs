//! What the proxy serves, chosen once at start from the settings: an ActionLoop action (the
//! default, [`crate::service`]), through the routes the OpenWhisk invoker uses (`POST /init`,
//! `POST /run`).
//!
//! Every mode is one variant here and one module of its own; this is the only place that
//! looks at a request's route.

use bytes::Bytes;

use crate::error::{ProxyError, StartupError};
use crate::http::{Answer, Request};
use crate::service::Service;
use crate::settings::Settings;

pub enum App {
    ActionLoop(std::sync::Arc<Service>),
}

impl App {
    /// Makes what the settings ask for, ready to serve (the interpreter prewarmed).
    pub async fn new(settings: Settings) -> Result<App, StartupError> {
        let service = std::sync::Arc::new(Service::new(settings)?);
        service.prewarm().await;
        Ok(App::ActionLoop(service))
    }

    pub fn settings(&self) -> &Settings {
        match self {
            App::ActionLoop(service) => service.settings(),
        }
    }

    /// Routes one request.
    pub async fn handle(&self, request: Request) -> Answer {
        match self {
            App::ActionLoop(service) => actionloop(service, request).await,
        }
    }

    /// Kills every process the proxy started.
    pub fn stop(&self) {
        crate::child::reaper::kill_all();
    }
}

/// The invoker's two routes. The query string does not matter, as in the Go proxy.
async fn actionloop(service: &std::sync::Arc<Service>, request: Request) -> Answer {
    let log_init_error = service.settings().log_init_error;
    match (request.method.as_str(), request.path()) {
        ("POST", "/init") => match service.init(request.body).await {
            Ok(()) => Answer::ok(Bytes::from_static(b"{\"ok\":true}")),
            Err(e) => e.worded_for_init(log_init_error).into(),
        },
        ("POST", "/run") => match service.run(request.body).await {
            Ok(answer) => Answer::ok(answer),
            Err(e) => e.into(),
        },
        _ => ProxyError::NotFound.into(),
    }
}
