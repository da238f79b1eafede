//! DKIM signing (RFC 6376) of every outgoing message, when
//! `POSTERN_DKIM_KEY_FILE`, `POSTERN_DKIM_SELECTOR` and `POSTERN_DKIM_DOMAIN`
//! are set.
//!
//! Keys are PEM files as `openssl` writes them: RSA (`BEGIN RSA PRIVATE
//! KEY` or `BEGIN PRIVATE KEY`, 2048 to 8192 bits; RFC 8301) or Ed25519
//! (`BEGIN PRIVATE KEY`, RFC 8463). Signatures use relaxed/relaxed
//! canonicalization, which survives the header re-folding and whitespace
//! changes relays make.
//!
//! The signature is computed here over the message exactly as it is sent
//! (`Message::formatted`), on aws-lc-rs, the workspace's one crypto library:
//! `rsa-sha256` is RSASSA-PKCS1-v1_5 over the canonical headers,
//! `ed25519-sha256` is Ed25519 over their SHA-256 hash (RFC 8463 §3).

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::Message;
use pkcs8::ObjectIdentifier;
use thiserror::Error;

/// Headers covered by the signature, when present: everything a reader
/// sees or a mail system acts on. Each appears exactly once in our messages.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Auto-Submitted",
];

/// `rsaEncryption` (RFC 8017 §A.1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-Ed25519` (RFC 8410 §3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why a DKIM key or setting was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DkimError {
    /// The file is not a PEM private key of a supported kind.
    #[error(
        "not an RSA or Ed25519 private key in PEM form (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY); \
         create one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` \
         or `openssl genpkey -algorithm ed25519`"
    )]
    UnsupportedKey,
    /// The key is damaged.
    #[error("the private key could not be read: {0}")]
    BadKey(&'static str),
    /// An RSA key outside 2048–8192 bits (RFC 8301 §3.2 asks for at least
    /// 2048; aws-lc-rs signs with nothing smaller).
    #[error("the RSA key is {0} than DKIM signing accepts: use 2048 to 8192 bits (2048 is usual)")]
    KeySize(&'static str),
    /// The key file could not be read.
    #[error("cannot read {0}")]
    Unreadable(String),
    /// A selector or domain that is not a DNS name.
    #[error("{0:?} is not a DNS name (letters, digits, hyphens and dots)")]
    BadName(String),
}

/// A private key that signs.
enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A loaded DKIM key with its selector and signing domain.
pub struct Dkim {
    key: Key,
    selector: String,
    domain: String,
}

impl fmt::Debug for Dkim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dkim")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// Loads `pem` (RSA or Ed25519, see the module) to sign as
    /// `d=domain; s=selector`.
    pub fn from_pem(selector: &str, domain: &str, pem: &str) -> Result<Self, DkimError> {
        let selector = dns_name(selector)?;
        let domain = dns_name(domain)?.to_ascii_lowercase();
        let key = load_key(pem)?;
        Ok(Self {
            key,
            selector,
            domain,
        })
    }

    /// Reads the PEM key file at `path` (see [`Dkim::from_pem`]).
    pub fn from_file(selector: &str, domain: &str, path: &Path) -> Result<Self, DkimError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| DkimError::Unreadable(format!("{}: {e}", path.display())))?;
        Self::from_pem(selector, domain, &pem)
    }

    /// Adds a `DKIM-Signature` header to `message`, signed at `now` (Unix
    /// seconds, the `t=` tag).
    pub fn sign(&self, message: &mut Message, now: i64) {
        let value = self.signature(&message.formatted(), now);
        // Pre-encoded: the value is ASCII and folded by `signature`.
        message
            .headers_mut()
            .insert_raw(HeaderValue::dangerous_new_pre_encoded(
                HeaderName::new_from_ascii_str("DKIM-Signature"),
                value.clone(),
                value,
            ));
    }

    /// The value of the `DKIM-Signature` header for `message`, the bytes of
    /// a whole message (headers, empty line, body, CRLF line ends).
    pub fn signature(&self, message: &[u8], now: i64) -> String {
        let (head, body) = split_message(message);
        let body_hash = B64.encode(digest(&SHA256, &canonical_body(body)));
        let fields = header_fields(head);
        let mut signed = Vec::new();
        let mut names = Vec::new();
        for name in SIGNED_HEADERS {
            // RFC 6376 §5.4.2: the last instance of a header is signed first.
            if let Some((field, value)) = fields
                .iter()
                .rev()
                .find(|(field, _)| field.eq_ignore_ascii_case(name))
            {
                signed.extend_from_slice(canonical_header(field, value).as_bytes());
                signed.extend_from_slice(b"\r\n");
                names.push(name.to_ascii_lowercase());
            }
        }
        let unsigned = format!(
            "v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n\tt={now}; h={};\r\n\tbh={body_hash};\r\n\tb=",
            self.algorithm(),
            self.domain,
            self.selector,
            names.join(":"),
        );
        // §3.7: the signature header itself, with an empty b=, last and
        // without its CRLF.
        signed.extend_from_slice(canonical_header("DKIM-Signature", &unsigned).as_bytes());
        let signature = match &self.key {
            Key::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &signed, &mut out)
                    .expect("RSA signing with a checked key");
                out
            }
            Key::Ed25519(pair) => pair
                .sign(digest(&SHA256, &signed).as_ref())
                .as_ref()
                .to_vec(),
        };
        // Folded every 72 characters: whitespace inside b= is ignored (§3.5).
        let b64 = B64.encode(signature);
        let folded: Vec<&str> = b64
            .as_bytes()
            .chunks(72)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!("{unsigned}{}", folded.join("\r\n\t"))
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }
}

/// `name` as a DKIM selector or signing domain: DNS labels of letters,
/// digits, hyphens and underscores, without the trailing dot.
pub fn dns_name(name: &str) -> Result<String, DkimError> {
    let name = name.trim().trim_end_matches('.');
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(name.to_owned())
    } else {
        Err(DkimError::BadName(name.to_owned()))
    }
}

/// The header block (with the CRLF ending its last field) and the body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, &[]),
    }
}

/// Header fields as (name, raw value with its folds), in order.
fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str("\r\n");
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    fields
}

/// Relaxed header canonicalization (RFC 6376 §3.4.2), without the CRLF:
/// lower-case name, value unfolded, runs of whitespace made one space,
/// whitespace around the colon and at the end removed.
fn canonical_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let mut out = name.trim().to_ascii_lowercase();
    out.push(':');
    out.push_str(&collapse_whitespace(&unfolded));
    out
}

/// Runs of spaces and tabs as one space, none at either end.
fn collapse_whitespace(text: &str) -> String {
    text.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Relaxed body canonicalization (RFC 6376 §3.4.4): whitespace at line ends
/// removed, runs of whitespace made one space, empty lines at the end
/// removed, a non-empty body ending in CRLF.
fn canonical_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = body
        .split(|b| *b == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut out = Vec::with_capacity(line.len());
            let mut space = false;
            for &b in line {
                if b == b' ' || b == b'\t' {
                    space = true;
                } else {
                    if space {
                        out.push(b' ');
                        space = false;
                    }
                    out.push(b);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len());
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The one PEM block of `pem`: its label and decoded DER.
fn pem_block(pem: &str) -> Result<(String, Vec<u8>), DkimError> {
    let mut lines = pem.lines().map(str::trim).skip_while(|l| l.is_empty());
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(DkimError::UnsupportedKey)?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            let der = B64
                .decode(body.as_bytes())
                .map_err(|_| DkimError::BadKey("the PEM body is not base64"))?;
            return Ok((label, der));
        }
        if line.contains(':') {
            // Encrypted PEM ("Proc-Type: 4,ENCRYPTED") cannot be used unattended.
            return Err(DkimError::BadKey(
                "the key is encrypted; store it unencrypted with mode 0600",
            ));
        }
        body.push_str(line);
    }
    Err(DkimError::BadKey("the PEM block has no END line"))
}

fn load_key(pem: &str) -> Result<Key, DkimError> {
    let (label, der) = pem_block(pem)?;
    match label.as_str() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
            .map(Key::Rsa)
            .map_err(|e| rsa_rejected(&e, "not a valid PKCS#1 RSA key")),
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                .map_err(|_| DkimError::UnsupportedKey)?;
            match info.algorithm.oid {
                RSA_ENCRYPTION => RsaKeyPair::from_pkcs8(&der)
                    .map(Key::Rsa)
                    .map_err(|e| rsa_rejected(&e, "not a valid PKCS#8 RSA key")),
                // v1 (what openssl writes) or v2 (with the public key).
                ED25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map(Key::Ed25519)
                    .map_err(|_| DkimError::BadKey("not a valid Ed25519 key")),
                _ => Err(DkimError::UnsupportedKey),
            }
        }
        _ => Err(DkimError::UnsupportedKey),
    }
}

fn rsa_rejected(e: &aws_lc_rs::error::KeyRejected, damaged: &'static str) -> DkimError {
    match e.description_() {
        "TooSmall" => DkimError::KeySize("shorter"),
        "TooLarge" => DkimError::KeySize("longer"),
        _ => DkimError::BadKey(damaged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header_canonicalization_unfolds_and_squeezes() {
        assert_eq!(
            canonical_header("Subject", " Sign  in\r\n\tto \t Acme  "),
            "subject:Sign in to Acme"
        );
        assert_eq!(canonical_header("To ", "a@b"), "to:a@b");
    }

    #[test]
    fn relaxed_body_canonicalization_follows_rfc_6376() {
        // §3.4.6's example: " C \r\nD \t E\r\n\r\n\r\n" becomes " C\r\nD E\r\n".
        assert_eq!(
            canonical_body(b" C \r\nD \t E\r\n\r\n\r\n"),
            b" C\r\nD E\r\n"
        );
        assert_eq!(canonical_body(b"no end"), b"no end\r\n");
        assert_eq!(canonical_body(b""), b"");
        assert_eq!(canonical_body(b"\r\n\r\n"), b"");
    }

    #[test]
    fn the_signature_names_what_it_covers() {
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIHDqAzebrbQfxyLK2ykQhIq4/O594Yrko0m7woj4UPjz\n\
                   -----END PRIVATE KEY-----\n";
        let dkim = Dkim::from_pem("sel", "Example.COM.", pem).unwrap();
        let message = b"From: a@example.com\r\nTo: b@example.org\r\nX-Other: 1\r\n\
                        Subject: Hi\r\n\r\nBody\r\n";
        let sig = dkim.signature(message, 1_700_000_000);
        for tag in [
            "a=ed25519-sha256",
            "d=example.com",
            "s=sel",
            "t=1700000000",
            "h=from:to:subject;",
            // SHA-256 of "Body\r\n".
            "bh=x/N8/ivRfGMxF56p8/vkrTaHlPadGijHRWz0MB878Wk=",
        ] {
            assert!(sig.contains(tag), "{tag} in {sig}");
        }
        assert!(sig.lines().all(|l| l.len() <= 100), "{sig}");
    }
}
