//! The single-entrypoint contract (`OW_PLATFORM=knative`), and actions baked into the image
//! (`__OW_ACTION_CODE`, `OW_ACTION_FILE`), which need no `/init` on either platform.

mod common;

use common::*;

fn knative(runtime: &str, env: &[(&str, &str)]) -> Proxy {
    let mut all = vec![("OW_PLATFORM", "knative")];
    all.extend_from_slice(env);
    Proxy::start_with(runtime, &all, &[])
}

/// A web action per language: greets, shows the HTTP context it got, and on request answers
/// with its own status, headers and body (a one-pixel PNG, in base64).
fn web_action(runtime: &str) -> &'static str {
    match runtime {
        "python" => {
            r#"import os
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
def main(args):
    if args.get("image"):
        return {"statusCode": 201, "headers": {"Content-Type": "image/png"}, "body": PNG}
    if args.get("html"):
        return {"body": "<h1>hello %s</h1>" % args.get("name")}
    if args.get("empty"):
        return {"body": ""}
    return {"greeting": "hello " + args.get("name", "?"), "method": args.get("__ow_method"),
            "agent": args.get("__ow_headers", {}).get("user-agent"), "path": args.get("__ow_path"),
            "activation": os.environ.get("__OW_ACTIVATION_ID")}
"#
        }
        _ => {
            r#"const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
function main(args) {
  if (args.image) return { statusCode: 201, headers: { "Content-Type": "image/png" }, body: PNG };
  if (args.html) return { body: `<h1>hello ${args.name}</h1>` };
  if (args.empty) return { body: "" };
  return { greeting: "hello " + (args.name || "?"), method: args.__ow_method,
           agent: (args.__ow_headers || {})["user-agent"], path: args.__ow_path,
           activation: process.env.__OW_ACTIVATION_ID };
}
"#
        }
    }
}

fn entrypoint(p: &Proxy, body: &Value) -> Answer {
    let mut c = p.connect();
    let bytes = body.to_string();
    c.send_request(
        "POST",
        "/",
        &[JSON_BODY, ("User-Agent", "knative-test")],
        bytes.as_bytes(),
    );
    c.read_answer()
}

#[test]
fn init_and_run_in_one_request_then_runs_alone() {
    for runtime in ["python", "nodejs"] {
        let p = knative(runtime, &[]);
        let both = entrypoint(
            &p,
            &json!({
                "init": {"name": "hello", "main": "main", "code": web_action(runtime), "binary": false},
                "activation": {"namespace": "ns", "action_name": "hello", "activation_id": "a-1"},
                "value": {"name": "Ada"}
            }),
        );
        assert_status(&p, runtime, &both, 200);
        assert_eq!(
            both.json(),
            json!({"greeting": "hello Ada", "method": "POST", "agent": "knative-test", "path": "", "activation": "a-1"}),
            "{runtime}"
        );
        assert_eq!(both.header("access-control-allow-origin"), Some("*"));
        // A run alone after that, with no activation: the value is the function's argument.
        let alone = entrypoint(&p, &json!({"value": {"name": "Bob"}}));
        assert_status(&p, runtime, &alone, 200);
        assert_eq!(alone.json()["greeting"], json!("hello Bob"), "{runtime}");
        // The invoker's routes are not there.
        assert_eq!(p.post("/run", b"{}").status, 404, "{runtime}");
    }
}

#[test]
fn a_web_actions_result_becomes_the_http_answer() {
    for runtime in ["python", "nodejs"] {
        let p = knative(runtime, &[]);
        let init = entrypoint(&p, &json!({"init": {"code": web_action(runtime)}}));
        assert_status(&p, runtime, &init, 200);
        let run = |value: Value| {
            entrypoint(
                &p,
                &json!({"activation": {"activation_id": "x"}, "value": value}),
            )
        };
        let image = run(json!({"image": true}));
        assert_eq!(image.status, 201, "{runtime}");
        assert_eq!(image.header("content-type"), Some("image/png"));
        assert!(
            image.body.starts_with(b"\x89PNG\r\n"),
            "{runtime}: decoded from base64"
        );
        let html = run(json!({"html": true, "name": "Ada"}));
        assert_eq!(html.status, 200);
        assert_eq!(html.header("content-type"), Some("text/html"));
        assert_eq!(html.text(), "<h1>hello Ada</h1>");
        let empty = run(json!({"empty": true}));
        assert_eq!(empty.status, 204, "{runtime}");
        assert!(empty.body.is_empty());
        p.framed_logs(3);
    }
}

#[test]
fn only_the_methods_named_are_served() {
    let p = knative("python", &[("__OW_HTTP_METHODS", "[GET,POST]")]);
    assert_status(
        &p,
        "init",
        &entrypoint(&p, &json!({"init": {"code": web_action("python")}})),
        200,
    );
    // A bare GET runs the action with no argument; the HTTP context comes with an activation.
    let get = p.request("GET", "/", b"");
    assert_eq!(get.status, 200, "{}", get.text());
    assert_eq!(get.json()["greeting"], json!("hello ?"));
    let with_context = p.request("GET", "/", br#"{"activation": {}, "value": {}}"#);
    assert_eq!(with_context.json()["method"], json!("GET"));
    let put = p.request("PUT", "/", b"{}");
    assert_eq!(put.status, 405, "{}", put.text());
}

// ---------------------------------------------------------------------------------------------
// Baked actions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_baked_action_answers_its_first_run_and_refuses_an_init() {
    for runtime in ["python", "nodejs"] {
        let code = web_action(runtime);
        let p = Proxy::start_with(
            runtime,
            &[("__OW_ACTION_CODE", code), ("__OW_ACTION_NAME", "baked")],
            &[],
        );
        assert_eq!(
            run_ok(&p, json!({"name": "Ada"}))["greeting"],
            json!("hello Ada"),
            "{runtime}"
        );
        let init = p.init_code(code, "main");
        assert_eq!(
            (init.status, init.error()),
            (403, ALREADY_INITIALIZED.to_string()),
            "{runtime}"
        );
        // On the single entrypoint too: a dedicated runtime takes no init.
        let k = knative(runtime, &[("__OW_ACTION_CODE", code)]);
        assert_eq!(
            entrypoint(&k, &json!({"value": {"name": "Bo"}})).json()["greeting"],
            json!("hello Bo")
        );
        let init = entrypoint(&k, &json!({"init": {"code": code}}));
        assert_eq!(init.status, 403, "{runtime}: {}", init.text());
    }
}

#[test]
fn a_baked_action_may_be_a_file_or_a_folder_of_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("action.py");
    std::fs::write(&file, web_action("python")).unwrap();
    let folder = dir.path().join("app");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("__main__.py"),
        "from helper import greet\ndef hello(a):\n    return {'greeting': greet()}\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("helper.py"),
        "def greet():\n    return 'from a folder'\n",
    )
    .unwrap();
    let p = Proxy::start_with("python", &[("OW_ACTION_FILE", file.to_str().unwrap())], &[]);
    assert_eq!(
        run_ok(&p, json!({"name": "F"}))["greeting"],
        json!("hello F")
    );
    let p = Proxy::start_with(
        "python",
        &[
            ("OW_ACTION_FILE", folder.to_str().unwrap()),
            ("__OW_ACTION_MAIN", "hello"),
        ],
        &[],
    );
    assert_eq!(run_ok(&p, json!({})), json!({"greeting": "from a folder"}));
}

#[test]
fn a_baked_action_that_cannot_start_stops_the_proxy_with_its_cause() {
    for (runtime, code) in [
        ("python", "def main(a):\n    return {\n"),
        ("nodejs", "function main( {"),
    ] {
        let output = std::process::Command::new(binary())
            .args(["--port", &free_port().to_string(), "--runtime", runtime])
            .env("__OW_ACTION_CODE", code)
            .current_dir(tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{runtime}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("the baked action cannot start"),
            "{runtime}: {stderr}"
        );
        assert!(stderr.contains("SyntaxError"), "{runtime}: {stderr}");
    }
}

/// Answers with what it got and the action name it runs as.
const ECHO_CONTEXT: &str = r#"import os
def main(args):
    return {"args": args, "action_name": os.environ.get("__OW_ACTION_NAME")}
"#;

#[test]
fn an_init_alone_is_answered_as_the_nodejs_runtime_does_and_a_run_before_it_is_refused() {
    let p = knative("python", &[]);
    let early = entrypoint(&p, &json!({"activation": {}, "value": {}}));
    assert_eq!(
        (early.status, early.error()),
        (403, "System not initialized.".to_string())
    );
    let init = entrypoint(&p, &json!({"init": {"main": "main", "code": ECHO_CONTEXT}}));
    assert_status(&p, "init", &init, 200);
    assert_eq!(init.json(), json!({"OK": true}));
}

#[test]
fn the_inits_name_names_the_action_and_its_raw_makes_a_raw_web_action() {
    let p = knative("python", &[]);
    let both = entrypoint(
        &p,
        &json!({
            "init": {"name": "from-init", "main": "main", "code": ECHO_CONTEXT, "raw": true},
            "activation": {"activation_id": "a-1"},
            "value": {"name": "Joe"}
        }),
    );
    assert_status(&p, "init and run", &both, 200);
    let got = both.json();
    assert_eq!(got["action_name"], json!("from-init"), "{got}");
    // Raw: the value comes as __ow_body, base64 of its JSON, with the query string.
    assert_eq!(
        got["args"]["__ow_body"],
        json!("eyJuYW1lIjoiSm9lIn0="),
        "{got}"
    );
    assert!(got["args"].get("__ow_query").is_some(), "{got}");
    // An activation that names the action keeps its own name.
    let named = entrypoint(
        &p,
        &json!({"activation": {"action_name": "own"}, "value": {}}),
    );
    assert_eq!(named.json()["action_name"], json!("own"));
}
