//! The answer an app gets at its redirect URI (RFC 6749 §4.1.2 and
//! §4.1.2.1, RFC 9207 `iss`): a code, or an error the app can act on.

use url::Url;

/// What the app is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An authorization code.
    Code(String),
    /// An OAuth error code (`access_denied`, `login_required`, ...) and a
    /// sentence for the app's developer.
    Error {
        /// RFC 6749 §4.1.2.1 / OIDC Core §3.1.2.6 error code.
        error: &'static str,
        /// `error_description`.
        description: String,
    },
}

/// An authorization response, addressed to a redirect URI that was
/// validated against the app's registered ones before this was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// The app's `state`, echoed.
    pub state: Option<String>,
    /// Postern's issuer (RFC 9207).
    pub issuer: String,
    /// The code or the error.
    pub answer: Answer,
}

impl AuthorizationResponse {
    /// A code for the app.
    pub fn code(redirect_uri: &str, state: Option<&str>, issuer: String, code: String) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            state: state.map(str::to_owned),
            issuer,
            answer: Answer::Code(code),
        }
    }

    /// An error for the app.
    pub fn error(
        redirect_uri: &str,
        state: Option<&str>,
        issuer: String,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            state: state.map(str::to_owned),
            issuer,
            answer: Answer::Error {
                error,
                description: description.into(),
            },
        }
    }

    /// The code, if this carries one.
    pub fn code_value(&self) -> Option<&str> {
        match &self.answer {
            Answer::Code(c) => Some(c),
            Answer::Error { .. } => None,
        }
    }

    /// The redirect URI with the answer, `state` and `iss` added to its query.
    pub fn to_url(&self) -> String {
        let Ok(mut url) = Url::parse(&self.redirect_uri) else {
            return self.redirect_uri.clone();
        };
        {
            let mut q = url.query_pairs_mut();
            match &self.answer {
                Answer::Code(code) => {
                    q.append_pair("code", code);
                }
                Answer::Error { error, description } => {
                    q.append_pair("error", error);
                    q.append_pair("error_description", description);
                }
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.issuer);
        }
        url.to_string()
    }
}
