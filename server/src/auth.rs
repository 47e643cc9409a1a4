//! Bearer tokens: `v1.<user id>.<expiry, unix seconds>.<base64url HMAC-SHA256>`.
//!
//! The key lives in the content database (`meta.token_secret`), so every front end of a
//! pool verifies every token without a lookup, and no password is ever stored or sent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token's shape, or the signature does not match.
    #[error("the token is malformed or forged")]
    Invalid,
    /// Signed by us, but past its expiry.
    #[error("the token has expired")]
    Expired,
}

/// The proof a front end gives of the link secret: HMAC-SHA256(secret, nonce ‖ name).
pub fn link_proof(secret: &[u8], nonce: &[u8], name: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(nonce);
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Check a link proof (in constant time).
pub fn link_proof_ok(secret: &[u8], nonce: &[u8], name: &str, proof: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(nonce);
    mac.update(name.as_bytes());
    mac.verify_slice(proof).is_ok()
}

/// The key that signs and checks tokens.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from raw bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// The key's bytes (the chat server hands them to its front ends in `Welcome`).
    pub fn secret(&self) -> &[u8] {
        &self.key
    }

    /// The pool's key, created on first use.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let fresh: [u8; 32] = rand::random();
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let stored = store.meta_init("token_secret", &hex).await?;
        Ok(Self::new(stored.into_bytes()))
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(payload.as_bytes());
        mac
    }

    /// A token for `user`, valid until `expires` (unix seconds).
    pub fn issue(&self, user: i64, expires: i64) -> String {
        let payload = format!("v1.{user}.{expires}");
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The user a token names, if it is ours and not expired at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<i64, TokenError> {
        let (payload, sig) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(user), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Invalid)?;
        self.mac(payload)
            .verify_slice(&sig)
            .map_err(|_| TokenError::Invalid)?;
        let user: i64 = user.parse().map_err(|_| TokenError::Invalid)?;
        let expires: i64 = expires.parse().map_err(|_| TokenError::Invalid)?;
        if expires <= now {
            return Err(TokenError::Expired);
        }
        Ok(user)
    }
}

/// Unix seconds, now.
pub fn unix_now() -> i64 {
    crate::model::now_us() / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_resist_forgery() {
        let key = TokenKey::new(b"k".to_vec());
        let t = key.issue(42, 1000);
        assert_eq!(key.verify(&t, 999), Ok(42));
        assert_eq!(key.verify(&t, 1000), Err(TokenError::Expired));
        let forged = t.replace("v1.42.", "v1.43.");
        assert_eq!(key.verify(&forged, 0), Err(TokenError::Invalid));
        assert_eq!(
            TokenKey::new(b"other".to_vec()).verify(&t, 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(key.verify("garbage", 0), Err(TokenError::Invalid));
        assert_eq!(key.verify("v1.1.2.3.!!", 0), Err(TokenError::Invalid));
    }
}
