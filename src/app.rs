//! What the proxy serves, chosen once at start from the settings: an ActionLoop action (the
//! default, [`crate::service`]), through the routes the OpenWhisk invoker uses (`POST /init`,
//! `POST /run`); or one end of OpenServerless's forward mode ([`crate::forward`]), with the
//! fork's `POST /stop` (and, with `-debug`, `POST /reset`).
//!
//! Every mode is one variant here and one module of its own; this is the only place that
//! looks at a request's route.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{ForwardError, ProxyError, StartupError};
use crate::forward::{client, server};
use crate::http::{Answer, Request};
use crate::service::Service;
use crate::settings::{ForwardMode, Settings};

pub enum App {
    ActionLoop(Arc<Service>),
    /// `OW_ACTIVATE_PROXY_CLIENT`.
    ForwardClient(client::Client),
    /// `OW_ACTIVATE_PROXY_SERVER`.
    ForwardServer(server::Server),
}

impl App {
    /// Makes what the settings ask for, ready to serve (the interpreter prewarmed).
    pub async fn new(settings: Settings) -> Result<App, StartupError> {
        match settings.forward.mode {
            ForwardMode::Client => return Ok(App::ForwardClient(client::Client::new(settings)?)),
            ForwardMode::Server => return Ok(App::ForwardServer(server::Server::new(settings)?)),
            ForwardMode::Off => {}
        }
        let service = Arc::new(Service::new(settings)?);
        service.prewarm().await;
        Ok(App::ActionLoop(service))
    }

    pub fn settings(&self) -> &Settings {
        match self {
            App::ActionLoop(service) => service.settings(),
            App::ForwardClient(client) => client.settings(),
            App::ForwardServer(server) => server.settings(),
        }
    }

    /// Routes one request.
    pub async fn handle(&self, request: Request) -> Answer {
        match self {
            App::ActionLoop(service) => actionloop(service, request).await,
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

fn ok() -> Answer {
    Answer::ok(Bytes::from_static(b"{\"ok\":true}"))
}

/// The invoker's two routes. The query string does not matter, as in the Go proxy.
async fn actionloop(service: &Arc<Service>, request: Request) -> Answer {
    let log_init_error = service.settings().log_init_error;
    match (request.method.as_str(), request.path()) {
        ("POST", "/init") => match service.init(request.body).await {
            Ok(()) => ok(),
            Err(e) => e.worded_for_init(log_init_error).into(),
        },
        ("POST", "/run") => match service.run(request.body).await {
            Ok(answer) => Answer::ok(answer),
            Err(e) => e.into(),
        },
        _ => not_a_server(service.settings(), &request),
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
