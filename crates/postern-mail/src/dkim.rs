//! DKIM signing (RFC 6376) of every outgoing message, when
//! `POSTERN_DKIM_KEY_FILE`, `POSTERN_DKIM_SELECTOR` and `POSTERN_DKIM_DOMAIN`
//! are set.
//!
//! Keys are PEM files as `openssl` writes them: RSA (`BEGIN RSA PRIVATE
//! KEY` or `BEGIN PRIVATE KEY`, at least 1024 bits per RFC 8301; 2048 is the
//! usual size) or Ed25519 (`BEGIN PRIVATE KEY`, RFC 8463). Signatures use
//! relaxed/relaxed canonicalization, which survives the header re-folding
//! and whitespace changes relays make.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::Message;
use thiserror::Error;

/// Headers covered by the signature: everything a reader sees or a mail
/// system acts on. Each appears exactly once in our messages. Not
/// `Content-Type`: lettre keeps a multipart's type with the body and
/// writes it after the signature, so it cannot sign it (the body hash
/// covers the parts).
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Auto-Submitted",
];

/// The DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410 §7): the
/// 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// The Ed25519 algorithm identifier (OID 1.3.101.112) inside PKCS#8.
const ED25519_ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

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
    /// An RSA key below 1024 bits (RFC 8301 §3.2).
    #[error("the RSA key has {0} bits; DKIM needs at least 1024 (2048 recommended)")]
    WeakKey(usize),
    /// The key file could not be read.
    #[error("cannot read {0}")]
    Unreadable(String),
    /// A selector or domain that is not a DNS name.
    #[error("{0:?} is not a DNS name (letters, digits, hyphens and dots)")]
    BadName(String),
}

/// A loaded DKIM key with its selector and signing domain.
pub struct Dkim {
    config: DkimConfig,
    selector: String,
    domain: String,
    algorithm: &'static str,
}

impl fmt::Debug for Dkim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dkim")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// Loads `pem` (RSA or Ed25519, see the module) to sign as
    /// `d=domain; s=selector`.
    pub fn from_pem(selector: &str, domain: &str, pem: &str) -> Result<Self, DkimError> {
        let selector = dns_name(selector)?;
        let domain = dns_name(domain)?.to_ascii_lowercase();
        let (key, algorithm) = load_key(pem)?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        let canonicalization = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        let config = DkimConfig::new(
            selector.clone(),
            domain.clone(),
            key,
            headers,
            canonicalization,
        );
        Ok(Self {
            config,
            selector,
            domain,
            algorithm,
        })
    }

    /// Reads the PEM key file at `path` (see [`Dkim::from_pem`]).
    pub fn from_file(selector: &str, domain: &str, path: &Path) -> Result<Self, DkimError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| DkimError::Unreadable(format!("{}: {e}", path.display())))?;
        Self::from_pem(selector, domain, &pem)
    }

    /// Adds a `DKIM-Signature` header to `message`.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
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
        self.algorithm
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
            let der = base64::engine::general_purpose::STANDARD
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

fn load_key(pem: &str) -> Result<(DkimSigningKey, &'static str), DkimError> {
    use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, LineEnding};
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::traits::PublicKeyParts as _;

    let (label, der) = pem_block(pem)?;
    let rsa = match label.as_str() {
        "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(&der)
            .map_err(|_| DkimError::BadKey("not a valid PKCS#1 RSA key"))?,
        "PRIVATE KEY" if is_ed25519(&der) => {
            let seed = ed25519_seed(&der)?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(seed);
            let key = DkimSigningKey::new(&b64, DkimSigningAlgorithm::Ed25519)
                .map_err(|_| DkimError::BadKey("not a valid Ed25519 key"))?;
            return Ok((key, "ed25519-sha256"));
        }
        "PRIVATE KEY" => {
            rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| DkimError::UnsupportedKey)?
        }
        _ => return Err(DkimError::UnsupportedKey),
    };
    let bits = rsa.size() * 8;
    if bits < 1024 {
        return Err(DkimError::WeakKey(bits));
    }
    // lettre reads RSA keys in PKCS#1 PEM only.
    let pkcs1 = rsa
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|_| DkimError::BadKey("the RSA key could not be re-encoded"))?;
    let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|_| DkimError::BadKey("not a valid RSA key"))?;
    Ok((key, "rsa-sha256"))
}

fn is_ed25519(der: &[u8]) -> bool {
    der.windows(ED25519_ALGORITHM.len())
        .take(16)
        .any(|w| w == ED25519_ALGORITHM)
}

/// The 32-byte seed of an Ed25519 PKCS#8 key (v1, or v2 with the public key
/// appended: the seed comes first either way).
fn ed25519_seed(der: &[u8]) -> Result<[u8; 32], DkimError> {
    let bad = DkimError::BadKey("not a valid Ed25519 PKCS#8 key");
    let start = if der.starts_with(&ED25519_PKCS8_PREFIX) {
        ED25519_PKCS8_PREFIX.len()
    } else {
        // v2: SEQUENCE, INTEGER 1, the algorithm, OCTET STRING { OCTET STRING seed }, [1] public key.
        let inner = [0x04, 0x22, 0x04, 0x20];
        der.windows(inner.len())
            .position(|w| w == inner)
            .map(|p| p + inner.len())
            .ok_or(bad.clone())?
    };
    der.get(start..start + 32)
        .and_then(|s| s.try_into().ok())
        .ok_or(bad)
}
