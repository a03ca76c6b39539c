//! Plain HTTP on the WebSocket port: a hook ([`GateBuilder::on_http`](super::GateBuilder::on_http))
//! that may answer a `GET` which is not a WebSocket upgrade, e.g. to serve a demo page, a
//! client library or a health check from the same address as the WebSocket.
//!
//! The hook takes the `http` crate's [`Request`] (method, URI, version and headers; no body)
//! and returns its [`Response`] with a [`Bytes`] body. Only a complete, well-formed `GET`
//! without `Upgrade: websocket` reaches the hook; every other request is answered as without
//! it (405 for another method, 400, 426, 431, 503), and so is a request whose target is not a
//! URI. The answer always closes the connection (`Connection: close`), and a request the hook
//! declines (`None`) still gets the usual `400`.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};

/// The hook's type as stored in the gate.
pub(crate) type HttpHandler = dyn Fn(&Request<()>) -> Option<Response<Bytes>> + Send + Sync;

/// The first value of query parameter `name` in `uri`, with `%XX` escapes and `+` decoded
/// (`None` when absent, when an escape is not `%` and two hex digits, or when the value is not
/// valid UTF-8 once decoded).
///
/// ```no_run
/// use bytes::Bytes;
/// use http::{Request, Response, header::CONTENT_TYPE};
/// use longlink::gate::query_param;
/// use longlink::{Encoding, Gate, GateConfig, Processor};
///
/// fn text(status: u16, body: String) -> Option<Response<Bytes>> {
///     let page = Response::builder().status(status).header(CONTENT_TYPE, "text/plain");
///     page.body(Bytes::from(body)).ok()
/// }
///
/// # async fn example() -> Result<(), longlink::gate::GateError> {
/// let config = GateConfig { ws_addr: "127.0.0.1:3653".into(), ..GateConfig::default() };
/// let gate = Gate::builder(config, Processor::new(Encoding::Json))
///     .on_http(|req: &Request<()>| match req.uri().path() {
///         "/health" => text(200, "ok".into()),
///         "/hello" => text(200, format!("hello {}", query_param(req.uri(), "name")?)),
///         _ => None, // 400, as without the hook
///     })
///     .bind()
///     .await?;
/// # Ok(()) }
/// ```
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k)? == name).then(|| decode(v)).flatten()
    })
}

/// A `+`-for-space, `%XX` form value decoded; `None` for a bad escape or bad UTF-8.
fn decode(s: &str) -> Option<String> {
    let escapes_ok = s.split('%').skip(1).all(|rest| {
        let hex = rest.as_bytes().get(..2);
        hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    let spaced = s.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()?;
    escapes_ok.then(|| decoded.into_owned())
}

/// The request the hook sees, from the parsed head: `None` when the target is not a URI or a
/// header does not fit the `http` crate's types (the hook is then not asked).
pub(crate) fn request(
    target: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
) -> Option<Request<()>> {
    let mut request = Request::builder()
        .method("GET")
        .uri(Uri::try_from(target).ok()?)
        .version(if version == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        })
        .body(())
        .ok()?;
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        request
            .headers_mut()
            .append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some(request)
}

/// A `text/plain; charset=utf-8` answer.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    response.headers_mut().insert(CONTENT_TYPE, plain);
    response
}

/// The status line, the hook's headers (names capitalised), `Content-Length`,
/// `Cache-Control: no-store` unless the hook set one, `Connection: close`, then the body. The
/// length and the connection are ours, whatever the hook set.
pub(crate) fn to_bytes(response: &Response<Bytes>) -> Vec<u8> {
    let status = response.status();
    let reason = status.canonical_reason().unwrap_or("Status");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).into_bytes();
    let ours = [CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING];
    for (name, value) in response.headers() {
        if !ours.contains(name) {
            out.extend_from_slice(capitalised(name.as_str()).as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    let body = response.body();
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    if !response.headers().contains_key(CACHE_CONTROL) {
        out.extend_from_slice(b"Cache-Control: no-store\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// `content-type` as `Content-Type` (the `http` crate keeps names in lower case).
fn capitalised(name: &str) -> String {
    let mut up = true;
    name.chars()
        .map(|c| {
            let c = if up { c.to_ascii_uppercase() } else { c };
            up = c == '-';
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_into_path_and_decoded_query() {
        let uri = Uri::from_static("/dev/token?uid=42&name=a%20b+c&x");
        assert_eq!(uri.path(), "/dev/token");
        assert_eq!(uri.query(), Some("uid=42&name=a%20b+c&x"));
        assert_eq!(query_param(&uri, "uid").as_deref(), Some("42"));
        assert_eq!(query_param(&uri, "name").as_deref(), Some("a b c"));
        assert_eq!(query_param(&uri, "x").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "missing"), None);
        for bad in ["%zz", "%+1", "%4"] {
            let uri = Uri::try_from(format!("/p?bad={bad}")).unwrap();
            assert_eq!(query_param(&uri, "bad"), None, "{bad}");
        }
        assert_eq!(Uri::from_static("/").query(), None);
    }

    #[test]
    fn a_response_is_one_closed_http_message() {
        // A header value cannot hold a line break, so a hook cannot add a header by one.
        assert!(HeaderValue::from_str("text/plain\r\nX: y").is_err());
        let page = Response::builder()
            .status(404)
            .header(CONTENT_TYPE, "text/plain")
            .header(CONTENT_LENGTH, "99")
            .body(Bytes::from_static(b"no"))
            .unwrap();
        assert_eq!(
            String::from_utf8(to_bytes(&page)).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\nno"
        );
    }
}
