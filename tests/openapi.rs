//! The API described: `GET /v1/openapi.json` is an OpenAPI 3.1 document that holds every
//! operation the router serves, read from the router's own `.route(...)` calls in `src/http/`,
//! each with its parameters, who may call it, and the refusal body.

mod common;

use std::collections::BTreeSet;

use common::server::{self, As};
use serde_json::Value;

/// Every (method, path) the router registers, read from `src/http/*.rs`: each
/// `.route("PATH", method(handler).other(handler)…)` call. CORS preflights (`options`) are the
/// browser's, not operations of the API.
fn routed() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // The file's own code, not its unit tests' routers.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for call in code.split(".route(").skip(1) {
            let path = call.split('"').nth(1).unwrap().to_string();
            // The method routers of this call: up to the call's closing parenthesis.
            let mut depth = 1;
            let body: String = call
                .chars()
                .take_while(|c| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth > 0
                })
                .collect();
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = body.contains(&format!("{method}("))
                    && (body.contains(&format!(" {method}("))
                        || body.contains(&format!(".{method}("))
                        || body.contains(&format!("::{method}("))
                        || body.contains(&format!("\n{method}(")));
                if called {
                    out.insert((method.to_string(), path.clone()));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let s = server::start(|_| {}).await;
    let (st, doc) = s.call("GET", "/v1/openapi.json", As::Nobody, None).await;
    assert_eq!(st, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let routes = routed();
    assert!(
        routes.len() > 50,
        "the router's routes were read: {routes:?}"
    );
    let mut missing = Vec::new();
    for (method, path) in &routes {
        if doc["paths"][path][method].is_null() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(missing.is_empty(), "not in /v1/openapi.json: {missing:#?}");
    // And nothing described that is not served.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if method == "parameters" {
                continue;
            }
            assert!(
                routes.contains(&(method.clone(), path.clone())),
                "{method} {path} is described but not routed"
            );
        }
    }
}

#[tokio::test]
async fn each_operation_names_its_path_parameters_its_credentials_and_its_refusals() {
    let s = server::start(|_| {}).await;
    let (_, doc) = s.call("GET", "/v1/openapi.json", As::Nobody, None).await;
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for scheme in [
        "service_token",
        "operator_token",
        "recruiter_key",
        "ingest_token",
        "session_cookie",
    ] {
        assert!(schemes.contains_key(scheme), "{scheme}");
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let wanted: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|p| p.split('}').next().unwrap().to_string())
            .collect();
        for (method, op) in ops.as_object().unwrap() {
            let named: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(named, wanted, "{method} {path}: path parameters");
            for scheme in op["security"].as_array().into_iter().flatten() {
                for name in scheme.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name}");
                }
            }
        }
    }
    // A body the handler parses is described from its type.
    let grant = &doc["paths"]["/v1/me/consents"]["post"];
    let body = &grant["requestBody"]["content"]["application/json"]["schema"];
    let schema = resolve(&doc, body);
    assert!(schema["properties"]["scope"].is_object(), "{schema}");
    let request = resolve(
        &doc,
        &doc["paths"]["/v1/me/requests"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    );
    let kind = resolve(&doc, &request["properties"]["kind"]);
    assert_eq!(
        kind["enum"],
        serde_json::json!(["disclosure", "erasure"]),
        "{request}"
    );
    // The sharing grant needs the candidate's session, and says so.
    assert_eq!(
        grant["security"][0]["session_cookie"],
        serde_json::json!([])
    );
    assert!(!doc["paths"]["/v1/candidates/{id}/consents"]["post"]["responses"]["4XX"].is_null());
}

/// A schema, following a `$ref` into the components.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}
