//! JSON Web Tokens (HS256 only) for the chat protocol, on the `jsonwebtoken` crate.
//!
//! A token is the standard compact serialisation
//! `base64url(header) "." base64url(payload) "." base64url(signature)`
//! (URL-safe alphabet, no padding), where the header is
//! `{"alg":"HS256","typ":"JWT"}`, the payload carries the claims `uid`
//! and `exp`, and the signature is HMAC-SHA256 over
//! `base64url(header) "." base64url(payload)`.
//!
//! The crate splits the token, decodes it, refuses any `alg` but HS256 and
//! checks the signature. This module adds what the crate does not do the
//! chat's way: the length bound, the claims' checks (`uid` a non-negative
//! integer, `exp` an integer) and the expiry against the caller's clock
//! (`exp <= now` is expired, no leeway), and it sorts the failures into
//! [`TokenError`]s. The tests are in `tests/token.rs`.
//!
//! [`verify`] never panics, whatever the input: every failure is reported as
//! a [`TokenError`].

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only signing algorithm accepted in a token header.
pub const ALGORITHM: &str = "HS256";

/// Longest token, in bytes, that [`verify`] will look at; longer ones are
/// rejected as [`TokenError::Malformed`] before any decoding.
pub const MAX_TOKEN_LEN: usize = 4096;

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

/// The header of every token [`sign`] makes, serialised as
/// `{"alg":"HS256","typ":"JWT"}` byte for byte (`tests/token.rs` pins a known
/// token): the crate's own `typ` field comes before `alg`, so `typ` goes in
/// the extras (written after `alg`).
static HEADER: LazyLock<Header> = LazyLock::new(|| {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = None;
    header.extras = HashMap::from([("typ".to_owned(), "JWT".to_owned())]);
    header
});

/// HS256 only; no claim required and no time checked by the crate: it
/// reads the system clock and lets `exp == now` pass, while [`verify`] takes
/// the time from its caller and refuses `exp <= now`. `aud` is not checked
/// either: claims other than `uid` and `exp` are ignored.
static VALIDATION: LazyLock<Validation> = LazyLock::new(|| {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
});

/// Signs `claims` with `secret`, returning a compact HS256 JWT
/// (`header.payload.signature`, each part base64url without padding).
pub fn sign(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&HEADER, claims, &EncodingKey::from_secret(secret))
        .expect("HS256 over two integers cannot fail (HMAC takes keys of any length)")
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

    let payload = jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(secret),
        &VALIDATION,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::BadAlgorithm,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::Json(_) if jsonwebtoken::decode_header(token).is_err() => header_error(token),
        _ => TokenError::Malformed,
    })?
    .claims;

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

/// Names the fault of a header the crate could not read. The crate reports
/// any such header as one JSON error, as it reads `alg` into its list of
/// algorithms; a JSON object whose `alg` is missing or is not one of them
/// (`none`, `hs256`, `null`, …) is refused as [`TokenError::BadAlgorithm`],
/// anything else (no JSON, or JSON but not an object) as
/// [`TokenError::Malformed`].
fn header_error(token: &str) -> TokenError {
    let header = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    match json {
        Some(Value::Object(header)) => match header.get("alg").and_then(Value::as_str) {
            // HS256, but some other header field the crate could not read.
            Some(ALGORITHM) => TokenError::Malformed,
            _ => TokenError::BadAlgorithm,
        },
        _ => TokenError::Malformed,
    }
}
