//! Webhook authenticity checks, on the raw bytes, before anything reads the body.
//!
//! Pure functions: no IO, no clock (the caller passes `now`), so every rule is unit-tested here.
//! All comparisons of secret-derived values are constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks `webhook-timestamp` may be from our clock, either way.
/// Five minutes is the spec's recommendation: it bounds replays without punishing clock drift.
pub const MAX_TIMESTAMP_SKEW_SECS: i64 = 5 * 60;

/// Why a delivery was not accepted as authentic. The text is safe to send back: it never
/// contains a secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("signature does not match")]
    Mismatch,
    #[error("webhook-timestamp is more than 5 minutes away from the server clock")]
    Stale,
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex>` is HMAC-SHA256 of the body under any one of the
/// configured secrets (several are accepted so a secret can be rotated without downtime).
pub fn verify_github(
    secrets: &[SecretString],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    const NAME: &str = "X-Hub-Signature-256";
    let header = header.ok_or(SignatureError::Missing(NAME))?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed(NAME))?;
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed(NAME))?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed(NAME));
    }
    let any = secrets
        .iter()
        .map(|secret| hmac_sha256(secret.expose_secret().as_bytes(), &[body]))
        .fold(subtle::Choice::from(0), |acc, expected| {
            acc | expected.as_slice().ct_eq(&given)
        });
    if bool::from(any) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// GitLab's secret token: `X-Gitlab-Token` must equal one of the configured tokens.
pub fn verify_gitlab_token(
    tokens: &[SecretString],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let given = header.ok_or(SignatureError::Missing("X-Gitlab-Token"))?;
    // Compare digests so the comparison time does not depend on the length of either side.
    let given = Sha256Digest::of(given.as_bytes());
    let any = tokens
        .iter()
        .map(|t| Sha256Digest::of(t.expose_secret().as_bytes()))
        .fold(subtle::Choice::from(0), |acc, expected| {
            acc | expected.0.ct_eq(&given.0)
        });
    if bool::from(any) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The three Standard Webhooks headers GitLab sends when a signing token is configured.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Standard Webhooks (what GitLab 19 sends): `webhook-signature` holds one or more
/// space-separated `v1,<base64>` entries, each HMAC-SHA256 over `{id}.{timestamp}.{body}`.
/// Signing keys are `whsec_<base64>` (the decoded bytes are the key); a key without the prefix
/// is used as raw bytes.
pub fn verify_standard_webhook(
    keys: &[SecretString],
    headers: StandardHeaders<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let id = headers.id.ok_or(SignatureError::Missing("webhook-id"))?;
    let ts_text = headers
        .timestamp
        .ok_or(SignatureError::Missing("webhook-timestamp"))?;
    let signature = headers
        .signature
        .ok_or(SignatureError::Missing("webhook-signature"))?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
    if (now_unix - ts).abs() > MAX_TIMESTAMP_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let given: Vec<Vec<u8>> = signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        .collect();
    if given.is_empty() {
        return Err(SignatureError::Malformed("webhook-signature"));
    }
    let mut any = subtle::Choice::from(0);
    for key in keys {
        let key = decode_signing_key(key.expose_secret());
        let expected = hmac_sha256(&key, &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body]);
        for candidate in &given {
            any |= expected.as_slice().ct_eq(candidate);
        }
    }
    if bool::from(any) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_signing_key(key: &str) -> Vec<u8> {
    match key.strip_prefix("whsec_") {
        Some(b64) => BASE64
            .decode(b64)
            .unwrap_or_else(|_| key.as_bytes().to_vec()),
        None => key.as_bytes().to_vec(),
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(Sha256::digest(bytes).into())
    }
}

/// `sha256=<hex>` for `body` under `secret`: what GitHub would send. Used by tests, the
/// benchmarks and the `greenlight sign` helper.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

/// `v1,<base64>` for a Standard Webhooks delivery: what GitLab would send.
pub fn standard_webhook_signature(key: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac_sha256(
        &decode_signing_key(key),
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    format!("v1,{}", BASE64.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    /// GitHub's documented test vector (docs: "Validating webhook deliveries").
    const VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_vector_is_accepted() {
        let s = secrets(&["It's a Secret to Everybody"]);
        assert_eq!(verify_github(&s, Some(VECTOR), b"Hello, World!"), Ok(()));
        assert_eq!(
            github_signature("It's a Secret to Everybody", b"Hello, World!"),
            VECTOR
        );
    }

    #[test]
    fn github_any_rotated_secret_is_accepted() {
        let s = secrets(&["old", "It's a Secret to Everybody"]);
        assert_eq!(verify_github(&s, Some(VECTOR), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn github_wrong_secret_is_rejected() {
        let s = secrets(&["not the secret"]);
        assert_eq!(
            verify_github(&s, Some(VECTOR), b"Hello, World!"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn github_other_body_is_rejected() {
        let s = secrets(&["It's a Secret to Everybody"]);
        assert_eq!(
            verify_github(&s, Some(VECTOR), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn github_truncated_signature_is_malformed() {
        let s = secrets(&["It's a Secret to Everybody"]);
        let truncated = &VECTOR[..VECTOR.len() - 2];
        assert!(matches!(
            verify_github(&s, Some(truncated), b"Hello, World!"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn github_non_hex_signature_is_malformed() {
        let s = secrets(&["It's a Secret to Everybody"]);
        let bad = format!("sha256={}", "zz".repeat(32));
        assert!(matches!(
            verify_github(&s, Some(&bad), b"Hello, World!"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn github_missing_prefix_or_header() {
        let s = secrets(&["x"]);
        assert!(matches!(
            verify_github(&s, Some(&VECTOR[7..]), b""),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify_github(&s, None, b""),
            Err(SignatureError::Missing("X-Hub-Signature-256"))
        );
        assert!(matches!(
            verify_github(&s, Some(""), b""),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn github_no_secrets_accepts_nothing() {
        assert_eq!(
            verify_github(&[], Some(VECTOR), b"Hello, World!"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn gitlab_token() {
        let t = secrets(&["s3cret", "next"]);
        assert_eq!(verify_gitlab_token(&t, Some("s3cret")), Ok(()));
        assert_eq!(verify_gitlab_token(&t, Some("next")), Ok(()));
        assert_eq!(
            verify_gitlab_token(&t, Some("s3cre")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_gitlab_token(&t, Some("")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_gitlab_token(&t, None),
            Err(SignatureError::Missing("X-Gitlab-Token"))
        );
    }

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn std_headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> StandardHeaders<'a> {
        StandardHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn standard_webhooks_spec_vector() {
        // The example from the Standard Webhooks specification's reference libraries.
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let keys = secrets(&[KEY]);
        let h = std_headers("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", sig);
        assert_eq!(verify_standard_webhook(&keys, h, body, 1614265330), Ok(()));
        assert_eq!(
            standard_webhook_signature(KEY, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            sig
        );
    }

    #[test]
    fn standard_webhooks_accepts_any_of_several_signatures() {
        let body = b"{}";
        let good = standard_webhook_signature(KEY, "id1", 1000, body);
        let header = format!("v1,AAAA v1a,zzz {good}");
        let keys = secrets(&[KEY]);
        assert_eq!(
            verify_standard_webhook(&keys, std_headers("id1", "1000", &header), body, 1000),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_rejects_old_and_future_timestamps() {
        let body = b"{}";
        let keys = secrets(&[KEY]);
        let sig = standard_webhook_signature(KEY, "id1", 1000, body);
        let h = std_headers("id1", "1000", &sig);
        assert_eq!(
            verify_standard_webhook(&keys, h, body, 1000 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_standard_webhook(&keys, h, body, 1000 - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify_standard_webhook(&keys, h, body, 1000 + 300), Ok(()));
    }

    #[test]
    fn standard_webhooks_rejects_tampering() {
        let body = b"{}";
        let keys = secrets(&[KEY]);
        let sig = standard_webhook_signature(KEY, "id1", 1000, body);
        assert_eq!(
            verify_standard_webhook(&keys, std_headers("id2", "1000", &sig), body, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard_webhook(&keys, std_headers("id1", "1000", &sig), b"{ }", 1000),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_standard_webhook(&keys, std_headers("id1", "soon", &sig), body, 1000),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_standard_webhook(&keys, std_headers("id1", "1000", "v2,abc"), body, 1000),
            Err(SignatureError::Malformed(_))
        ));
        let missing = StandardHeaders {
            id: Some("id1"),
            timestamp: None,
            signature: Some(&sig),
        };
        assert_eq!(
            verify_standard_webhook(&keys, missing, body, 1000),
            Err(SignatureError::Missing("webhook-timestamp"))
        );
    }
}
