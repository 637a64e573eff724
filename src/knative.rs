//! The single-entrypoint contract (`OW_PLATFORM=knative`; apache/openwhisk
//! `docs/single_entrypoint_proxy_contract.md`, as the Node.js runtime's `knative.js` serves it):
//! one route, `/`, whose body carries `init`, `activation` and `value`, so that a container can
//! be initialised and run in one request, or run with no `/init` at all when its action is
//! baked in. A run's result is a web action's answer: `statusCode`, `headers` and `body` become
//! the HTTP answer's. This lets the images serve on Knative Serving, or any plain Deployment,
//! without an invoker.

use base64::Engine;
use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value};

use crate::app::Backend;
use crate::error::ProxyError;
use crate::http::{Answer, Request};

/// What the init part of a request may set of the value the function gets.
const INIT_KEYS: [&str; 5] = ["code", "main", "binary", "raw", "actionName"];

/// An init whose `raw` was true: the action takes its HTTP body raw from then on, as with
/// `__OW_ACTION_RAW`. One action per process, so one flag: set by the init that succeeded.
static INIT_RAW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub async fn handle(backend: &Backend, methods: &[String], request: Request) -> Answer {
    if request.path() != "/" {
        return ProxyError::NotFound.into();
    }
    if !methods.contains(&request.method) {
        return ProxyError::MethodNotAllowed(methods.join(", ")).into();
    }
    match serve(backend, &request).await {
        Ok(answer) => answer,
        // An activation before any init, in the Node.js runtime's words.
        Err(ProxyError::NoAction) => ProxyError::NotInitialized.into(),
        Err(e) => e.into(),
    }
}

async fn serve(backend: &Backend, request: &Request) -> Result<Answer, ProxyError> {
    let mut body = match request.body.is_empty() {
        true => Map::new(),
        false => match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(body)) => body,
            Ok(_) => return Err(ProxyError::invalid("/", "the body must be a JSON object")),
            Err(e) => return Err(ProxyError::invalid("/", e)),
        },
    };
    let init = body.remove("init");
    let mut activation = match body.remove("activation") {
        Some(Value::Object(activation)) => Some(activation),
        Some(_) => Some(Map::new()),
        None => None,
    };
    let has_activation = activation.is_some() && body.contains_key("value");
    if let Some(init) = init {
        if backend.baked() {
            return Err(ProxyError::DedicatedRuntime);
        }
        // The init's `name` is the action's name unless the activation names it (the two
        // would collide in `value`, where the Node.js runtime keeps init data).
        if let (Some(Value::String(name)), Some(activation)) = (init.get("name"), &mut activation) {
            let unnamed = match activation.get("action_name") {
                None => true,
                Some(Value::String(named)) => named.is_empty(),
                Some(_) => false,
            };
            if unnamed {
                activation.insert("action_name".into(), Value::String(name.clone()));
            }
        }
        let raw = init.get("raw") == Some(&Value::Bool(true));
        let init_body = serde_json::json!({ "value": init });
        backend
            .init(BytesMut::from(init_body.to_string().as_bytes()))
            .await?;
        INIT_RAW.store(raw, std::sync::atomic::Ordering::Relaxed);
        if !has_activation {
            // The Node.js runtime's own answer to an init (`{ OK: true }`).
            return Ok(Answer::ok(Bytes::from_static(b"{\"OK\":true}")));
        }
    }
    let raw = init_is_raw(backend);
    let mut value = match body.remove("value") {
        Some(Value::Object(value)) => value,
        Some(Value::String(text)) if raw => {
            let mut value = Map::new();
            value.insert("__ow_body".into(), Value::String(text));
            value
        }
        _ => Map::new(),
    };
    for key in INIT_KEYS {
        value.remove(key);
    }
    let activation = activation.unwrap_or_default();
    if has_activation {
        add_http_context(&mut value, request, raw);
    }
    let mut run = Map::new();
    for (key, v) in activation {
        // The Node.js runtime passes on the string-valued keys only.
        if v.is_string() {
            run.insert(key, v);
        }
    }
    run.insert("value".into(), Value::Object(value));
    let result = backend
        .run(BytesMut::from(Value::Object(run).to_string().as_bytes()))
        .await?;
    Ok(web_answer(request, &result))
}

/// Whether the action takes its HTTP body raw (`__OW_ACTION_RAW`, or its init's `raw`), as
/// web actions may.
fn init_is_raw(backend: &Backend) -> bool {
    backend.settings().action_raw || INIT_RAW.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a web action gets of the HTTP request: method, headers, path, the namespace, and when
/// raw, the body (base64 of its JSON) and the query string.
fn add_http_context(value: &mut Map<String, Value>, request: &Request, raw: bool) {
    if raw && !value.contains_key("__ow_body") {
        let json = Value::Object(value.clone()).to_string();
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        value.insert("__ow_body".into(), Value::String(encoded));
    }
    if raw {
        value.insert("__ow_query".into(), Value::String(request.query().into()));
    }
    let headers: Map<String, Value> = request
        .headers()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v)))
        .collect();
    let namespace = std::env::var("__OW_NAMESPACE").unwrap_or_default();
    value.insert("__ow_user".into(), Value::String(namespace));
    value.insert("__ow_method".into(), Value::String(request.method.clone()));
    value.insert("__ow_headers".into(), Value::Object(headers));
    value.insert("__ow_path".into(), Value::String(String::new()));
}

/// A web action's result as the HTTP answer: `statusCode` (200), `headers`, and `body` (the
/// whole result when it has none). A string body is HTML unless the headers say otherwise, an
/// image's is base64 and sent decoded, anything else JSON; an empty body is 204.
fn web_answer(request: &Request, result: &[u8]) -> Answer {
    let mut result = match serde_json::from_slice::<Value>(result) {
        Ok(Value::Object(result)) => result,
        Ok(other) => return json_answer(200, &other),
        Err(_) => return Answer::ok(Bytes::copy_from_slice(result)),
    };
    let status = result
        .remove("statusCode")
        .and_then(|s| s.as_u64())
        .filter(|s| (100..600).contains(s))
        .unwrap_or(200) as u16;
    let mut headers: Vec<(String, String)> = match result.remove("headers") {
        Some(Value::Object(h)) => h
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => Vec::new(),
    };
    let body = result.remove("body").unwrap_or(Value::Object(result));
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone());
    let (bytes, kind) = match (&body, content_type) {
        (Value::String(text), Some(kind)) if kind.starts_with("image") => {
            match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                Ok(decoded) => {
                    headers.push(("Content-Transfer-Encoding".into(), "binary".into()));
                    (decoded, None)
                }
                Err(_) => (text.as_bytes().to_vec(), None),
            }
        }
        (Value::String(text), kind) => (
            text.as_bytes().to_vec(),
            kind.is_none().then_some("text/html"),
        ),
        (other, kind) => (
            other.to_string().into_bytes(),
            kind.is_none().then_some("application/json"),
        ),
    };
    if let Some(kind) = kind {
        headers.push(("Content-Type".into(), kind.into()));
    }
    let status = if status == 200 && bytes.is_empty() {
        204
    } else {
        status
    };
    add_cors(&mut headers, request);
    Answer {
        status,
        headers,
        body: Bytes::from(bytes),
    }
}

fn json_answer(status: u16, value: &Value) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: Bytes::from(value.to_string()),
    }
}

/// The Node.js runtime's CORS defaults, unless the action set its own; the headers a
/// preflight asks for are allowed.
fn add_cors(headers: &mut Vec<(String, String)>, request: &Request) {
    let has = |headers: &Vec<(String, String)>, name: &str| {
        headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !has(headers, "Access-Control-Allow-Origin") {
        headers.push(("Access-Control-Allow-Origin".into(), "*".into()));
    }
    if !has(headers, "Access-Control-Allow-Methods") {
        headers.push((
            "Access-Control-Allow-Methods".into(),
            "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH".into(),
        ));
    }
    if !has(headers, "Access-Control-Allow-Headers") {
        let asked = request
            .headers()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Access-Control-Request-Headers"))
            .map(|(_, v)| v);
        let allowed = asked.unwrap_or_else(|| {
            "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent".into()
        });
        headers.push(("Access-Control-Allow-Headers".into(), allowed));
    }
}
