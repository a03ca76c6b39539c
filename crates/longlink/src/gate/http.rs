//! Plain HTTP on the WebSocket port: a hook ([`GateBuilder::on_http`](super::GateBuilder::on_http))
//! that may answer a `GET` which is not a WebSocket upgrade, e.g. to serve a demo page, a
//! client library or a health check from the same address as the WebSocket.
//!
//! Only a complete, well-formed `GET` without `Upgrade: websocket` reaches the hook; every
//! other request is answered as before (405 for another method, 400, 426, 431, 503). The
//! answer always closes the connection (`Connection: close`), and a request the hook declines
//! (`None`) still gets the usual `400`.

use bytes::Bytes;

/// A plain `GET` request on the WebSocket port (not an upgrade).
///
/// ```no_run
/// use longlink::gate::{HttpRequest, HttpResponse};
/// use longlink::{Encoding, Gate, GateConfig, Processor};
///
/// # async fn example() -> Result<(), longlink::gate::GateError> {
/// let config = GateConfig { ws_addr: "127.0.0.1:3653".into(), ..GateConfig::default() };
/// let gate = Gate::builder(config, Processor::new(Encoding::Json))
///     .on_http(|req: &HttpRequest| match req.path.as_str() {
///         "/" => Some(HttpResponse::new(200, "text/html; charset=utf-8", "<h1>hello</h1>")),
///         "/health" => Some(HttpResponse::text(200, "ok")),
///         _ => None, // 400, as without the hook
///     })
///     .bind()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// Always `"GET"` today; kept so a hook can say so in logs.
    pub method: String,
    /// The path, without the query: `"/dev/token"`.
    pub path: String,
    /// What follows the `?`, undecoded (`"uid=7&x=1"`), or `""`.
    pub query: String,
    /// The request headers, in order, as sent (names as written by the client).
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// Splits a request target (`/a/b?x=1`) into path and query.
    pub fn new(method: &str, target: &str, headers: Vec<(String, String)>) -> HttpRequest {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
        }
    }

    /// The first value of query parameter `name`, with `%XX` escapes and `+` decoded
    /// (`None` when absent or not valid UTF-8 once decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k)? == name)
                .then(|| percent_decode(v))
                .flatten()
        })
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to an [`HttpRequest`]: a status, a content type and a body. Sent with
/// `Content-Length`, `Cache-Control: no-store` and `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, e.g. 200 or 404.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with any content type; `body` may be a `&'static str`, a `String`, a
    /// `Vec<u8>` or `Bytes`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse::new(status, "text/plain; charset=utf-8", body)
    }

    /// The status line and headers, then the body.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Header injection: a content type is one line.
        let content_type: String = self
            .content_type
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The hook's type as stored in the gate.
pub(crate) type HttpHandler = dyn Fn(&HttpRequest) -> Option<HttpResponse> + Send + Sync;

/// The reason phrase of common statuses (any other gets `"Status"`; clients ignore it).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_into_path_and_decoded_query() {
        let req = HttpRequest::new("GET", "/dev/token?uid=42&name=a%20b+c&x", vec![]);
        assert_eq!(req.path, "/dev/token");
        assert_eq!(req.query, "uid=42&name=a%20b+c&x");
        assert_eq!(req.query_param("uid").as_deref(), Some("42"));
        assert_eq!(req.query_param("name").as_deref(), Some("a b c"));
        assert_eq!(req.query_param("x").as_deref(), Some(""));
        assert_eq!(req.query_param("missing"), None);
        for bad in ["%zz", "%+1", "%4"] {
            let req = HttpRequest::new("GET", &format!("/p?bad={bad}"), vec![]);
            assert_eq!(req.query_param("bad"), None, "{bad}");
        }
        assert_eq!(HttpRequest::new("GET", "/", vec![]).query, "");
    }

    #[test]
    fn a_response_is_one_closed_http_message() {
        let bytes = HttpResponse::new(404, "text/plain\r\nX: y", "no").to_bytes();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plainX: y\r\nContent-Length: 2\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\nno"
        );
    }
}
