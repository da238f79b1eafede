//! `GET /openapi.json` (SPEC §3.6): an OpenAPI 3.1 document, generated
//! from the code, that describes exactly the JSON routes the router serves
//! (`postern_web::json_routes`, the tables the router is built from), each
//! with its security, its answers and the SPEC §3 error shape, and whose
//! every reference resolves. `scripts/schemathesis` checks the live
//! server's answers against it.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let res = reqwest::get(app.url("/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "served as JSON"
    );
    res.json().await.unwrap()
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_describes_exactly_the_json_routes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().expect("an openapi member");
    assert!(version.starts_with("3.1"), "OpenAPI 3.1, not {version}");
    assert_eq!(doc["info"]["title"], "Postern");
    assert_eq!(
        doc["servers"][0]["url"], PUBLIC_URL,
        "the server is the public URL"
    );

    let served: BTreeSet<(String, String)> = postern::serve::json_routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    assert!(served.len() >= 40, "the tables list {}", served.len());
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| ((*m).to_owned(), path.clone()))
        })
        .collect();
    let undocumented: Vec<_> = served.difference(&described).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in /openapi.json: {undocumented:?}"
    );
    let phantom: Vec<_> = described.difference(&served).collect();
    assert!(
        phantom.is_empty(),
        "in /openapi.json but not served: {phantom:?}"
    );
    // Every admin API route and every headless one by name, so a table
    // that lost a line fails here too.
    for (m, p) in postern_admin_web::api::ROUTES {
        let path = format!("{}{p}", postern_admin_web::api::PREFIX);
        assert!(
            !doc["paths"][&path][m].is_null(),
            "admin {m} {path} is described"
        );
    }
    for (m, p) in postern_web::routes::headless::ROUTES {
        assert!(
            !doc["paths"][p][m].is_null(),
            "headless {m} {p} is described"
        );
    }
}

#[tokio::test]
async fn every_operation_names_its_security_answers_and_error_shape() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["client_basic"]["type"], "http");
    assert_eq!(schemes["client_basic"]["scheme"], "basic");
    assert_eq!(schemes["admin_token"]["type"], "http");
    assert_eq!(schemes["admin_token"]["scheme"], "bearer");
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error["required"],
        serde_json::json!(["error", "error_description"]),
        "the SPEC §3 error shape: {error}"
    );

    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let name = format!("{m} {path}");
            let security: Vec<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s.as_object().unwrap().keys().cloned())
                .collect();
            let wants = if path.starts_with("/admin/api/") {
                Some("admin_token")
            } else if path.starts_with("/api/v1/") || path == "/introspect" {
                Some("client_basic")
            } else {
                None
            };
            if let Some(scheme) = wants {
                if !security.iter().any(|s| s == scheme) {
                    problems.push(format!("{name}: no {scheme} security"));
                }
            }
            let responses = op["responses"].as_object().unwrap();
            if !responses.keys().any(|s| s.starts_with('2')) {
                problems.push(format!("{name}: no success answer"));
            }
            for (status, res) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &res["content"]["application/json"]["schema"]["$ref"];
                    if schema != "#/components/schemas/ErrorBody" {
                        problems.push(format!("{name}: {status} is not the error shape"));
                    }
                }
            }
            if op.get("requestBody").is_some() && !responses.contains_key("413") {
                problems.push(format!("{name}: a body but no 413"));
            }
            // Each `{param}` of the path is a declared path parameter.
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for seg in path.split('/') {
                if let Some(p) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if !declared.contains(p) {
                        problems.push(format!("{name}: path parameter {p} undeclared"));
                    }
                }
            }
        }
    }
    // 429 is listed where a limit can refuse.
    for (m, p) in [
        ("post", "/request-magic-link"),
        ("post", "/api/v1/magic-links"),
    ] {
        if doc["paths"][p][m]["responses"]["429"].is_null() {
            problems.push(format!("{m} {p}: no 429"));
        }
    }
    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or(r);
        if doc.pointer(pointer).is_none() {
            problems.push(format!("dangling $ref {r}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_document_matches_what_the_server_answers() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    // A live answer of each kind has the members its schema requires.
    let schemas = &doc["components"]["schemas"];
    let required = |name: &str| -> Vec<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has required members"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for member in required("Discovery") {
        assert!(!discovery[&member].is_null(), "discovery has {member}");
    }
    let jwks: Value = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        for member in required("Jwk") {
            assert!(!key[&member].is_null(), "a JWK has {member}");
        }
    }
    // An error answer has the shape the document gives.
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/magic-links"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    for member in required("ErrorBody") {
        assert!(body[&member].is_string(), "the error has {member}");
    }
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_400_in_the_error_shape() {
    // Found while fuzzing the document's path parameters: axum's own
    // rejection answered `Invalid URL: Invalid UTF-8 in `client_id`` as
    // plain text.
    let app = spawn_app().await;
    let token = postern_auth::admin::tokens::create(
        &app.state,
        &postern_auth::admin::Principal::cli(),
        "openapi",
        None,
    )
    .await
    .unwrap()
    .token;
    let client = app.create_app(|_| {}).await;
    let http = reqwest::Client::new();
    let cases = [
        (
            http.get(app.url("/admin/api/v1/apps/%FF"))
                .bearer_auth(&token),
            "admin API",
        ),
        (
            http.delete(app.url("/admin/api/v1/users/%C3%28"))
                .bearer_auth(&token),
            "admin API delete",
        ),
        (
            http.delete(app.url("/api/v1/sessions/%FF"))
                .basic_auth(&client.client_id, client.secret.as_deref()),
            "headless API",
        ),
        (http.get(app.url("/static/brand/%FF")), "a static asset"),
    ];
    for (req, what) in cases {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 400, "{what}");
        let body: Value = res.json().await.expect("JSON, not axum's text");
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        assert!(body["error_description"].is_string(), "{what}");
    }
}
