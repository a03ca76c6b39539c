//! The application's look at a WebSocket upgrade before it is made
//! ([`GateBuilder::on_upgrade`](super::GateBuilder::on_upgrade)), and `[gate] ws_origins`.
//!
//! An upgrade that is valid (RFC 6455), within the connection limits, from an allowed
//! `Origin`, is shown to the hook as an [`UpgradeRequest`] with the client's real address;
//! the hook accepts it ([`Accept`], perhaps with values attached to the new
//! [`Agent`](crate::Agent)) or refuses it ([`Refuse`], an HTTP answer), before the `101`,
//! before the connection's new event and before its first message.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::ORIGIN;
use http::{Extensions, HeaderMap, Request, Response, StatusCode, Uri};

/// The hook's type as stored in the gate.
pub(crate) type UpgradeHook = dyn Fn(&UpgradeRequest) -> Result<Accept, Refuse> + Send + Sync;

/// A WebSocket upgrade request as the [`on_upgrade`](super::GateBuilder::on_upgrade) hook
/// sees it: the request head (always a `GET`; no body) and the client's address.
#[derive(Debug)]
pub struct UpgradeRequest {
    request: Request<()>,
    remote_addr: SocketAddr,
    peer_addr: SocketAddr,
}

impl UpgradeRequest {
    pub(crate) fn new(
        request: Request<()>,
        remote_addr: SocketAddr,
        peer_addr: SocketAddr,
    ) -> Self {
        UpgradeRequest {
            request,
            remote_addr,
            peer_addr,
        }
    }

    /// The whole request head, as the `http` crate's type.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The method (`GET`: any other is answered `405` before the hook).
    pub fn method(&self) -> &http::Method {
        self.request.method()
    }

    /// The request target (`/chat?token=...`).
    pub fn uri(&self) -> &Uri {
        self.request.uri()
    }

    /// The path (`/chat`).
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The query string, if any (`token=...`).
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// The first value of query parameter `name`, decoded as
    /// [`query_param`](super::query_param) decodes it.
    pub fn query_param(&self, name: &str) -> Option<String> {
        super::http::query_param(self.request.uri(), name)
    }

    /// Every header.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// The first value of header `name` (any case), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers().get(name)?.to_str().ok()
    }

    /// The value of cookie `name` from the `Cookie` headers, as sent (not decoded).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == name).then(|| v.trim())
            })
    }

    /// The client's address: the PROXY header's source (`proxy_protocol`), or the one a
    /// trusted proxy forwarded (`trusted_proxies`), else the socket's peer. What the new
    /// agent's [`remote_addr`](crate::Agent::remote_addr) will be.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The socket's peer: the client itself, or the proxy in front of the gate.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }
}

/// The hook's yes: make the upgrade, with these values attached to the new agent
/// ([`Agent::attached`](crate::Agent::attached)).
///
/// ```
/// use longlink::gate::Accept;
///
/// #[derive(Clone)]
/// struct Uid(u64);
///
/// let accept = Accept::new().attach(Uid(42));
/// # let _ = accept;
/// ```
#[derive(Debug, Default)]
pub struct Accept {
    values: Extensions,
}

impl Accept {
    /// Accepts, attaching nothing.
    pub fn new() -> Accept {
        Accept::default()
    }

    /// Attaches `value` to the new agent (one value per type; a second of the same type
    /// replaces the first).
    pub fn attach<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Accept {
        self.values.insert(value);
        self
    }

    pub(crate) fn into_values(self) -> Extensions {
        self.values
    }
}

/// The hook's no: the upgrade is answered with this HTTP response (the connection then
/// closes) and no connection is made.
#[derive(Debug)]
pub struct Refuse {
    /// Boxed: a hook's `Result` stays small.
    response: Box<Response<Bytes>>,
}

impl Refuse {
    /// Refuses with `status` (e.g. `401`, `403`) and its reason phrase as a text body. A
    /// status below 400 is not a refusal: it is answered `500` (and logged).
    pub fn status(status: StatusCode) -> Refuse {
        let reason = status.canonical_reason().unwrap_or("Refused");
        Refuse {
            response: Box::new(super::http::text(status, reason)),
        }
    }

    /// Refuses with a response of the application's own (headers such as
    /// `WWW-Authenticate`, a body); `Content-Length` and `Connection: close` are the gate's.
    pub fn response(response: Response<Bytes>) -> Refuse {
        Refuse {
            response: Box::new(response),
        }
    }

    /// The response, as bytes on the wire.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        if self.response.status().as_u16() < 400 {
            tracing::error!(
                status = self.response.status().as_u16(),
                "on_upgrade refused with a status that is not an error: answered 500"
            );
            return super::http::to_bytes(&internal_error());
        }
        super::http::to_bytes(&self.response)
    }
}

fn internal_error() -> Response<Bytes> {
    super::http::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// Whether `s` is an origin as `ws_origins` takes it: `scheme://host` or
/// `scheme://host:port`, no path (or `null`, what sandboxed pages send).
pub(crate) fn is_origin(s: &str) -> bool {
    if s == "null" {
        return true;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' ', '@'])
}

/// Whether `headers` pass `ws_origins` (`allowed`; empty: any): no `Origin` header, or one
/// whose value is listed (ASCII case ignored).
pub(crate) fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origins.next().is_none()
        && allowed
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin.trim()))
}

/// What the hook says of `request`: the values to attach, or the answer's bytes. A panic in
/// the hook is logged and answered `500`.
pub(crate) fn ask(hook: &UpgradeHook, request: &UpgradeRequest) -> Result<Extensions, Vec<u8>> {
    let run = std::panic::AssertUnwindSafe(|| hook(request));
    match std::panic::catch_unwind(run) {
        Ok(Ok(accept)) => Ok(accept.into_values()),
        Ok(Err(refuse)) => Err(refuse.to_bytes()),
        Err(_) => {
            tracing::error!(transport = "ws", remote = %request.remote_addr(), path = %request.path(), "on_upgrade hook panicked");
            Err(super::http::to_bytes(&internal_error()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(ORIGIN, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn origins_are_matched_whole_and_only_when_listed() {
        let allowed = vec![
            "https://chat.example.com".to_owned(),
            "http://localhost:8080/".to_owned(),
        ];
        assert!(origin_allowed(
            &allowed,
            &with_origin(&["https://chat.example.com"])
        ));
        assert!(origin_allowed(
            &allowed,
            &with_origin(&["HTTPS://Chat.Example.com"])
        ));
        assert!(origin_allowed(
            &allowed,
            &with_origin(&["http://localhost:8080"])
        ));
        assert!(origin_allowed(&allowed, &with_origin(&[])));
        for bad in [
            "https://chat.example.com.evil.net",
            "http://chat.example.com",
            "https://chat.example.com:8443",
            "null",
        ] {
            assert!(!origin_allowed(&allowed, &with_origin(&[bad])), "{bad}");
        }
        assert!(!origin_allowed(
            &allowed,
            &with_origin(&["https://chat.example.com", "https://evil.net"])
        ));
        assert!(origin_allowed(&[], &with_origin(&["https://evil.net"])));
    }

    #[test]
    fn what_ws_origins_takes() {
        for good in [
            "https://a.example",
            "http://localhost:3653",
            "null",
            "app://x",
        ] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "a.example",
            "https://",
            "https://a.example/chat",
            "://x",
            "*",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn cookies_and_queries_are_read_from_the_request() {
        let request = Request::builder()
            .uri("/ws?token=a%2Bb&x=1")
            .header("cookie", "a=1; session=xyz")
            .header("cookie", "b=2")
            .body(())
            .unwrap();
        let addr = "127.0.0.1:1".parse().unwrap();
        let req = UpgradeRequest::new(request, addr, addr);
        assert_eq!(req.query_param("token").as_deref(), Some("a+b"));
        assert_eq!(req.cookie("session"), Some("xyz"));
        assert_eq!(req.cookie("b"), Some("2"));
        assert_eq!(req.cookie("c"), None);
        assert_eq!(req.path(), "/ws");
    }

    #[test]
    fn a_refusal_is_an_error_status() {
        let bytes = Refuse::status(StatusCode::UNAUTHORIZED).to_bytes();
        assert!(bytes.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
        let bytes = Refuse::status(StatusCode::OK).to_bytes();
        assert!(bytes.starts_with(b"HTTP/1.1 500 "));
    }
}
