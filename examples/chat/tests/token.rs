//! Tests of the chat's JWTs (src/token.rs): `sign` and `verify` through the public API, with
//! tokens built by hand here (any header, payload or signature), and over a real server: a
//! token the server must refuse gets `S2C_UserLogin{ret: 0}` and a close.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use longlink_chat::token::{Claims, MAX_TOKEN_LEN, TokenError, sign, verify};

const NOW: i64 = 1_700_000_000;

/// The header of the tokens the chat signs, written down independently.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Computed independently with Python's hmac/hashlib/base64 for header
/// `{"alg":"HS256","typ":"JWT"}`, payload `{"uid":42,"exp":4102444800}`
/// and secret `longlink-dev-secret`.
const KNOWN_GOOD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                          eyJ1aWQiOjQyLCJleHAiOjQxMDI0NDQ4MDB9.\
                          h530e2Pt2PzJTuPO1Y7AtwZ9HY1ha69AtMWaVFtinNM";

/// Builds a token from arbitrary header/payload bytes, HMAC-SHA256-signed with `secret`
/// whatever the header says.
fn sign_raw(secret: &[u8], header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .expect("HMAC signing");
    format!("{signing_input}.{sig}")
}

fn sign_payload(payload: &str) -> String {
    sign_raw(SECRET, HEADER_JSON.as_bytes(), payload.as_bytes())
}

/// A token with header `{"alg":"none","typ":"JWT"}` and an empty signature, as an attacker
/// would send it.
fn unsigned_token(uid: u64, exp: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(format!(r#"{{"uid":{uid},"exp":{exp}}}"#));
    format!("{header}.{body}.")
}

/// A token properly signed with HS512 and `secret`.
fn hs512_token(secret: &[u8], uid: u64, exp: i64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &Claims { uid, exp },
        &EncodingKey::from_secret(secret),
    )
    .expect("HS512 signing")
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
    let header = sign(SECRET, &expected).split('.').next().map(str::to_owned);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header.unwrap()).unwrap(),
        HEADER_JSON.as_bytes()
    );
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
fn expiry_uses_the_callers_clock_without_leeway() {
    // Not the system clock: a token that expired long ago verifies at a time before its
    // `exp`, and one far in the future is refused at a time after it.
    let past = sign(SECRET, &Claims { uid: 1, exp: 1000 });
    assert!(verify(SECRET, &past, 999).is_ok());
    let now = now_unix();
    let future = sign(
        SECRET,
        &Claims {
            uid: 1,
            exp: now + 3600,
        },
    );
    assert_eq!(
        verify(SECRET, &future, now + 3600),
        Err(TokenError::Expired)
    );
    // No leeway: a second past `exp` is expired.
    let recent = sign(SECRET, &Claims { uid: 1, exp: now });
    assert_eq!(verify(SECRET, &recent, now + 1), Err(TokenError::Expired));
    // Negative times are fine for the clock and for `exp`.
    let negative = sign(SECRET, &Claims { uid: 1, exp: -5 });
    assert!(verify(SECRET, &negative, -6).is_ok());
    assert_eq!(verify(SECRET, &negative, -5), Err(TokenError::Expired));
}

#[test]
fn alg_none_rejected() {
    let payload = format!(r#"{{"uid":1,"exp":{}}}"#, NOW + 60);
    // Unsigned, as an attacker would send it.
    assert_eq!(
        verify(SECRET, &unsigned_token(1, NOW + 60), NOW),
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
    // Properly signed with another HMAC, with the same secret.
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = jsonwebtoken::encode(
            &Header::new(alg),
            &Claims {
                uid: 1,
                exp: NOW + 60,
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            verify(SECRET, &token, NOW),
            Err(TokenError::BadAlgorithm),
            "{alg:?}"
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
        "-1.5",
        "true",
    ] {
        let token = sign_payload(&format!(r#"{{"uid":1,"exp":{exp}}}"#));
        assert_eq!(
            verify(SECRET, &token, NOW),
            Err(TokenError::InvalidClaim("exp")),
            "exp = {exp}"
        );
    }
    // An array or object `exp` is refused too (jsonwebtoken's own reading of `exp` fails on
    // it before ours, so it is reported as malformed).
    for exp in ["[4102444800]", r#"{"t":4102444800}"#] {
        let token = sign_payload(&format!(r#"{{"uid":1,"exp":{exp}}}"#));
        assert!(verify(SECRET, &token, NOW).is_err(), "exp = {exp}");
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
    // An HS256 header with a field jsonwebtoken cannot read (its header fields are strings).
    let token = sign_raw(
        SECRET,
        br#"{"alg":"HS256","kid":5}"#,
        br#"{"uid":1,"exp":4102444800}"#,
    );
    assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
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
    // Just under the bound is looked at (and is fine).
    let pad = "x".repeat(MAX_TOKEN_LEN / 2);
    let token = sign_payload(&format!(r#"{{"uid":1,"exp":{},"pad":"{pad}"}}"#, NOW + 60));
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!(verify(SECRET, &token, NOW).is_ok());
}

#[test]
fn deeply_nested_json_does_not_panic() {
    let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let payload = format!(r#"{{"uid":1,"exp":1,"n":{nested}}}"#);
    let token = sign_payload(&payload);
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Malformed));
    // In the header too.
    let header = format!(r#"{{"alg":"HS256","n":{nested}}}"#);
    let token = sign_raw(SECRET, header.as_bytes(), br#"{"uid":1,"exp":1}"#);
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!(verify(SECRET, &token, NOW).is_err());
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
    // Registered claims the chat does not use are not checked either (jsonwebtoken would
    // refuse an `aud` it was not told to expect, or an `nbf` in the future).
    let token = sign_payload(&format!(
        r#"{{"uid":5,"exp":{},"aud":"someone","iss":"x","sub":"y","nbf":{}}}"#,
        NOW + 60,
        NOW + 30
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

// ---------------------------------------------------------------------------------------------
// Over a real server

/// Logs in with `token` on every transport and asserts `S2C_UserLogin{ret: 0, uid: 0}` naming
/// `why`, then a close; a good login still works afterwards.
async fn refused_everywhere(server: &TestServer, what: &str, token: &str, why: TokenError) {
    let enc = server.enc;
    for t in Transport::ALL {
        let mut c = server.connect(t).await;
        c.heartbeat().await;
        let answer = c.login(token).await;
        assert_eq!(answer.ret, 0, "{enc:?}/{t:?}/{what}: {answer:?}");
        assert_eq!(answer.uid, 0, "{enc:?}/{t:?}/{what}: {answer:?}");
        assert_eq!(answer.msg, why.to_string(), "{enc:?}/{t:?}/{what}");
        c.expect_closed().await;
        let mut fresh = server.login(t, 7).await;
        fresh.heartbeat().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_token_is_refused_and_closed() {
    bounded(TEST_TIMEOUT, async {
        let exp = now_unix() + 3600;
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            refused_everywhere(
                &server,
                "alg none",
                &unsigned_token(7, exp),
                TokenError::BadAlgorithm,
            )
            .await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs512_token_is_refused_and_closed() {
    bounded(TEST_TIMEOUT, async {
        let exp = now_unix() + 3600;
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            refused_everywhere(
                &server,
                "HS512",
                &hs512_token(SECRET, 7, exp),
                TokenError::BadAlgorithm,
            )
            .await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_of_the_old_signer_logs_in() {
    bounded(TEST_TIMEOUT, async {
        // Header `{"alg":"HS256","typ":"JWT"}` and the signature computed by hand, as the
        // hand-written signer (and tools/loadgen, and existing clients) made them.
        let exp = now_unix() + 3600;
        let token = sign_payload(&format!(r#"{{"uid":9,"exp":{exp}}}"#));
        assert_eq!(token, token_with(SECRET, 9, exp));
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                let mut c = server.connect(t).await;
                let answer = c.login(&token).await;
                assert_eq!(
                    (answer.ret, answer.uid),
                    (1, 9),
                    "{enc:?}/{t:?}: {answer:?}"
                );
            }
            server.shutdown().await;
        }
    })
    .await;
}
