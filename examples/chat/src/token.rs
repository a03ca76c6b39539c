//! Minimal JSON Web Tokens (HS256 only) for the chat protocol.
//!
//! A token is the standard compact serialisation
//! `base64url(header) "." base64url(payload) "." base64url(signature)`
//! (URL-safe alphabet, no padding), where the header is
//! `{"alg":"HS256","typ":"JWT"}`, the payload carries the claims `uid`
//! and `exp`, and the signature is HMAC-SHA256 over
//! `base64url(header) "." base64url(payload)`.
//!
//! [`verify`] never panics, whatever the input: every failure is reported as
//! a [`TokenError`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only signing algorithm accepted in a token header.
pub const ALGORITHM: &str = "HS256";

/// Longest token, in bytes, that [`verify`] will look at; longer ones are
/// rejected as [`TokenError::Malformed`] before any decoding.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The JSON header every token produced by [`sign`] carries.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims carried by a chat token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Claims {
    /// The authenticated user's id.
    pub uid: u64,
    /// Expiry time in unix seconds; the token is invalid once
    /// `now >= exp`.
    pub exp: i64,
}

/// Why a token was rejected by [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not a well-formed compact JWT: too long, not exactly
    /// three dot-separated parts, invalid base64url, or a header/payload
    /// that is not a JSON object.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than `HS256` (including `none`),
    /// or names none at all.
    #[error("unsupported token algorithm (only HS256 is accepted)")]
    BadAlgorithm,
    /// The signature does not match the header and payload for this secret.
    #[error("invalid token signature")]
    BadSignature,
    /// The token's `exp` claim is at or before the current time.
    #[error("token has expired")]
    Expired,
    /// A required claim is absent from the payload.
    #[error("token is missing required claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim is present but has the wrong type or range (e.g. a negative,
    /// fractional, string or out-of-range `uid`).
    #[error("token claim `{0}` has an invalid value")]
    InvalidClaim(&'static str),
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed), so this
    // cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Signs `claims` with `secret`, returning a compact HS256 JWT
/// (`header.payload.signature`, each part base64url without padding).
pub fn sign(secret: &[u8], claims: &Claims) -> String {
    let payload_json =
        serde_json::to_vec(claims).expect("serialising two integers to JSON cannot fail");
    let mut token = URL_SAFE_NO_PAD.encode(HEADER_JSON);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);

    let mut mac = new_mac(secret);
    mac.update(token.as_bytes());
    let signature = mac.finalize().into_bytes();

    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// Checks `token` against `secret` and the current time `now_unix`
/// (unix seconds) and returns its claims.
///
/// The token must be at most [`MAX_TOKEN_LEN`] bytes, have exactly three
/// dot-separated base64url parts, a header whose `alg` is `HS256`, a valid
/// HMAC-SHA256 signature (compared in constant time), a non-negative integer
/// `uid` and an integer `exp` with `exp > now_unix`.
pub fn verify(secret: &[u8], token: &str, now_unix: i64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }

    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };

    // Header: must be a JSON object whose `alg` is exactly "HS256".
    let header = decode_json_object(header_b64)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALGORITHM => {}
        _ => return Err(TokenError::BadAlgorithm),
    }

    // Signature over the first two parts, exactly as they appear.
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::Malformed)?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    let mut mac = new_mac(secret);
    mac.update(&token.as_bytes()[..signed_len]);
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;

    // Payload: only trusted once the signature has been checked.
    let payload = decode_json_object(payload_b64)?;
    let uid = match payload.get("uid") {
        None => return Err(TokenError::MissingClaim("uid")),
        Some(value) => value.as_u64().ok_or(TokenError::InvalidClaim("uid"))?,
    };
    let exp = match payload.get("exp") {
        None => return Err(TokenError::MissingClaim("exp")),
        Some(value) => value.as_i64().ok_or(TokenError::InvalidClaim("exp"))?,
    };

    if exp <= now_unix {
        return Err(TokenError::Expired);
    }
    Ok(Claims { uid, exp })
}

/// Decodes one base64url part and parses it as a JSON object.
fn decode_json_object(part: &str) -> Result<serde_json::Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"longlink-dev-secret";
    const NOW: i64 = 1_700_000_000;

    /// Computed independently with Python's hmac/hashlib/base64 for header
    /// `{"alg":"HS256","typ":"JWT"}`, payload `{"uid":42,"exp":4102444800}`
    /// and secret `longlink-dev-secret`.
    const KNOWN_GOOD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                              eyJ1aWQiOjQyLCJleHAiOjQxMDI0NDQ4MDB9.\
                              h530e2Pt2PzJTuPO1Y7AtwZ9HY1ha69AtMWaVFtinNM";

    /// Builds a correctly signed token from arbitrary header/payload bytes.
    fn sign_raw(secret: &[u8], header: &[u8], payload: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = new_mac(secret);
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    fn sign_payload(payload: &str) -> String {
        sign_raw(SECRET, HEADER_JSON.as_bytes(), payload.as_bytes())
    }

    #[test]
    fn round_trip() {
        let claims = Claims {
            uid: 7,
            exp: NOW + 60,
        };
        let token = sign(SECRET, &claims);
        assert_eq!(token.split('.').count(), 3);
        assert!(!token.contains('='));
        assert_eq!(verify(SECRET, &token, NOW), Ok(claims));
    }

    #[test]
    fn round_trip_extremes() {
        let claims = Claims {
            uid: u64::MAX,
            exp: i64::MAX,
        };
        let token = sign(b"", &claims);
        assert_eq!(verify(b"", &token, i64::MIN), Ok(claims));
    }

    #[test]
    fn known_good_token_verifies() {
        let expected = Claims {
            uid: 42,
            exp: 4_102_444_800,
        };
        assert_eq!(verify(SECRET, KNOWN_GOOD, NOW), Ok(expected));
        assert_eq!(sign(SECRET, &expected), KNOWN_GOOD);
    }

    #[test]
    fn wrong_secret() {
        let token = sign(
            SECRET,
            &Claims {
                uid: 1,
                exp: NOW + 60,
            },
        );
        assert_eq!(
            verify(b"other-secret", &token, NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"other-secret", KNOWN_GOOD, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload() {
        let token = sign(
            SECRET,
            &Claims {
                uid: 1,
                exp: NOW + 60,
            },
        );
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"uid":0,"exp":{}}}"#, NOW + 60));
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verify(SECRET, &forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_signature() {
        let mut token = sign(
            SECRET,
            &Claims {
                uid: 1,
                exp: NOW + 60,
            },
        );
        // A truncated signature must be rejected (as malformed base64 or as a
        // wrong signature, depending on the dropped bits).
        token.pop();
        assert!(verify(SECRET, &token, NOW).is_err());
        let mut parts: Vec<String> = KNOWN_GOOD.split('.').map(str::to_owned).collect();
        let sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        let mut flipped = sig.clone();
        flipped[0] ^= 1;
        parts[2] = URL_SAFE_NO_PAD.encode(flipped);
        assert_eq!(
            verify(SECRET, &parts.join("."), NOW),
            Err(TokenError::BadSignature)
        );
        parts[2] = String::new();
        assert_eq!(
            verify(SECRET, &parts.join("."), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired() {
        let token = sign(
            SECRET,
            &Claims {
                uid: 1,
                exp: NOW - 1,
            },
        );
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Expired));
    }

    #[test]
    fn exp_equal_to_now_is_expired() {
        let token = sign(SECRET, &Claims { uid: 1, exp: NOW });
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Expired));
        assert!(verify(SECRET, &token, NOW - 1).is_ok());
    }

    #[test]
    fn alg_none_rejected() {
        let payload = format!(r#"{{"uid":1,"exp":{}}}"#, NOW + 60);
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(&payload);
        // Unsigned, as an attacker would send it.
        assert_eq!(
            verify(SECRET, &format!("{header}.{body}."), NOW),
            Err(TokenError::BadAlgorithm)
        );
        // Even correctly MACed with the secret, `none` is refused.
        let signed = sign_raw(SECRET, br#"{"alg":"none","typ":"JWT"}"#, payload.as_bytes());
        assert_eq!(verify(SECRET, &signed, NOW), Err(TokenError::BadAlgorithm));
    }

    #[test]
    fn other_algorithms_rejected() {
        let payload = format!(r#"{{"uid":1,"exp":{}}}"#, NOW + 60);
        for header in [
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"hs256","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":256}"#,
            r#"{"typ":"JWT"}"#,
            r#"{}"#,
        ] {
            let token = sign_raw(SECRET, header.as_bytes(), payload.as_bytes());
            assert_eq!(
                verify(SECRET, &token, NOW),
                Err(TokenError::BadAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn missing_claims() {
        let token = sign_payload(&format!(r#"{{"exp":{}}}"#, NOW + 60));
        assert_eq!(
            verify(SECRET, &token, NOW),
            Err(TokenError::MissingClaim("uid"))
        );
        let token = sign_payload(r#"{"uid":1}"#);
        assert_eq!(
            verify(SECRET, &token, NOW),
            Err(TokenError::MissingClaim("exp"))
        );
        let token = sign_payload("{}");
        assert!(matches!(
            verify(SECRET, &token, NOW),
            Err(TokenError::MissingClaim(_))
        ));
    }

    #[test]
    fn invalid_uid() {
        let exp = NOW + 60;
        for uid in [
            r#""42""#,
            "-1",
            "42.0",
            "4.2e1",
            "18446744073709551616",
            "1e300",
            "null",
            "true",
            "[42]",
            "{}",
        ] {
            let token = sign_payload(&format!(r#"{{"uid":{uid},"exp":{exp}}}"#));
            assert_eq!(
                verify(SECRET, &token, NOW),
                Err(TokenError::InvalidClaim("uid")),
                "uid = {uid}"
            );
        }
        // A number outside f64's range is refused by the JSON parser itself.
        let token = sign_payload(&format!(r#"{{"uid":1e400,"exp":{exp}}}"#));
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn invalid_exp() {
        for exp in [
            r#""4102444800""#,
            "4102444800.5",
            "9223372036854775808",
            "99999999999999999999999999",
            "null",
        ] {
            let token = sign_payload(&format!(r#"{{"uid":1,"exp":{exp}}}"#));
            assert_eq!(
                verify(SECRET, &token, NOW),
                Err(TokenError::InvalidClaim("exp")),
                "exp = {exp}"
            );
        }
    }

    #[test]
    fn non_object_payload_and_header() {
        for payload in ["[]", "42", "\"x\"", "null", "{", ""] {
            let token = sign_payload(payload);
            assert_eq!(
                verify(SECRET, &token, NOW),
                Err(TokenError::Malformed),
                "payload = {payload:?}"
            );
        }
        for header in ["[]", "\"HS256\"", "", "{\"alg\":"] {
            let token = sign_raw(SECRET, header.as_bytes(), br#"{"uid":1,"exp":1}"#);
            assert_eq!(
                verify(SECRET, &token, NOW),
                Err(TokenError::Malformed),
                "header = {header:?}"
            );
        }
        // Non-UTF-8 bytes inside the base64.
        let token = sign_raw(SECRET, &[0xff, 0xfe, 0x00], br#"{"uid":1,"exp":1}"#);
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
        let token = sign_raw(SECRET, HEADER_JSON.as_bytes(), &[0xc3, 0x28, 0x80]);
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn garbage_inputs() {
        let parts: Vec<&str> = KNOWN_GOOD.split('.').collect();
        let four = format!("{KNOWN_GOOD}.{}", parts[2]);
        let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
        let spaced = format!(" {KNOWN_GOOD}");
        let cases: Vec<&str> = vec![
            "",
            ".",
            "..",
            "...",
            "abc",
            parts[0],
            "a.b",
            "a.b.c.d",
            &four,
            "!!!.@@@.###",
            "eyJ.eyJ.e",
            "ä.ö.ü",
            "\0.\0.\0",
            &padded,
            &spaced,
        ];
        for case in cases {
            let result = verify(SECRET, case, NOW);
            assert!(result.is_err(), "{case:?} gave {result:?}");
            assert_ne!(result, Err(TokenError::Expired), "{case:?}");
        }
        assert_eq!(verify(SECRET, "", NOW), Err(TokenError::Malformed));
        assert_eq!(verify(SECRET, parts[0], NOW), Err(TokenError::Malformed));
        assert_eq!(verify(SECRET, &four, NOW), Err(TokenError::Malformed));
        assert_eq!(
            verify(SECRET, "!!!.@@@.###", NOW),
            Err(TokenError::Malformed)
        );
        // Valid header and payload but a signature that is not base64url.
        let bad_sig = format!("{}.{}.***", parts[0], parts[1]);
        assert_eq!(verify(SECRET, &bad_sig, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn overlong_token_rejected() {
        let long_payload = format!(
            r#"{{"uid":1,"exp":{},"pad":"{}"}}"#,
            NOW + 60,
            "x".repeat(MAX_TOKEN_LEN)
        );
        let token = sign_payload(&long_payload);
        assert!(token.len() > MAX_TOKEN_LEN);
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
        let junk = "a".repeat(1 << 20);
        assert_eq!(verify(SECRET, &junk, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn deeply_nested_json_does_not_panic() {
        let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let payload = format!(r#"{{"uid":1,"exp":1,"n":{nested}}}"#);
        let token = sign_payload(&payload);
        assert!(token.len() <= MAX_TOKEN_LEN);
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn extra_claims_are_ignored() {
        let token = sign_payload(&format!(
            r#"{{"uid":5,"exp":{},"name":"alice","iat":1}}"#,
            NOW + 60
        ));
        assert_eq!(
            verify(SECRET, &token, NOW),
            Ok(Claims {
                uid: 5,
                exp: NOW + 60
            })
        );
    }

    #[test]
    fn error_messages_are_clear() {
        assert_eq!(
            TokenError::MissingClaim("uid").to_string(),
            "token is missing required claim `uid`"
        );
        assert_eq!(TokenError::Expired.to_string(), "token has expired");
        assert!(TokenError::BadAlgorithm.to_string().contains("HS256"));
    }
}
