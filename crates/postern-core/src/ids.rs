//! Identifiers as they arrive from outside: client ids, login ids, session
//! ids and the subjects apps know their users by.
//!
//! Each is a [`Id`] of one [`IdKind`]: non-empty, at most the kind's length,
//! and free of control characters. An id that breaks these rules cannot
//! name anything Postern stores (it generates its own ids from a safe
//! alphabet and validates client ids at registration), so it is refused
//! where input is parsed and never reaches SQL. That matters beyond tidiness:
//! PostgreSQL rejects a NUL byte in text with an error, which would surface
//! as a 503 `temporarily_unavailable` where SQLite answers "unknown".
//!
//! [`Id::parse`] is the one rule; `Deserialize` applies it, so a field typed
//! `Option<SessionId>` refuses a bad value as malformed input. Where the
//! answer to a bad id must be the same as to an unknown one (an unknown
//! client at `/token` is 401 `invalid_client`, RFC 6749 §5.2), the handler
//! calls [`Id::parse`] itself and answers as for an unknown id.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// What one kind of identifier is called and how long it may be.
pub trait IdKind {
    /// Its name in error messages (`client_id`).
    const NAME: &'static str;
    /// Its longest accepted form, in bytes.
    const MAX_LEN: usize;
}

/// An identifier of kind `K` that passed [`Id::parse`]: 1 to `K::MAX_LEN`
/// bytes, no control characters.
pub struct Id<K: IdKind> {
    text: String,
    kind: PhantomData<fn() -> K>,
}

/// Why a presented identifier cannot name anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// Longer than its kind allows.
    #[error("{0} is too long")]
    TooLong(&'static str),
    /// Holds a control character (NUL, CR, LF, DEL, …).
    #[error("{0} contains a control character")]
    ControlCharacter(&'static str),
}

impl<K: IdKind> Id<K> {
    /// Checks `text` against the rules of kind `K`.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty(K::NAME));
        }
        if text.len() > K::MAX_LEN {
            return Err(IdError::TooLong(K::NAME));
        }
        if text.chars().any(char::is_control) {
            return Err(IdError::ControlCharacter(K::NAME));
        }
        Ok(Self {
            text: text.to_owned(),
            kind: PhantomData,
        })
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The identifier, owned.
    pub fn into_string(self) -> String {
        self.text
    }
}

impl<K: IdKind> Deref for Id<K> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl<K: IdKind> AsRef<str> for Id<K> {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        Self {
            text: self.text.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<K: IdKind> Eq for Id<K> {}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", K::NAME, self.text)
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The kind of [`ClientId`].
#[derive(Debug)]
pub enum ClientIdKind {}
impl IdKind for ClientIdKind {
    const NAME: &'static str = "client_id";
    const MAX_LEN: usize = 200;
}

/// An app's `client_id` (OAuth 2.0 client identifier).
pub type ClientId = Id<ClientIdKind>;

/// The kind of [`LoginId`].
#[derive(Debug)]
pub enum LoginIdKind {}
impl IdKind for LoginIdKind {
    const NAME: &'static str = "login_id";
    const MAX_LEN: usize = 64;
}

/// A login request's id (`/login/check?id=`, the headless `login_id`).
pub type LoginId = Id<LoginIdKind>;

/// The kind of [`SessionId`].
#[derive(Debug)]
pub enum SessionIdKind {}
impl IdKind for SessionIdKind {
    const NAME: &'static str = "session_id";
    const MAX_LEN: usize = 64;
}

/// A session's public id (the `sid` claim, `/account`'s sign-out form,
/// `DELETE /api/v1/sessions/{id}`).
pub type SessionId = Id<SessionIdKind>;

/// The kind of [`Subject`].
#[derive(Debug)]
pub enum SubjectIdKind {}
impl IdKind for SubjectIdKind {
    const NAME: &'static str = "user_id";
    const MAX_LEN: usize = 200;
}

/// The id an app knows a user by (the `sub` claim; pairwise or public).
pub type Subject = Id<SubjectIdKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_control_characters_emptiness_and_length() {
        let cases: [(&str, Result<(), IdError>); 9] = [
            ("abc-DEF_123", Ok(())),
            ("ünïcødé", Ok(())),
            ("", Err(IdError::Empty("login_id"))),
            ("\0", Err(IdError::ControlCharacter("login_id"))),
            ("a\0b", Err(IdError::ControlCharacter("login_id"))),
            ("a\r\nb", Err(IdError::ControlCharacter("login_id"))),
            ("tab\there", Err(IdError::ControlCharacter("login_id"))),
            ("del\u{7f}", Err(IdError::ControlCharacter("login_id"))),
            ("c1\u{85}", Err(IdError::ControlCharacter("login_id"))),
        ];
        for (input, expected) in cases {
            assert_eq!(LoginId::parse(input).map(|_| ()), expected, "{input:?}");
        }
        assert!(LoginId::parse(&"x".repeat(64)).is_ok());
        assert_eq!(
            LoginId::parse(&"x".repeat(65)).map(|_| ()),
            Err(IdError::TooLong("login_id"))
        );
        assert!(ClientId::parse(&"x".repeat(200)).is_ok());
        assert!(ClientId::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn deserializing_applies_the_same_rule() {
        #[derive(Debug, Deserialize)]
        struct Form {
            session_id: Option<SessionId>,
        }
        let ok: Form = serde_json::from_str(r#"{"session_id": "s-1"}"#).unwrap();
        assert_eq!(ok.session_id.as_deref(), Some("s-1"));
        let missing: Form = serde_json::from_str("{}").unwrap();
        assert!(missing.session_id.is_none());
        let err = serde_json::from_str::<Form>(r#"{"session_id": "a\u0000b"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("session_id contains a control character"),
            "{err}"
        );
    }
}
