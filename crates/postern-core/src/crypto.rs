//! Secrets at rest and keyed hashes, all derived from one master key.
//!
//! * [`Secrets::encrypt`] / [`Secrets::decrypt`]: AES-256-GCM with a random
//!   96-bit nonce and a caller-supplied context bound in as associated data,
//!   so a ciphertext moved to another row or purpose fails to decrypt.
//! * [`Secrets::keyed_hash`]: HMAC-SHA-256 under a subkey per purpose, for
//!   link tokens, one-time codes, cookies and client secrets. A copy of the
//!   database without the master key cannot reverse a 6-digit code.
//!
//! Subkeys are `HMAC-SHA-256(master, "postern/v1/" || purpose)`, so one 32-byte
//! key serves every purpose without reuse.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{digest, hmac, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox};
use thiserror::Error;

/// The server's 32-byte master key. Never printed, never logged.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why a master key was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MasterKeyError {
    /// Not 64 hexadecimal characters.
    #[error("the master key must be 64 hexadecimal characters (32 bytes)")]
    Malformed,
}

impl MasterKey {
    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, MasterKeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| MasterKeyError::Malformed)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(SecretBox::new(Box::new(random_array())))
    }

    /// The key as 64 lower-case hex characters, for writing a key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.expose_secret())
    }
}

/// Why a stored secret could not be opened.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext was altered, truncated, moved to another context, or
    /// sealed under another master key.
    #[error("encrypted value could not be authenticated")]
    Tampered,
}

/// Keys derived from the master key, ready to use. Cheap to share behind an `Arc`.
pub struct Secrets {
    aead: LessSafeKey,
    hash_root: hmac::Key,
    /// The bytes of `hash_root`, kept so that a master-key rotation can
    /// carry the keyed hashes over unchanged ([`Secrets::with_hash_key`]).
    hash_key: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

const CIPHERTEXT_PREFIX: &str = "v1.";

impl Secrets {
    /// Derives the working keys from the master key.
    pub fn new(master: &MasterKey) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, master.0.expose_secret());
        let hash_key = hmac::sign(&root, b"postern/v1/keyed-hash");
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(hash_key.as_ref());
        Self::with_hash_key(master, bytes)
    }

    /// Encryption under `master`, keyed hashes under `hash_key` (the
    /// [`Secrets::hash_key`] of the master key a database started with):
    /// after a master-key rotation, link tokens, codes, session cookies,
    /// client secrets and pairwise subjects hash as they did before.
    pub fn with_hash_key(master: &MasterKey, hash_key: [u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, master.0.expose_secret());
        let aead_key = hmac::sign(&root, b"postern/v1/aead");
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, aead_key.as_ref()).expect("32-byte AES key"),
        );
        Self {
            aead,
            hash_root: hmac::Key::new(hmac::HMAC_SHA256, &hash_key),
            hash_key: SecretBox::new(Box::new(hash_key)),
        }
    }

    /// The key under which keyed hashes are computed (to carry over to a
    /// new master key; never log it).
    pub fn hash_key(&self) -> [u8; 32] {
        *self.hash_key.expose_secret()
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. `"outbox:<id>"`).
    /// Output: `v1.` + base64url(nonce || ciphertext || tag).
    pub fn encrypt(&self, context: &str, plaintext: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = random_array();
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        format!("{CIPHERTEXT_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens what [`Secrets::encrypt`] sealed under the same `context`.
    pub fn decrypt(&self, context: &str, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let body = sealed
            .strip_prefix(CIPHERTEXT_PREFIX)
            .ok_or(CryptoError::Tampered)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Tampered)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Tampered);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Tampered)?;
        let mut buf = rest.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Tampered)?;
        Ok(plain.to_vec())
    }

    /// HMAC-SHA-256 of `data` under the subkey for `purpose`, base64url.
    /// Equal inputs give equal outputs, so the result can be looked up.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> String {
        let subkey = hmac::sign(&self.hash_root, purpose.as_bytes());
        let key = hmac::Key::new(hmac::HMAC_SHA256, subkey.as_ref());
        URL_SAFE_NO_PAD.encode(hmac::sign(&key, data).as_ref())
    }

    /// Compares `data`'s keyed hash with `expected` in constant time.
    pub fn verify_keyed_hash(&self, purpose: &str, data: &[u8], expected: &str) -> bool {
        constant_time_eq(
            self.keyed_hash(purpose, data).as_bytes(),
            expected.as_bytes(),
        )
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::fill(&mut out).expect("the OS random number generator failed");
    out
}

/// A token as it may arrive after an email program or a person mangled a
/// link: what follows the token (`>`, `)`, `.`, a quote, a space) is
/// dropped. Tokens are base64url ([`random_token`]), so no character of
/// the token itself is lost.
pub fn ungarble_token(token: &str) -> String {
    token
        .trim()
        .trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .to_owned()
}

/// A random base64url string carrying `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut out = vec![0u8; bytes];
    rand::fill(&mut out).expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(out)
}

/// A random identifier for database rows: 128 bits, base64url (22 characters).
pub fn random_id() -> String {
    random_token(16)
}

/// A uniformly random decimal string of `digits` digits (e.g. a 6-digit code),
/// drawn by rejection sampling so no value is more likely than another.
pub fn random_digits(digits: u32) -> String {
    let modulus = 10u32.pow(digits);
    let limit = u32::MAX - (u32::MAX % modulus);
    loop {
        let n = u32::from_le_bytes(random_array());
        if n < limit {
            return format!("{:0width$}", n % modulus, width = digits as usize);
        }
    }
}

/// Plain SHA-256, base64url: for values that already carry 256 random bits.
pub fn sha256_b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mangled_link_keeps_its_whole_token() {
        let token = "pml_aB3-x_Z9";
        for (arrived, why) in [
            ("pml_aB3-x_Z9", "as sent"),
            ("pml_aB3-x_Z9>", "an angle bracket from a plain-text mail"),
            ("pml_aB3-x_Z9).", "a parenthesis and a full stop"),
            (" pml_aB3-x_Z9\" ", "a quote and spaces"),
        ] {
            assert_eq!(ungarble_token(arrived), token, "{why}");
        }
    }

    fn secrets() -> Secrets {
        Secrets::new(&MasterKey::from_hex(&"ab".repeat(32)).unwrap())
    }

    #[test]
    fn encryption_round_trips() {
        let s = secrets();
        let sealed = s.encrypt("outbox:1", b"Sign in with 123456");
        assert!(!sealed.contains("123456"));
        assert_eq!(
            s.decrypt("outbox:1", &sealed).unwrap(),
            b"Sign in with 123456"
        );
    }

    #[test]
    fn encryption_uses_a_fresh_nonce_each_time() {
        let s = secrets();
        assert_ne!(s.encrypt("c", b"same"), s.encrypt("c", b"same"));
    }

    #[test]
    fn tampered_ciphertexts_are_refused() {
        let s = secrets();
        let sealed = s.encrypt("outbox:1", b"secret");
        // Flip one character in the body.
        let mut chars: Vec<char> = sealed.chars().collect();
        let i = chars.len() - 5;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert_eq!(s.decrypt("outbox:1", &flipped), Err(CryptoError::Tampered));
        // Moved to another context.
        assert_eq!(s.decrypt("outbox:2", &sealed), Err(CryptoError::Tampered));
        // Truncated, garbage, wrong version.
        assert_eq!(
            s.decrypt("outbox:1", &sealed[..10]),
            Err(CryptoError::Tampered)
        );
        assert_eq!(s.decrypt("outbox:1", "v1.!!!"), Err(CryptoError::Tampered));
        assert_eq!(
            s.decrypt("outbox:1", &sealed[3..]),
            Err(CryptoError::Tampered)
        );
        // Another master key.
        let other = Secrets::new(&MasterKey::generate());
        assert_eq!(
            other.decrypt("outbox:1", &sealed),
            Err(CryptoError::Tampered)
        );
    }

    #[test]
    fn keyed_hashes_depend_on_purpose_and_key() {
        let s = secrets();
        let a = s.keyed_hash("code", b"123456");
        assert_eq!(a, s.keyed_hash("code", b"123456"));
        assert_ne!(a, s.keyed_hash("token", b"123456"));
        assert_ne!(
            a,
            Secrets::new(&MasterKey::generate()).keyed_hash("code", b"123456")
        );
        assert!(s.verify_keyed_hash("code", b"123456", &a));
        assert!(!s.verify_keyed_hash("code", b"123457", &a));
    }

    #[test]
    fn master_keys_must_be_64_hex_characters() {
        assert!(MasterKey::from_hex(&"0f".repeat(32)).is_ok());
        assert!(MasterKey::from_hex(&format!(" {}\n", "0f".repeat(32))).is_ok());
        for bad in ["", "abc", &"zz".repeat(32), &"0f".repeat(33)] {
            assert_eq!(
                MasterKey::from_hex(bad).unwrap_err(),
                MasterKeyError::Malformed
            );
        }
        let k = MasterKey::generate();
        assert_eq!(
            MasterKey::from_hex(&k.to_hex()).unwrap().to_hex(),
            k.to_hex()
        );
        assert_eq!(format!("{k:?}"), "MasterKey(..)");
    }

    #[test]
    fn random_digits_are_well_formed() {
        for _ in 0..200 {
            let c = random_digits(6);
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(random_token(32).len(), 43);
    }
}
