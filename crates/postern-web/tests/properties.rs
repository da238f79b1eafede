//! Property tests of the web layer's parsers of untrusted input: JSON and
//! form bodies (through the extractors every handler uses, with the body
//! limit of the real router) and `Authorization: Basic` client credentials.
//! Thousands of generated inputs each; never a panic, never a 5xx, and every
//! refusal in the SPEC's error shape.

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use postern_auth::headless::{LinkRequest, VerifyRequest};
use postern_auth::oidc::TokenRequest;
use postern_auth::signin::RawAuthParams;
use postern_web::extract::{client_credentials, AppForm, JsonOrForm, MAX_BODY};
use proptest::prelude::*;
use tower::ServiceExt as _;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 1_000,
        ..ProptestConfig::default()
    }
}

/// Routes whose handlers only extract, as the real ones do first.
fn router() -> Router {
    Router::new()
        .route(
            "/auth",
            post(|JsonOrForm(_): JsonOrForm<RawAuthParams>| async { "ok" }),
        )
        .route(
            "/link",
            post(|JsonOrForm(_): JsonOrForm<LinkRequest>| async { "ok" }),
        )
        .route(
            "/verify",
            post(|JsonOrForm(_): JsonOrForm<VerifyRequest>| async { "ok" }),
        )
        .route(
            "/token",
            post(|AppForm(_): AppForm<TokenRequest>| async { "ok" }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        Just("APPLICATION/JSON".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("application/problem+json".to_owned()),
        Just("text/plain".to_owned()),
        Just("multipart/form-data; boundary=x".to_owned()),
        "[ -~]{0,30}",
    ])
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        Just(json!("a@example.com")),
        Just(json!("\u{0}\r\n")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("email".to_owned()),
                    Just("client_id".to_owned()),
                    Just("redirect_uri".to_owned()),
                    Just("token".to_owned()),
                    Just("code".to_owned()),
                    Just("login_id".to_owned()),
                    Just("ip".to_owned()),
                    Just("grant_type".to_owned()),
                    ".{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => proptest::collection::vec(
            ("[a-z_]{0,12}", ".{0,20}"),
            0..6
        )
        .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap().into_bytes()),
        1 => "[ -~%&=+]{0,80}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => (1usize..3).prop_map(|n| vec![b'a'; MAX_BODY * n + 1]),
    ]
}

proptest! {
    #![proptest_config(config(3_000))]

    /// Whatever the body and content type, the answer is 200 or a 4xx
    /// (400 malformed, 413 too large, 415 neither JSON nor a form) in the
    /// `{"error", "error_description"}` shape, never a 5xx or a panic.
    #[test]
    fn bodies_are_read_or_refused_in_the_error_shape(
        path in prop_oneof![Just("/auth"), Just("/link"), Just("/verify"), Just("/token")],
        content_type in content_type(),
        body in body(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (status, text) = rt.block_on(async {
            let mut req = Request::post(path);
            if let Some(ct) = &content_type {
                if let Ok(v) = axum::http::HeaderValue::from_str(ct) {
                    req = req.header("content-type", v);
                }
            }
            let res = router()
                .oneshot(req.body(Body::from(body.clone())).unwrap())
                .await
                .unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        if status == StatusCode::OK {
            return Ok(());
        }
        prop_assert!(
            [StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::UNSUPPORTED_MEDIA_TYPE]
                .contains(&status),
            "{} {}", status, text
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert!(v["error"].is_string() && v["error_description"].is_string(), "{}", text);
        if body.len() > MAX_BODY {
            prop_assert!(status != StatusCode::OK);
        }
    }

    /// `Authorization: Basic` (RFC 6749 §2.3.1): any header is read or
    /// refused without a panic; what is read is the form-decoded id and
    /// secret that were encoded, and a form id that disagrees is refused.
    #[test]
    fn basic_client_credentials_round_trip(
        id in ".{0,30}",
        secret in ".{0,40}",
        junk in prop_oneof![".{0,40}", "[A-Za-z0-9+/=]{0,40}"],
        form_id in proptest::option::of(".{0,10}"),
        scheme in prop_oneof![Just("Basic "), Just("basic "), Just("BASIC "), Just("Bearer "), Just("")],
    ) {
        let _ = client_credentials(Some(&junk), form_id.as_deref(), None);
        let _ = client_credentials(Some(&format!("{scheme}{junk}")), None, None);
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let header = format!("{scheme}{}", STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret))));
        let read = client_credentials(Some(&header), form_id.as_deref(), None);
        if !scheme.eq_ignore_ascii_case("basic ") {
            prop_assert!(read.is_err());
            return Ok(());
        }
        match read {
            Ok(c) => {
                prop_assert_eq!(c.client_id.as_deref(), Some(id.as_str()));
                prop_assert_eq!(c.client_secret.as_deref(), Some(secret.as_str()));
                prop_assert!(form_id.as_deref().is_none_or(|f| f == id));
            }
            Err(_) => prop_assert!(form_id.as_deref().is_some_and(|f| f != id)),
        }
    }
}
