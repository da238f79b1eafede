//! OpenID Connect helpers: a relying party built with the `openidconnect`
//! crate, a browser's trip through `/authorize`, `/login` and the emailed
//! link or code, raw calls to the token endpoints for the rule tests, and
//! JWT pieces for forging tokens.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreProviderMetadata,
    CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use reqwest::{Client, Response};
use serde_json::Value;

use super::{hidden_inputs, location, location_params, Email, TestApp, TestClient};

/// The `openidconnect` client type after discovery: authorization endpoint
/// set, token and userinfo endpoints from the metadata.
pub type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The relying party's back-channel HTTP client. It never follows
/// redirects, as openidconnect requires (SSRF).
pub fn back_channel() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A test OpenID Provider: public URL = listening address, default settings.
pub async fn spawn_oidc_app() -> TestApp {
    super::spawn_oidc_app_with(&[]).await
}

/// How the person proves the address on the hosted pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// Opens the emailed link in the asking browser (`amr: ["email"]`).
    Link,
    /// Types the emailed code on "check your email" (`amr: ["otp"]`).
    Code,
}

/// An authorization request as the relying party made it, with what it
/// keeps to check the answer.
pub struct AuthRequest {
    /// The `/authorize` URL.
    pub url: String,
    /// `state`.
    pub state: CsrfToken,
    /// `nonce`.
    pub nonce: Nonce,
    /// PKCE verifier, when a challenge was sent.
    pub verifier: Option<PkceCodeVerifier>,
}

/// A registered app acting as an OpenID relying party through `openidconnect`.
pub struct RelyingParty {
    /// The library's client, from discovery.
    pub oidc: OidcClient,
    /// Back channel.
    pub http: Client,
    /// The registration.
    pub app: TestClient,
    /// The server's issuer.
    pub issuer: String,
}

impl RelyingParty {
    /// An authorization request for `scopes` (`openid` is added by the
    /// library) with PKCE S256, `state`, `nonce` and `extra` parameters.
    pub fn auth_request(&self, scopes: &[&str], extra: &[(&str, &str)]) -> AuthRequest {
        self.build_auth_request(scopes, extra, true)
    }

    /// The same without a PKCE challenge.
    pub fn auth_request_without_pkce(
        &self,
        scopes: &[&str],
        extra: &[(&str, &str)],
    ) -> AuthRequest {
        self.build_auth_request(scopes, extra, false)
    }

    fn build_auth_request(
        &self,
        scopes: &[&str],
        extra: &[(&str, &str)],
        pkce: bool,
    ) -> AuthRequest {
        let mut req = self.oidc.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in scopes {
            req = req.add_scope(Scope::new((*s).to_owned()));
        }
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let verifier = if pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            Some(verifier)
        } else {
            None
        };
        let (url, state, nonce) = req.url();
        AuthRequest {
            url: url.to_string(),
            state,
            nonce,
            verifier,
        }
    }

    /// Exchanges `code` with the library (client authentication as
    /// registered, the verifier when there is one).
    pub async fn exchange(
        &self,
        code: &str,
        verifier: Option<PkceCodeVerifier>,
    ) -> CoreTokenResponse {
        let mut req = self
            .oidc
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .expect("a token endpoint in discovery");
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(v);
        }
        req.request_async(&self.http)
            .await
            .unwrap_or_else(|e| panic!("code exchange failed: {}", describe(&e)))
    }

    /// The `code` of a redirect back to this app, after checking that it
    /// goes to the registered redirect URI with the request's `state` and
    /// the issuer (RFC 9207).
    pub fn code_from(&self, res: &Response, req: &AuthRequest) -> String {
        let params = self.callback_params(res, req);
        params
            .get("code")
            .unwrap_or_else(|| panic!("no code in the redirect: {params:?}"))
            .clone()
    }

    /// The query of a redirect back to this app (code or error), after
    /// checking redirect URI, `state` and `iss`.
    pub fn callback_params(&self, res: &Response, req: &AuthRequest) -> BTreeMap<String, String> {
        assert_eq!(res.status(), 303, "the answer to the app is a 303");
        let to = location(res);
        assert!(
            to.starts_with(&format!("{}?", self.app.redirect_uri)),
            "redirected to {to}, not to {}",
            self.app.redirect_uri
        );
        let params = location_params(res);
        assert_eq!(
            params.get("state").map(String::as_str),
            Some(req.state.secret().as_str()),
            "state is echoed: {params:?}"
        );
        assert_eq!(
            params.get("iss").map(String::as_str),
            Some(self.issuer.as_str()),
            "iss is the issuer (RFC 9207): {params:?}"
        );
        params
    }
}

/// An error with its whole source chain, for assertion messages.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl TestApp {
    /// A client signed in to Postern as `email` the way a person signs in
    /// to `/account` (and so to `/admin`): one Postern browser session.
    pub async fn account_browser(&self, email: &str) -> Client {
        let b = super::browser();
        let res = b.get(self.url("/account")).send().await.unwrap();
        assert_eq!(res.status(), 303, "GET /account");
        let res = b.get(location(&res)).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let res = self
            .sign_in_at(&b, &location(&res), email, Proof::Link)
            .await;
        assert_eq!(res.status(), 303, "sign-in of {email}");
        let res = b.get(location(&res)).send().await.unwrap();
        assert_eq!(res.status(), 303, "the account callback");
        b
    }

    /// The issuer as a relying party configures it.
    pub fn issuer(&self) -> IssuerUrl {
        IssuerUrl::new(self.address.clone()).unwrap()
    }

    /// OIDC Discovery through the library (metadata and JWKS).
    pub async fn discover(&self) -> CoreProviderMetadata {
        CoreProviderMetadata::discover_async(self.issuer(), &back_channel())
            .await
            .unwrap_or_else(|e| panic!("discovery failed: {}", describe(&e)))
    }

    /// A relying party for `app`, configured by discovery: Basic client
    /// authentication (the library's default) with the secret when the app
    /// has one, none otherwise.
    pub async fn relying_party(&self, app: &TestClient) -> RelyingParty {
        self.relying_party_with_secret(app, app.secret.as_deref())
            .await
    }

    /// A relying party for `app` that presents `secret`.
    pub async fn relying_party_with_secret(
        &self,
        app: &TestClient,
        secret: Option<&str>,
    ) -> RelyingParty {
        let oidc = OidcClient::from_provider_metadata(
            self.discover().await,
            ClientId::new(app.client_id.clone()),
            secret.map(|s| ClientSecret::new(s.to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(app.redirect_uri.clone()).unwrap());
        RelyingParty {
            oidc,
            http: back_channel(),
            app: app.clone(),
            issuer: self.address.clone(),
        }
    }

    /// The library's ID-token verifier for `rp`, on the server's clock
    /// (which tests move) rather than the system's.
    pub fn id_token_verifier<'a>(&self, rp: &'a RelyingParty) -> CoreIdTokenVerifier<'a> {
        let clock = self.clock.clone();
        rp.oidc.id_token_verifier().set_time_fn(move || {
            use postern_core::Clock;
            (UNIX_EPOCH + Duration::from_secs(clock.now() as u64)).into()
        })
    }

    /// `GET` an `/authorize` URL in browser `b`.
    pub async fn authorize(&self, b: &Client, url: &str) -> Response {
        b.get(url).send().await.unwrap()
    }

    /// Fills the `/login` form that `login_url` shows for `email`, then
    /// proves the address with `proof` in the same browser. Returns the
    /// answer that ends the sign-in: a 303 to the app or the consent page.
    pub async fn sign_in_at(
        &self,
        b: &Client,
        login_url: &str,
        email: &str,
        proof: Proof,
    ) -> Response {
        let page = b.get(login_url).send().await.unwrap();
        assert_eq!(page.status(), 200, "GET {login_url}");
        let page = page.text().await.unwrap();
        let mut form = hidden_inputs(&page);
        assert!(
            form.iter().any(|(k, _)| k == "csrf_token"),
            "a csrf_token on /login"
        );
        form.push(("email".to_owned(), email.to_owned()));
        let before = self.inbox();
        let res = b.post(self.url("/login")).form(&form).send().await.unwrap();
        assert_eq!(
            res.status(),
            303,
            "POST /login: {}",
            res.text().await.unwrap()
        );
        let check = location(&res);
        let sent: Email = self.new_email_to(&before, email).await;
        match proof {
            Proof::Link => {
                let link = sent.link.expect("a link in the email");
                b.get(self.local(&link)).send().await.unwrap()
            }
            Proof::Code => {
                let login_id = check
                    .strip_prefix("/login/check?id=")
                    .unwrap_or_else(|| panic!("POST /login went to {check}"))
                    .to_owned();
                let page = b.get(self.url(&check)).send().await.unwrap();
                assert_eq!(page.status(), 200, "GET {check}");
                let page = page.text().await.unwrap();
                let csrf = super::form_field(&page, "csrf_token").expect("a csrf_token");
                let code = sent.code.expect("a code in the subject");
                b.post(self.url("/login/code"))
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("login_id", login_id.as_str()),
                        ("code", code.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
            }
        }
    }

    /// The whole front channel in browser `b` without a session: `/authorize`
    /// redirects to `/login`, the person signs in with `proof`; returns the
    /// answer that ends it (a 303 to the app, or the consent page).
    pub async fn sign_in_through_authorize(
        &self,
        b: &Client,
        req: &AuthRequest,
        email: &str,
        proof: Proof,
    ) -> Response {
        let res = self.authorize(b, &req.url).await;
        assert_eq!(res.status(), 303, "GET /authorize without a session");
        let login = location(&res);
        assert!(
            login.starts_with(&self.url("/login?")),
            "/authorize without a session goes to /login, not {login}"
        );
        self.sign_in_at(b, &login, email, proof).await
    }

    /// Signs `email` in for `rp` in a new browser by link and exchanges the
    /// code with the library. Returns the browser (now with a session), the
    /// request and the tokens.
    pub async fn signed_in(
        &self,
        rp: &RelyingParty,
        email: &str,
        scopes: &[&str],
    ) -> (Client, AuthRequest, CoreTokenResponse) {
        let b = super::browser();
        let mut req = rp.auth_request(scopes, &[]);
        let res = self
            .sign_in_through_authorize(&b, &req, email, Proof::Link)
            .await;
        let code = rp.code_from(&res, &req);
        let tokens = rp.exchange(&code, req.verifier.take()).await;
        (b, req, tokens)
    }

    /// A browser signed in as `email` for `app` by link, and the code of
    /// that sign-in (with this PKCE `challenge`, if any), for raw token calls.
    pub async fn raw_code(
        &self,
        app: &TestClient,
        email: &str,
        scope: &str,
        challenge: Option<&str>,
    ) -> (Client, String) {
        let b = super::browser();
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", app.redirect_uri.as_str()),
            ("scope", scope),
            ("state", "st-1"),
            ("nonce", "n-1"),
        ];
        if let Some(c) = challenge {
            q.push(("code_challenge", c));
            q.push(("code_challenge_method", "S256"));
        }
        let url = self.url(&format!(
            "/authorize?{}",
            serde_urlencoded::to_string(&q).unwrap()
        ));
        let res = self.authorize(&b, &url).await;
        assert_eq!(res.status(), 303, "GET /authorize");
        let res = self
            .sign_in_at(&b, &location(&res), email, Proof::Link)
            .await;
        assert_eq!(res.status(), 303, "sign-in ends at the app");
        let params = location_params(&res);
        (b, params.get("code").expect("a code").clone())
    }

    /// `POST /token` as `app` with its registered credentials (Basic for
    /// confidential apps, `client_id` in the form for public ones).
    pub async fn token(&self, app: &TestClient, form: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let mut req = back_channel().post(self.url("/token"));
        match &app.secret {
            Some(secret) => req = req.header("authorization", basic(&app.client_id, secret)),
            None => form.push(("client_id", app.client_id.as_str())),
        }
        req.form(&form).send().await.unwrap()
    }

    /// `POST /token` with `authorization_code` for `code`.
    pub async fn exchange_raw(
        &self,
        app: &TestClient,
        code: &str,
        verifier: Option<&str>,
    ) -> Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uri.as_str()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(app, &form).await
    }

    /// `POST /token` with `refresh_token`.
    pub async fn refresh_raw(&self, app: &TestClient, refresh_token: &str) -> Response {
        self.token(
            app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// `GET /userinfo` with a Bearer token.
    pub async fn userinfo(&self, access_token: &str) -> Response {
        back_channel()
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// `POST` to `/introspect` or `/revoke` as `app` (Basic).
    pub async fn token_endpoint(&self, path: &str, app: &TestClient, token: &str) -> Response {
        let mut req = back_channel().post(self.url(path));
        let mut form = vec![("token", token)];
        match &app.secret {
            Some(secret) => req = req.header("authorization", basic(&app.client_id, secret)),
            None => form.push(("client_id", app.client_id.as_str())),
        }
        req.form(&form).send().await.unwrap()
    }
}

/// An `Authorization: Basic` value with each part form-urlencoded first
/// (RFC 6749 §2.3.1).
pub fn basic(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        b64_standard(format!("{}:{}", enc(client_id), enc(secret)).as_bytes())
    )
}

// ---- JWT pieces ----------------------------------------------------------------

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// base64 with padding (RFC 4648 §4), as in `Authorization: Basic`.
pub fn b64_standard(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    b64_standard(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Decodes base64url without padding.
pub fn b64url_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {text}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a compact JWS");
    serde_json::from_slice(&b64url_decode(part)).expect("a JSON part")
}

/// A JWT's protected header.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// A JWT's claims (unverified).
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// A compact JWS made of `header` and `claims` with `signature` as its
/// third part (already base64url).
pub fn compact(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}
