//! Sign-in helpers: error bodies, forms on hosted pages, the hosted flow,
//! codes, cookies and app settings changes. Each helper does one HTTP step
//! the way a browser (or an app's server) would, and asserts only what the
//! step must always do, so tests stay about one behaviour each.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

use super::{browser, parse_email, Email, TestApp, TestClient, PUBLIC_URL};
use postern_core::AppSettings;
use postern_store::Queries;

/// Asserts the SPEC §3 error shape: exactly `error` and a non-empty
/// `error_description`, both strings.
pub fn assert_error_shape(body: &Value, context: &str) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("{context}: not a JSON object: {body}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error", "error_description"], "{context}: {body}");
    assert!(
        obj["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{context}: {body}"
    );
    assert!(
        obj["error_description"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{context}: {body}"
    );
}

/// A JSON error answer: its status and body, after checking the shape.
pub async fn json_error(res: Response, context: &str) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{context}: the body is not JSON ({e}): {text}"));
    assert_error_shape(&body, context);
    (status, body)
}

/// Asserts a JSON error with this status and `error` code; returns the body.
pub async fn expect_error(res: Response, status: u16, code: &str, context: &str) -> Value {
    let (got, body) = json_error(res, context).await;
    assert_eq!(
        (got.as_u16(), body["error"].as_str().unwrap()),
        (status, code),
        "{context}: {body}"
    );
    body
}

/// Undoes askama's HTML escaping.
pub fn html_unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#38;", "&")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text a page shows: tags removed, escaping undone. Addresses are
/// marked up to break only after `@` and `.`, so tests that look for an
/// address in a page read its text, not its HTML.
pub fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    html_unescape(&text)
}

/// The `value` of the (first) `<input>` named `name`, whatever the
/// attribute order; `None` when there is no such input or it has no value.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(html_unescape(&tag[v..v + len]))
}

/// Every `<input type="hidden">` of a page, in order.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input type=\"hidden\"") {
        let tag_end = rest[i..].find('>').map(|e| i + e).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        let attr = |a: &str| {
            let s = tag.find(&format!("{a}=\""))? + a.len() + 2;
            let len = tag[s..].find('"')?;
            Some(html_unescape(&tag[s..s + len]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
        rest = &rest[tag_end..];
    }
    out
}

/// The `Set-Cookie` header that sets `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The `Location` header of a redirect, as sent.
pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header on a {} answer", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A 6-digit code that is not `code`.
pub fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().expect("a 6-digit code");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// A browser's progress through the hosted pages: it asked for a link for
/// `login_id` and holds the binding and CSRF cookies.
#[derive(Clone)]
pub struct Hosted {
    /// The asking browser.
    pub browser: Client,
    /// The login request (`/login/check?id=`).
    pub login_id: String,
    /// The browser's CSRF token for forms.
    pub csrf: String,
}

/// The email files present at one moment, to tell which arrive later.
#[derive(Debug, Clone, Default)]
pub struct Inbox(BTreeSet<PathBuf>);

impl TestApp {
    fn email_files(&self) -> BTreeSet<PathBuf> {
        std::fs::read_dir(&self.mail_dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The emails delivered so far (wait for earlier ones before taking it).
    pub fn inbox(&self) -> Inbox {
        Inbox(self.email_files())
    }

    /// The first email to `to` delivered after `before` was taken, waiting
    /// up to 5 s for it.
    pub async fn new_email_to(&self, before: &Inbox, to: &str) -> Email {
        for _ in 0..250 {
            let found = self
                .email_files()
                .difference(&before.0)
                .map(|p| parse_email(&std::fs::read(p).unwrap()))
                .find(|e| e.to == to);
            if let Some(e) = found {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no new email to {to}");
    }

    /// Changes a registered app's settings in the store.
    pub async fn update_app(&self, client: &TestClient, change: impl FnOnce(&mut AppSettings)) {
        let mut conn = self.state.store.conn().await.unwrap();
        let mut app = conn
            .app(&client.client_id)
            .await
            .unwrap()
            .expect("the app exists");
        change(&mut app.settings);
        assert!(conn.update_app(&app).await.unwrap());
    }

    /// The rows `sql` returns, each column as text (integers in decimal,
    /// NULL as `"NULL"`).
    pub async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::Row;
        let mut conn = self.state.store.conn().await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut *conn).await.unwrap();
        rows.iter()
            .map(|row| {
                (0..row.columns().len())
                    .map(|i| {
                        if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                            v.unwrap_or_else(|| "NULL".to_owned())
                        } else {
                            row.try_get::<Option<i64>, _>(i)
                                .unwrap()
                                .map_or_else(|| "NULL".to_owned(), |n| n.to_string())
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// `POST /request-magic-link` from `b` as a page of ours would send it
    /// (same origin), so the browser gets bound to the request.
    pub async fn request_link_same_origin(
        &self,
        b: &Client,
        client: &TestClient,
        email: &str,
    ) -> Response {
        b.post(self.url("/request-magic-link"))
            .header("origin", PUBLIC_URL)
            .json(&self.link_body(client, email))
            .send()
            .await
            .unwrap()
    }

    /// `POST /request-magic-link` with a form body.
    pub async fn request_link_form(&self, b: &Client, fields: &[(&str, &str)]) -> Response {
        b.post(self.url("/request-magic-link"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// The link in the newest email to `to`, pointed at this server. Only
    /// for the first email to an address: use [`TestApp::new_email_to`] for later ones.
    pub async fn link_for(&self, to: &str) -> String {
        let email = self.last_email_to(to).await;
        self.local(
            email
                .link
                .as_deref()
                .unwrap_or_else(|| panic!("no link in: {}", email.text)),
        )
    }

    /// The code in the newest email to `to` (first email only, as [`TestApp::link_for`]).
    pub async fn code_for(&self, to: &str) -> String {
        let email = self.last_email_to(to).await;
        email
            .code
            .unwrap_or_else(|| panic!("no code in: {}", email.subject))
    }

    /// `GET path` asking for JSON errors.
    pub async fn get_json(&self, b: &Client, url: &str) -> Response {
        b.get(url)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
    }

    /// The `/login` query for `client` with `state=st-123`, plus `extra`.
    pub fn login_query(&self, client: &TestClient, extra: &[(&str, &str)]) -> String {
        let mut q = vec![
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", "openid email"),
            ("state", "st-123"),
            ("nonce", "n-456"),
        ];
        q.extend_from_slice(extra);
        serde_urlencoded::to_string(q).unwrap()
    }

    /// `GET /login` for `client` in `b`; asserts 200 and returns the page.
    pub async fn login_page(
        &self,
        b: &Client,
        client: &TestClient,
        extra: &[(&str, &str)],
    ) -> String {
        let res = b
            .get(self.url(&format!("/login?{}", self.login_query(client, extra))))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "GET /login");
        res.text().await.unwrap()
    }

    /// The CSRF token `b`'s forms carry (from the `/login` page).
    pub async fn csrf_of(&self, b: &Client, client: &TestClient) -> String {
        let page = self.login_page(b, client, &[]).await;
        input_value(&page, "csrf_token").expect("a csrf_token field on /login")
    }

    /// Submits the `/login` form of `b` for `email`; the raw answer.
    pub async fn submit_login(&self, b: &Client, client: &TestClient, email: &str) -> Response {
        let page = self.login_page(b, client, &[]).await;
        let mut form = hidden_inputs(&page);
        form.push(("email".to_owned(), email.to_owned()));
        b.post(self.url("/login")).form(&form).send().await.unwrap()
    }

    /// The hosted flow up to "check your email" in `b`; the request's email
    /// arrives later (take an [`Inbox`] first to find it).
    pub async fn hosted_request_in(&self, b: &Client, client: &TestClient, email: &str) -> Hosted {
        let res = self.submit_login(b, client, email).await;
        assert_eq!(
            res.status(),
            303,
            "POST /login: {}",
            res.text().await.unwrap()
        );
        let loc = location(&res);
        let login_id = loc
            .strip_prefix("/login/check?id=")
            .unwrap_or_else(|| panic!("POST /login went to {loc}"))
            .to_owned();
        let csrf = self.csrf_of(b, client).await;
        Hosted {
            browser: b.clone(),
            login_id,
            csrf,
        }
    }

    /// The hosted flow up to "check your email" in a new browser.
    pub async fn hosted_request(&self, client: &TestClient, email: &str) -> Hosted {
        self.hosted_request_in(&browser(), client, email).await
    }

    /// The hosted flow up to "check your email" in `b`, with the email it
    /// sent (earlier emails to `email` must have arrived already).
    pub async fn hosted_request_with_email(
        &self,
        b: &Client,
        client: &TestClient,
        email: &str,
    ) -> (Hosted, Email) {
        let before = self.inbox();
        let h = self.hosted_request_in(b, client, email).await;
        let sent = self.new_email_to(&before, email).await;
        (h, sent)
    }

    /// `POST /login/code` from `h`'s browser, asking for JSON errors.
    pub async fn submit_code(&self, h: &Hosted, code: &str) -> Response {
        h.browser
            .post(self.url("/login/code"))
            .header("accept", "application/json")
            .form(&[
                ("csrf_token", h.csrf.as_str()),
                ("login_id", h.login_id.as_str()),
                ("code", code),
            ])
            .send()
            .await
            .unwrap()
    }

    /// An email to `to_masked` about `client_id` that the mail server
    /// refused for good (a failed outbox item); returns its id. Queued in
    /// one transaction, so the outbox worker never sees it pending.
    pub async fn failed_email(&self, id: &str, client_id: &str, to_masked: &str) -> String {
        use postern_store::AdminQueries;
        let now = self.clock_now();
        let mut tx = self.state.store.begin().await.unwrap();
        tx.insert_outbox(id, "<m@x>", "sealed", now, now + 900)
            .await
            .unwrap();
        tx.set_outbox_meta(id, Some(client_id), to_masked)
            .await
            .unwrap();
        tx.outbox_failed(id, now, "550 5.1.1 mailbox unknown")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id.to_owned()
    }

    /// A passkey of `user_id` named `name`, stored as registration stores
    /// one (its credential is a placeholder: it is for showing, not using).
    pub async fn stored_passkey(&self, user_id: &str, id: &str, name: &str) {
        use postern_store::{PasskeyQueries as _, StoredPasskey};
        let now = self.clock_now();
        self.state
            .store
            .conn()
            .await
            .unwrap()
            .insert_passkey(&StoredPasskey {
                id: id.to_owned(),
                user_id: user_id.to_owned(),
                credential_id: format!("Y3JlZC{id}"),
                user_handle: "00000000-0000-0000-0000-000000000000".to_owned(),
                passkey: "{}".to_owned(),
                sign_count: 3,
                backup_eligible: true,
                backup_state: true,
                transports: Some("internal,hybrid".to_owned()),
                name: name.to_owned(),
                created_at: now,
                last_used_at: Some(now),
            })
            .await
            .unwrap();
    }

    /// Signs `email` in once through the asking browser's link; returns
    /// the browser (which now holds a session).
    pub async fn sign_in(&self, client: &TestClient, email: &str) -> Client {
        let before = self.inbox();
        let b = self.request_link_in_browser(client, email).await;
        let sent = self.new_email_to(&before, email).await;
        let link = self.local(sent.link.as_deref().expect("a link"));
        let res = b.get(&link).send().await.unwrap();
        assert_eq!(
            res.status(),
            303,
            "sign-in of {email}: {}",
            res.text().await.unwrap()
        );
        b
    }
}
