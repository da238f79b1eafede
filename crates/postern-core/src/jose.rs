//! Signing keys and JWTs (SPEC §2 "ID tokens, access tokens and headless
//! session tokens are JWTs signed with the active signing keys", §3.2).
//!
//! * [`generate`] makes a fresh key pair (RSA 2048, Ed25519 or ECDSA P-256)
//!   as PKCS#8 DER plus its public JWK (RFC 7517, RFC 7518 §6, RFC 8037 §2).
//! * [`SigningKey`] is one parsed key with its lifecycle state
//!   ([`KeyState`]: `next` → `active` → `retired`).
//! * [`KeySet`] signs with the newest active key of an algorithm, verifies
//!   against every published key, and renders the JWKS (`/jwks.json`).
//!
//! Verification follows RFC 8725 (JWT Best Current Practices): the algorithm
//! comes from the caller's allow-list, never from the token alone (§3.1);
//! `alg: none` is never accepted; the key is found by `kid` and must be of the
//! header's algorithm; `typ` is checked when the caller names one (§3.11);
//! `iss`, `aud`, `exp`, `nbf` and `iat` are checked against the caller's clock,
//! not the system clock, so tests can move time.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use secrecy::SecretBox;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

use crate::app::IdTokenAlg;

/// A JWS signature algorithm Postern signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048: the OIDC default ID-token
    /// algorithm (OIDC Core §15.1, Discovery requires it).
    RS256,
    /// Ed25519: access tokens and headless session tokens (SPEC §2).
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl Alg {
    /// Every algorithm; the key manager keeps one active key of each.
    pub const ALL: [Alg; 3] = [Alg::RS256, Alg::EdDSA, Alg::ES256];

    /// The JOSE name (`"RS256"`, `"EdDSA"`, `"ES256"`), as stored and as in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
        }
    }

    /// The algorithm with this exact JOSE name; None for anything else
    /// (`none`, `HS256`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        Alg::ALL.into_iter().find(|a| a.as_str() == name)
    }

    fn jwt(self) -> Algorithm {
        match self {
            Alg::RS256 => Algorithm::RS256,
            Alg::EdDSA => Algorithm::EdDSA,
            Alg::ES256 => Algorithm::ES256,
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<IdTokenAlg> for Alg {
    fn from(alg: IdTokenAlg) -> Self {
        match alg {
            IdTokenAlg::RS256 => Alg::RS256,
            IdTokenAlg::EdDSA => Alg::EdDSA,
            IdTokenAlg::ES256 => Alg::ES256,
        }
    }
}

/// Where a key is in its life. Every state is published in the JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing: clients cache it before it is used.
    Next,
    /// Signs new tokens (the newest active key of its algorithm does).
    Active,
    /// No longer signs; still published so tokens it signed keep verifying.
    Retired,
}

impl KeyState {
    /// The stored form: `"next"`, `"active"` or `"retired"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    /// The state with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [KeyState::Next, KeyState::Active, KeyState::Retired]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Why a key could not be used or a token was refused. Callers map every
/// verification failure to one error code (`invalid_token` and the like);
/// the variants exist for logs and tests.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JoseError {
    /// Not three base64url parts, undecodable header or claims, or a header
    /// with members we do not understand (`crit`).
    #[error("the token is malformed")]
    Malformed,
    /// The header's `alg` is not in the caller's allow-list (`none` never is).
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No published key has the header's `kid` and `alg`.
    #[error("the token was not signed by a known key")]
    UnknownKey,
    /// The signature does not match the header and claims.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `typ` is not the one expected.
    #[error("the token has the wrong type")]
    WrongType,
    /// `exp` is missing or passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` lies in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is missing or not ours.
    #[error("the token has the wrong issuer")]
    WrongIssuer,
    /// `aud` does not name the expected audience.
    #[error("the token has the wrong audience")]
    WrongAudience,
    /// No active key of this algorithm to sign with.
    #[error("no active {0} signing key")]
    NoSigningKey(Alg),
    /// A stored private key is not a valid key of its algorithm.
    #[error("invalid {0} private key")]
    InvalidKey(Alg),
    /// The signing operation itself failed.
    #[error("signing failed")]
    Signing,
}

/// A freshly generated key pair, not yet stored.
pub struct GeneratedKey {
    /// Random key id: 16 bytes, base64url.
    pub kid: String,
    /// Its algorithm.
    pub alg: Alg,
    /// The private key as PKCS#8 DER (RFC 5208/5958). Encrypt before storing.
    pub private_pkcs8: SecretBox<Vec<u8>>,
    /// The public JWK: `kty`, `kid`, `alg`, `use: "sig"` and the public
    /// members only (`n`/`e` or `crv`/`x`/`y`).
    pub public_jwk: Value,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Generates a new key pair for `alg` from the OS CSPRNG. RSA 2048 takes
/// tens to hundreds of milliseconds: call it off the async executor.
pub fn generate(alg: Alg) -> GeneratedKey {
    const FAILED: &str = "aws-lc key generation failed";
    let pkcs8 = match alg {
        Alg::RS256 => {
            use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect(FAILED);
            AsDer::<Pkcs8V1Der>::as_der(&pair)
                .expect(FAILED)
                .as_ref()
                .to_vec()
        }
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect(FAILED)
            .as_ref()
            .to_vec(),
        Alg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect(FAILED)
                .as_ref()
                .to_vec()
        }
    };
    let kid = crate::crypto::random_token(16);
    let (_, public) = PublicKey::parse(alg, &pkcs8).expect("a key we just generated parses");
    GeneratedKey {
        public_jwk: public.jwk(&kid, alg),
        kid,
        alg,
        private_pkcs8: SecretBox::new(Box::new(pkcs8)),
    }
}

/// The public half of a key pair, as raw big-endian / point bytes.
enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { x: Vec<u8>, y: Vec<u8> },
    Ed { x: Vec<u8> },
}

impl PublicKey {
    /// Parses `pkcs8` as a private key of `alg`: the key pair that signs,
    /// and its public half derived from it.
    fn parse(alg: Alg, pkcs8: &[u8]) -> Result<(Signer, Self), JoseError> {
        let invalid = |_| JoseError::InvalidKey(alg);
        Ok(match alg {
            Alg::RS256 => {
                let pkcs1 = pkcs1_from_pkcs8(pkcs8).ok_or(JoseError::InvalidKey(alg))?;
                let pair = RsaKeyPair::from_der(pkcs1).map_err(invalid)?;
                let public = pair.public_key();
                let public = PublicKey::Rsa {
                    n: public.modulus().big_endian_without_leading_zero().to_vec(),
                    e: public.exponent().big_endian_without_leading_zero().to_vec(),
                };
                (Signer::Rsa(Arc::new(pair)), public)
            }
            Alg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(invalid)?;
                let public = PublicKey::Ed {
                    x: pair.public_key().as_ref().to_vec(),
                };
                (Signer::Ed25519(Arc::new(pair)), public)
            }
            Alg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(invalid)?;
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let public = match pair.public_key().as_ref() {
                    [0x04, xy @ ..] if xy.len() == 64 => PublicKey::Ec {
                        x: xy[..32].to_vec(),
                        y: xy[32..].to_vec(),
                    },
                    _ => return Err(JoseError::InvalidKey(alg)),
                };
                (Signer::Ecdsa(Arc::new(pair)), public)
            }
        })
    }

    /// The public JWK (RFC 7518 §6.2/§6.3, RFC 8037 §2): no private members.
    fn jwk(&self, kid: &str, alg: Alg) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match self {
            PublicKey::Rsa { n, e } => json!({ "kty": "RSA", "n": b64(n), "e": b64(e) }),
            PublicKey::Ec { x, y } => {
                json!({ "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y) })
            }
            PublicKey::Ed { x } => json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(x) }),
        };
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        jwk
    }

    fn decoding_key(&self) -> DecodingKey {
        match self {
            PublicKey::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            PublicKey::Ec { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            PublicKey::Ed { x } => DecodingKey::from_ed_der(x),
        }
    }
}

/// One base64url part of a compact JWS (RFC 7515 §7.1): `value` as JSON.
fn jws_part<T: Serialize + ?Sized>(value: &T) -> Result<String, JoseError> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(|_| JoseError::Signing)
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5)
/// whose algorithm is `rsaEncryption`: the PKCS#1 `RSAPrivateKey`.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
        pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    let info = pkcs8::PrivateKeyInfo::try_from(der).ok()?;
    (info.algorithm.oid == RSA_ENCRYPTION).then_some(info.private_key)
}

/// A private key parsed once, for every signature it makes.
/// jsonwebtoken's aws-lc backend parses an RSA key anew for each signature
/// (`RsaKeyPair::from_der`, with its consistency checks), and those checks
/// cost the server more than the signature itself (docs/PERFORMANCE.md,
/// round four), so Postern signs with the parsed pair.
#[derive(Clone)]
enum Signer {
    Rsa(Arc<RsaKeyPair>),
    Ecdsa(Arc<EcdsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
}

impl Signer {
    /// The JWS signature of `message` (RFC 7518 §3.3, §3.4 in the fixed
    /// `R || S` form; RFC 8037 §3.1).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        match self {
            Signer::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| JoseError::Signing)?;
                Ok(signature)
            }
            Signer::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::Signing),
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// One signing key, parsed and ready to sign and verify.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, in every token header it signs and in its JWK.
    pub kid: String,
    /// The one algorithm this key is used with.
    pub alg: Alg,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was made (unix seconds).
    pub created_at: i64,
    /// When it started signing.
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    public_jwk: Value,
    signer: Signer,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PKCS#8 private key of `alg`. The public JWK is derived from
    /// the private key itself, so a key can never publish a JWK that does not
    /// match what it signs with. Times start at `created_at = 0` and none:
    /// set the public fields from storage.
    pub fn new(
        kid: &str,
        alg: Alg,
        state: KeyState,
        private_pkcs8: &[u8],
    ) -> Result<Self, JoseError> {
        let (signer, public) = PublicKey::parse(alg, private_pkcs8)?;
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            state,
            created_at: 0,
            activated_at: None,
            retired_at: None,
            public_jwk: public.jwk(kid, alg),
            decoding: public.decoding_key(),
            signer,
        })
    }

    /// The public JWK (no private members).
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// When this key began signing, or was made if it never recorded that:
    /// the order in which [`KeySet::signer`] picks the newest.
    fn newness(&self) -> (i64, i64, &str) {
        (
            self.activated_at.unwrap_or(self.created_at),
            self.created_at,
            &self.kid,
        )
    }
}

/// What a verified token's registered claims must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// Required `iss` (our issuer URL).
    pub issuer: &'a str,
    /// Required member of `aud`; None skips the audience check.
    pub audience: Option<&'a str>,
    /// The current time (unix seconds) from the server's clock.
    pub now: i64,
    /// Allowed clock skew in seconds for `exp`, `nbf` and `iat`.
    pub leeway: i64,
}

/// The published keys: the ones that sign and every one that verifies.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Every key that is published (next, active and retired-but-kept).
    pub keys: Vec<SigningKey>,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

impl KeySet {
    /// The newest active key of `alg` — never a `next` one, which other
    /// parties may not have fetched yet. When two instances both created an
    /// active key at first start, all instances agree on the same one
    /// (latest activation, then creation, then kid).
    pub fn signer(&self, alg: Alg) -> Option<&SigningKey> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.state == KeyState::Active)
            .max_by(|a, b| a.newness().cmp(&b.newness()))
    }

    /// Signs `claims` as a compact JWS with the header `{alg, typ, kid}`
    /// (RFC 7515 §7.1; `typ` per RFC 8725 §3.11, e.g. `"JWT"`, `"at+jwt"`).
    pub fn sign<T: Serialize>(&self, alg: Alg, typ: &str, claims: &T) -> Result<String, JoseError> {
        let key = self.signer(alg).ok_or(JoseError::NoSigningKey(alg))?;
        let mut header = Header::new(alg.jwt());
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        let mut jws = jws_part(&header)?;
        jws.push('.');
        jws.push_str(&jws_part(claims)?);
        let signature = key.signer.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }

    /// Verifies a compact JWS signed by one of these keys (any state: another
    /// instance may already sign with a key this one still lists as `next`)
    /// and checks its claims against `check`, then returns them.
    ///
    /// Refused: an `alg` outside `allowed` (`none` always), an unknown `kid`
    /// or one whose key is of another algorithm, a bad signature, a `typ`
    /// other than `expected_typ` (compared case-insensitively, with an
    /// optional `application/` prefix, RFC 7515 §4.1.9), a `crit` header,
    /// `exp` missing or `exp <= now - leeway`, `nbf` or `iat` after
    /// `now + leeway`, `iss` not `check.issuer`, `aud` not naming
    /// `check.audience`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        allowed: &[Alg],
        expected_typ: Option<&str>,
        check: &Check<'_>,
    ) -> Result<T, JoseError> {
        let encoded_header = token.split('.').next().ok_or(JoseError::Malformed)?;
        let header: JoseHeader = URL_SAFE_NO_PAD
            .decode(encoded_header)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(JoseError::Malformed)?;
        // RFC 7515 §4.1.11: extensions we do not understand must be refused.
        if header.crit.is_some() {
            return Err(JoseError::Malformed);
        }
        let alg = Alg::parse(&header.alg)
            .filter(|a| allowed.contains(a))
            .ok_or(JoseError::AlgorithmNotAllowed)?;
        if let Some(expected) = expected_typ {
            let typ = header.typ.as_deref().unwrap_or("");
            let typ = strip_prefix_ignore_case(typ, "application/").unwrap_or(typ);
            if !typ.eq_ignore_ascii_case(expected) {
                return Err(JoseError::WrongType);
            }
        }
        let kid = header.kid.ok_or(JoseError::UnknownKey)?;
        // The key must be of the header's algorithm: no algorithm confusion.
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid && k.alg == alg)
            .ok_or(JoseError::UnknownKey)?;

        // Signature only: every claim is checked below against our clock.
        let mut validation = Validation::new(alg.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => JoseError::BadSignature,
                _ => JoseError::Malformed,
            })?
            .claims;

        check_claims(&claims, check)?;
        serde_json::from_value(claims).map_err(|_| JoseError::Malformed)
    }

    /// The JWK Set document (RFC 7517 §5): `{"keys": [...]}` with every
    /// published key, active ones first.
    pub fn jwks(&self) -> Value {
        let mut keys: Vec<&SigningKey> = self.keys.iter().collect();
        let rank = |s: KeyState| match s {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        };
        keys.sort_by(|a, b| {
            rank(a.state)
                .cmp(&rank(b.state))
                .then(b.newness().cmp(&a.newness()))
        });
        json!({ "keys": keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>() })
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// RFC 7519 §4.1 registered claims, checked with our clock (§4.1.4 `exp`,
/// §4.1.5 `nbf`, §4.1.6 `iat`) and OIDC Core §3.1.3.7 (`iss`, `aud`).
fn check_claims(claims: &Value, check: &Check<'_>) -> Result<(), JoseError> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(JoseError::Expired)?;
    if exp <= check.now - check.leeway {
        return Err(JoseError::Expired);
    }
    for name in ["nbf", "iat"] {
        match claims.get(name) {
            None => {}
            Some(t) => match t.as_i64() {
                Some(t) if t <= check.now + check.leeway => {}
                Some(_) => return Err(JoseError::NotYetValid),
                None => return Err(JoseError::Malformed),
            },
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(check.issuer) {
        return Err(JoseError::WrongIssuer);
    }
    if let Some(audience) = check.audience {
        let names = match claims.get("aud") {
            Some(Value::String(one)) => one == audience,
            Some(Value::Array(many)) => many.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !names {
            return Err(JoseError::WrongAudience);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{
        RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519,
        RSA_PKCS1_2048_8192_SHA256,
    };
    use secrecy::ExposeSecret;
    use std::sync::OnceLock;

    const ISS: &str = "https://id.example";
    const NOW: i64 = 1_700_000_000;

    /// One key per algorithm, made once: RSA generation is slow.
    fn keys() -> &'static KeySet {
        static KEYS: OnceLock<KeySet> = OnceLock::new();
        KEYS.get_or_init(|| KeySet {
            keys: Alg::ALL.into_iter().map(active).collect(),
        })
    }

    fn active(alg: Alg) -> SigningKey {
        let g = generate(alg);
        let mut key = SigningKey::new(
            &g.kid,
            alg,
            KeyState::Active,
            g.private_pkcs8.expose_secret(),
        )
        .unwrap();
        key.created_at = NOW;
        key.activated_at = Some(NOW);
        key
    }

    fn check() -> Check<'static> {
        Check {
            issuer: ISS,
            audience: Some("app-1"),
            now: NOW,
            leeway: 0,
        }
    }

    fn claims() -> Value {
        json!({ "iss": ISS, "aud": "app-1", "sub": "u1", "iat": NOW, "exp": NOW + 600 })
    }

    fn b64_json(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn tokens_round_trip_with_every_algorithm() {
        for alg in Alg::ALL {
            let token = keys().sign(alg, "JWT", &claims()).unwrap();
            let header = b64_json(token.split('.').next().unwrap());
            let kid = &keys().signer(alg).unwrap().kid;
            assert_eq!(
                header,
                json!({ "alg": alg.as_str(), "typ": "JWT", "kid": kid }),
                "{alg}"
            );
            let back: Value = keys()
                .verify(&token, &[alg], Some("JWT"), &check())
                .unwrap();
            assert_eq!(back, claims(), "{alg}");
        }
    }

    #[test]
    fn tokens_verify_with_the_published_jwk_alone() {
        let jwks = keys().jwks();
        for alg in Alg::ALL {
            let token = keys().sign(alg, "JWT", &claims()).unwrap();
            let (message, signature) = token.rsplit_once('.').unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            let kid = b64_json(token.split('.').next().unwrap())["kid"].clone();
            let jwk = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid)
                .unwrap();
            let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
            let verified = match alg {
                Alg::RS256 => RsaPublicKeyComponents {
                    n: part("n"),
                    e: part("e"),
                }
                .verify(
                    &RSA_PKCS1_2048_8192_SHA256,
                    message.as_bytes(),
                    &signature,
                ),
                Alg::ES256 => {
                    let point = [vec![0x04], part("x"), part("y")].concat();
                    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                        .verify(message.as_bytes(), &signature)
                }
                Alg::EdDSA => UnparsedPublicKey::new(&ED25519, part("x"))
                    .verify(message.as_bytes(), &signature),
            };
            assert!(verified.is_ok(), "{alg}");
        }
    }

    #[test]
    fn jwks_hold_public_members_only() {
        let jwks = keys().jwks();
        let list = jwks["keys"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        for jwk in list {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
                assert!(jwk.get(private).is_none(), "{jwk} has {private}");
            }
            assert_eq!(jwk["use"], "sig");
            assert!(jwk["kid"].is_string() && jwk["alg"].is_string());
        }
        let by_alg = |alg: &str| list.iter().find(|k| k["alg"] == alg).unwrap();
        assert_eq!(by_alg("RS256")["kty"], "RSA");
        assert_eq!(by_alg("RS256")["e"], "AQAB");
        assert_eq!(by_alg("ES256")["crv"], "P-256");
        assert_eq!(by_alg("EdDSA")["crv"], "Ed25519");
    }

    #[test]
    fn forged_and_invalid_tokens_are_refused() {
        let token = keys().sign(Alg::EdDSA, "JWT", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let kid = keys().signer(Alg::EdDSA).unwrap().kid.clone();
        let rsa_kid = keys().signer(Alg::RS256).unwrap().kid.clone();

        let mut richer = claims();
        richer["sub"] = json!("admin");
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        let stranger = KeySet {
            keys: vec![active(Alg::EdDSA)],
        };

        let cases: Vec<(&str, String, JoseError)> = vec![
            (
                "tampered payload",
                format!("{}.{}.{}", parts[0], enc(richer), parts[2]),
                JoseError::BadSignature,
            ),
            (
                "tampered signature",
                format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig)),
                JoseError::BadSignature,
            ),
            (
                "alg none",
                format!(
                    "{}.{}.",
                    enc(json!({"alg": "none", "typ": "JWT", "kid": kid})),
                    parts[1]
                ),
                JoseError::AlgorithmNotAllowed,
            ),
            (
                "HS256 with the public key as secret",
                format!(
                    "{}.{}.{}",
                    enc(json!({"alg": "HS256", "typ": "JWT", "kid": kid})),
                    parts[1],
                    parts[2]
                ),
                JoseError::AlgorithmNotAllowed,
            ),
            (
                "RSA kid with EdDSA alg",
                format!(
                    "{}.{}.{}",
                    enc(json!({"alg": "EdDSA", "typ": "JWT", "kid": rsa_kid})),
                    parts[1],
                    parts[2]
                ),
                JoseError::UnknownKey,
            ),
            (
                "critical header",
                format!(
                    "{}.{}.{}",
                    enc(json!({"alg": "EdDSA", "kid": kid, "crit": ["b64"]})),
                    parts[1],
                    parts[2]
                ),
                JoseError::Malformed,
            ),
            (
                "key not in the set",
                stranger.sign(Alg::EdDSA, "JWT", &claims()).unwrap(),
                JoseError::UnknownKey,
            ),
            ("garbage", "not.a.jwt".to_owned(), JoseError::Malformed),
            ("empty", String::new(), JoseError::Malformed),
        ];
        for (what, token, expected) in cases {
            let got = keys().verify::<Value>(&token, &Alg::ALL, Some("JWT"), &check());
            assert_eq!(got.unwrap_err(), expected, "{what}");
        }
    }

    #[test]
    fn claims_and_header_are_checked() {
        let with = |patch: Value| {
            let mut c = claims();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            keys().sign(Alg::ES256, "JWT", &c).unwrap()
        };
        let cases: Vec<(&str, String, Check<'static>, JoseError)> = vec![
            (
                "expired",
                with(json!({"exp": NOW})),
                check(),
                JoseError::Expired,
            ),
            (
                "no exp",
                with(json!({"exp": null})),
                check(),
                JoseError::Expired,
            ),
            (
                "expired beyond the leeway",
                with(json!({"exp": NOW - 61})),
                Check {
                    leeway: 60,
                    ..check()
                },
                JoseError::Expired,
            ),
            (
                "issued in the future",
                with(json!({"iat": NOW + 10})),
                check(),
                JoseError::NotYetValid,
            ),
            (
                "not before",
                with(json!({"nbf": NOW + 10})),
                check(),
                JoseError::NotYetValid,
            ),
            (
                "wrong issuer",
                with(json!({"iss": "https://evil.example"})),
                check(),
                JoseError::WrongIssuer,
            ),
            (
                "no issuer",
                with(json!({"iss": null})),
                check(),
                JoseError::WrongIssuer,
            ),
            (
                "wrong audience",
                with(json!({"aud": "app-2"})),
                check(),
                JoseError::WrongAudience,
            ),
            (
                "audience list without us",
                with(json!({"aud": ["app-2"]})),
                check(),
                JoseError::WrongAudience,
            ),
            (
                "no audience",
                with(json!({"aud": null})),
                check(),
                JoseError::WrongAudience,
            ),
        ];
        for (what, token, check, expected) in cases {
            let got = keys().verify::<Value>(&token, &[Alg::ES256], Some("JWT"), &check);
            assert_eq!(got.unwrap_err(), expected, "{what}");
        }

        // Inside the leeway, audience lists, and the system clock is not consulted.
        let ok = |token: &str, check: Check<'_>| {
            keys().verify::<Value>(token, &[Alg::ES256], None, &check)
        };
        assert!(ok(
            &with(json!({"exp": NOW - 30})),
            Check {
                leeway: 60,
                ..check()
            }
        )
        .is_ok());
        assert!(ok(&with(json!({"aud": ["app-2", "app-1"]})), check()).is_ok());
        assert!(ok(
            &with(json!({"aud": "app-2"})),
            Check {
                audience: None,
                ..check()
            }
        )
        .is_ok());
        assert!(ok(
            &with(json!({"exp": 1000, "iat": 800})),
            Check {
                now: 900,
                ..check()
            }
        )
        .is_ok());

        // Type and algorithm allow-list.
        let at = keys().sign(Alg::EdDSA, "at+jwt", &claims()).unwrap();
        let verify = |typ, allowed: &[Alg]| keys().verify::<Value>(&at, allowed, typ, &check());
        assert!(verify(Some("at+jwt"), &[Alg::EdDSA]).is_ok());
        assert!(verify(Some("AT+JWT"), &[Alg::EdDSA]).is_ok());
        assert_eq!(
            verify(Some("JWT"), &[Alg::EdDSA]).unwrap_err(),
            JoseError::WrongType
        );
        assert_eq!(
            verify(Some("at+jwt"), &[Alg::RS256, Alg::ES256]).unwrap_err(),
            JoseError::AlgorithmNotAllowed
        );
    }

    #[test]
    fn only_the_newest_active_key_signs() {
        let mut set = KeySet::default();
        assert_eq!(
            set.sign(Alg::RS256, "JWT", &claims()).unwrap_err(),
            JoseError::NoSigningKey(Alg::RS256)
        );
        let mut old = keys()
            .keys
            .iter()
            .find(|k| k.alg == Alg::EdDSA)
            .unwrap()
            .clone();
        let mut next = active(Alg::EdDSA);
        next.state = KeyState::Next;
        next.activated_at = None;
        next.created_at = NOW + 100;
        set.keys = vec![old.clone(), next.clone()];
        assert_eq!(set.signer(Alg::EdDSA).unwrap().kid, old.kid);
        assert_eq!(set.jwks()["keys"].as_array().unwrap().len(), 2);

        let mut newer = next.clone();
        newer.state = KeyState::Active;
        newer.activated_at = Some(NOW + 200);
        old.state = KeyState::Retired;
        set.keys = vec![old.clone(), newer.clone()];
        assert_eq!(set.signer(Alg::EdDSA).unwrap().kid, newer.kid);
        assert_eq!(set.signer(Alg::RS256).map(|k| &k.kid), None);
    }

    #[test]
    fn names_round_trip() {
        for alg in Alg::ALL {
            assert_eq!(Alg::parse(alg.as_str()), Some(alg));
            assert_eq!(serde_json::to_value(alg).unwrap(), json!(alg.as_str()));
        }
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::from(IdTokenAlg::default()), Alg::RS256);
        assert_eq!(Alg::from(IdTokenAlg::EdDSA), Alg::EdDSA);
        assert_eq!(Alg::from(IdTokenAlg::ES256), Alg::ES256);
        for state in [KeyState::Next, KeyState::Active, KeyState::Retired] {
            assert_eq!(KeyState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
    }

    #[test]
    fn keys_parse_only_as_their_own_algorithm() {
        let ed = generate(Alg::EdDSA);
        let der = ed.private_pkcs8.expose_secret();
        assert!(SigningKey::new("k", Alg::EdDSA, KeyState::Active, der).is_ok());
        assert_eq!(
            SigningKey::new("k", Alg::RS256, KeyState::Active, der).unwrap_err(),
            JoseError::InvalidKey(Alg::RS256)
        );
        assert_eq!(
            SigningKey::new("k", Alg::ES256, KeyState::Active, b"junk").unwrap_err(),
            JoseError::InvalidKey(Alg::ES256)
        );
        assert!(!format!("{ed:?}").contains("private"));
    }
}
