//! SASL for XMPP sign-in (RFC 6120 §6): SCRAM-SHA-1 (RFC 5802) and PLAIN (RFC 4616).
//!
//! SCRAM makes the client derive the salted password (PBKDF2-HMAC-SHA1, the server's
//! iteration count) and prove it without sending it; the client also checks the server's
//! signature, so a server that does not know the password is caught. PLAIN sends the
//! password, and the server derives it instead. Names are used as given: load-test users
//! are ASCII, so SASLprep changes nothing; `=` and `,` are escaped as RFC 5802 asks.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

/// Why a SASL exchange failed on our side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The server's message does not parse.
    #[error("malformed SCRAM message from the server: {0}")]
    Malformed(String),
    /// The server's nonce does not extend ours.
    #[error("the server's SCRAM nonce does not start with ours")]
    Nonce,
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's SCRAM signature does not match")]
    Signature,
}

type HmacSha1 = Hmac<Sha1>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 20] {
    // HMAC takes a key of any length.
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi()` of RFC 5802: PBKDF2-HMAC-SHA1 with one 20-byte block.
pub fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 20] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&[0, 0, 0, 1]);
    let mut u = hmac(password, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// `saslname` of RFC 5802: `=` → `=3D`, `,` → `=2C`.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The PLAIN message (`\0user\0password`), base64.
pub fn plain(user: &str, password: &str) -> String {
    B64.encode(format!("\0{user}\0{password}"))
}

/// One SCRAM-SHA-1 exchange, client side.
pub struct Scram {
    password: String,
    nonce: String,
    first_bare: String,
    server_signature: Option<[u8; 20]>,
}

impl Scram {
    /// Start an exchange for `user` with the client nonce `nonce` (printable, no `,`).
    pub fn new(user: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            password: password.to_string(),
            nonce: nonce.to_string(),
            first_bare: format!("n={},r={nonce}", sasl_name(user)),
            server_signature: None,
        }
    }

    /// The client-first message (no channel binding: `n,,`).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client-final message answering `server_first`.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, SaslError> {
        let field = |key: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(key))
                .ok_or_else(|| SaslError::Malformed(server_first.to_string()))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(SaslError::Nonce);
        }
        let salt = B64
            .decode(field("s=")?)
            .map_err(|_| SaslError::Malformed(server_first.to_string()))?;
        let iterations: u32 = field("i=")?
            .parse()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| SaslError::Malformed(server_first.to_string()))?;
        let salted = hi(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 20] = Sha1::digest(client_key).into();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Check the server-final message (`v=…`).
    pub fn verify(&self, server_final: &str) -> Result<(), SaslError> {
        let given = server_final
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| SaslError::Malformed(server_final.to_string()))?;
        match self.server_signature {
            Some(expected) if given == expected => Ok(()),
            _ => Err(SaslError::Signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 5802 §5.
    #[test]
    fn the_rfc_5802_example_exchange() {
        let mut s = Scram::new("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(s.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        assert_eq!(
            s.client_final(server_first).expect("final"),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        s.verify("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .expect("server signature");
        assert_eq!(s.verify("v=AAAA"), Err(SaslError::Signature));
    }

    #[test]
    fn a_server_that_does_not_extend_our_nonce_or_sends_garbage_is_refused() {
        let mut s = Scram::new("user", "pencil", "abc");
        assert_eq!(
            s.client_final("r=xyz1,s=QSXCR+Q6sek8bf92,i=4096"),
            Err(SaslError::Nonce)
        );
        assert_eq!(
            s.client_final("r=abc,s=QSXCR+Q6sek8bf92,i=4096"),
            Err(SaslError::Nonce)
        );
        assert!(matches!(
            s.client_final("r=abcd,i=4096"),
            Err(SaslError::Malformed(_))
        ));
        assert!(matches!(
            s.client_final("r=abcd,s=QSXC,i=0"),
            Err(SaslError::Malformed(_))
        ));
        assert_eq!(plain("u", "p"), B64.encode("\0u\0p"));
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
    }
}
