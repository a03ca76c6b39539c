//! [`GateBuilder`]'s hooks: the application's say in a connection's life (the plain HTTP
//! of the WebSocket port, the upgrade, the gate's own closes, new, close and resume events).

use super::GateBuilder;
use crate::agent::Agent;
use crate::agent::events::{EventHandler, EventSink};
use crate::gate::Goodbye;
use crate::module::ModuleRef;

impl GateBuilder {
    /// Lets `f` answer a plain HTTP `GET` on the WebSocket port (one without
    /// `Upgrade: websocket`), e.g. to serve a page or a health check beside the WebSocket;
    /// `None` keeps the usual `400`. Upgrades on any path, other methods (`405`) and bad
    /// requests are answered as without it. Runs on the connection's task, within
    /// `http_timeout`: keep it short and non-blocking. The request and the response are the
    /// `http` crate's types; [`query_param`](crate::gate::query_param) reads the query, and its
    /// example shows a hook.
    pub fn on_http(
        mut self,
        f: impl Fn(&::http::Request<()>) -> Option<::http::Response<bytes::Bytes>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.hooks.on_http = Some(Box::new(f));
        self
    }

    /// Serves the message manifest ([`Processor::manifest`](crate::Processor::manifest) of this gate's processor, with
    /// the `LL_` messages when `resume_window` is on) as `GET /manifest.json` on the
    /// WebSocket port, for clients and their code generator (`longlink-codegen --manifest
    /// http://host:port/manifest.json`). `descriptors` are the application's compiled
    /// `.proto` files, which give the fields; other paths go to [`on_http`](Self::on_http).
    pub fn serve_manifest(
        mut self,
        descriptors: longlink_wire::manifest::FileDescriptorSet,
    ) -> Self {
        self.manifest = Some(descriptors);
        self
    }

    /// Lets `f` see each WebSocket upgrade request before it is made: its method, path,
    /// query and headers, and the client's real address
    /// ([`UpgradeRequest::remote_addr`](crate::gate::UpgradeRequest::remote_addr), after
    /// `proxy_protocol` and `trusted_proxies`). `f` accepts it ([`Accept`](crate::gate::Accept),
    /// perhaps attaching values to the new agent, e.g. the uid of a verified token, read
    /// later with [`Agent::attached`]) or refuses it ([`Refuse`](crate::gate::Refuse), answered
    /// with that HTTP status, `Connection: close`). It runs after the checks of RFC 6455,
    /// the connection limits and `ws_origins`, and before the `101`: a refused upgrade never
    /// becomes a connection (no new event, no message); an accepted one gets its new event
    /// with the values already attached. A panic is logged and answered `500`.
    ///
    /// Runs on the connection's task within `http_timeout`: keep it short and
    /// non-blocking (verify a signed token; do not call a database).
    ///
    /// ```no_run
    /// use http::StatusCode;
    /// use longlink::gate::{Accept, Refuse, UpgradeRequest};
    /// use longlink::{Agent, Encoding, Gate, GateConfig, Processor};
    ///
    /// #[derive(Clone)]
    /// struct Uid(u64);
    ///
    /// fn verify(token: &str) -> Option<u64> {
    ///     token.strip_prefix("uid-")?.parse().ok() // a real server checks a signature
    /// }
    ///
    /// # async fn example() -> Result<(), longlink::gate::GateError> {
    /// let config = GateConfig { ws_addr: "127.0.0.1:3653".into(), ..GateConfig::default() };
    /// let gate = Gate::builder(config, Processor::new(Encoding::Json))
    ///     .on_upgrade(|req: &UpgradeRequest| {
    ///         let Some(token) = req.query_param("token").or(req.cookie("token").map(str::to_owned))
    ///         else {
    ///             return Ok(Accept::new()); // logs in later, with a message
    ///         };
    ///         match verify(&token) {
    ///             Some(uid) => Ok(Accept::new().attach(Uid(uid))),
    ///             None => Err(Refuse::status(StatusCode::UNAUTHORIZED)),
    ///         }
    ///     })
    ///     .bind()
    ///     .await?;
    /// # let _ = |agent: &Agent| agent.attached::<Uid>().map(|uid| uid.0);
    /// # Ok(()) }
    /// ```
    pub fn on_upgrade(
        mut self,
        f: impl Fn(&crate::gate::UpgradeRequest) -> Result<crate::gate::Accept, crate::gate::Refuse>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.hooks.on_upgrade = Some(Box::new(f));
        self
    }

    /// Runs `f` just before the gate itself closes a connection (shutdown, idle timeout,
    /// rate limit): the place to queue a goodbye such as a kick with [`Goodbye::reason`],
    /// which is flushed before the socket closes. Runs on the gate's task (the connection's
    /// or the stopping one), not a module's: keep it short.
    pub fn on_goodbye(mut self, f: impl Fn(&Agent, Goodbye) + Send + Sync + 'static) -> Self {
        self.hooks.on_goodbye = Some(Box::new(f));
        self
    }

    /// Runs `f` on `module`'s task when a connection opens, before any of its messages
    /// (leaf's `NewAgent`). `f` takes `&mut State` or `&mut Ctx<State>`, and the agent.
    pub fn on_new_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.hooks.on_new = Some(EventSink::new(module, "new agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a connection has closed, after all of its messages
    /// (leaf's `CloseAgent`).
    pub fn on_close_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.hooks.on_close = Some(EventSink::new(module, "close agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a resumable session (`resume_window` on) was resumed
    /// on a new socket: the same [`Agent`], now with the new socket's
    /// [`remote_addr`](Agent::remote_addr) and [`transport`](Agent::transport). A session
    /// whose socket dropped sees no close event while it waits for its client; it sees one
    /// only if the window lapses or the session ends.
    ///
    /// The socket that resumed had an agent of its own from its accept to its `LL_Resume`:
    /// that one gets its new event and, at the resume, its close event, as any short
    /// connection would.
    pub fn on_resume<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.hooks.on_resume = Some(EventSink::new(module, "resume", f));
        self
    }
}
