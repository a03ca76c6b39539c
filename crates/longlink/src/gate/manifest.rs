//! `/manifest.json` on the WebSocket port ([`GateBuilder::serve_manifest`](super::GateBuilder::serve_manifest)):
//! the processor's message manifest, answered before the application's `on_http` hook.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};

use super::shared::Hooks;
use crate::processor::Processor;

/// Puts `/manifest.json` (the manifest of `processor`'s messages, fields from `descriptors`)
/// in front of the application's hook, when `descriptors` were given.
pub(crate) fn serve_manifest(
    hooks: &mut Hooks,
    descriptors: Option<longlink_wire::manifest::FileDescriptorSet>,
    processor: &Processor,
) {
    let Some(descriptors) = descriptors else {
        return;
    };
    let json = Bytes::from(processor.manifest(&descriptors).to_json());
    let app = hooks.on_http.take();
    hooks.on_http = Some(Box::new(move |req: &Request<()>| {
        if req.uri().path() == "/manifest.json" {
            let mut response = Response::new(json.clone());
            let kind = HeaderValue::from_static("application/json");
            response.headers_mut().insert(CONTENT_TYPE, kind);
            return Some(response);
        }
        app.as_ref().and_then(|hook| hook(req))
    }));
}
