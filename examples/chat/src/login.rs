//! Heartbeat and login: with `C2S_UserLogin`, or at the WebSocket upgrade with a `?token=`
//! (checked by [`on_upgrade`], applied by the new event through [`at_upgrade`]); either way
//! the client gets the same `S2C_UserLogin`.

use longlink::gate::{Accept, Refuse, UpgradeRequest};
use longlink::{Agent, Ctx};

use crate::chat::{Chat, now_unix};
use crate::msg::{C2sUserHeartBeat, C2sUserLogin, S2cKick, S2cUserLogin};
use crate::token::{self, Claims, TokenError};

/// What the upgrade's `?token=` said, attached to the new agent by [`on_upgrade`]: the
/// token's claims, or why it was refused, and `?login_plat=` (0 if absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeLogin {
    /// The checked token.
    pub token: Result<Claims, TokenError>,
    /// The platform, as `C2S_UserLogin.login_plat`.
    pub login_plat: i32,
}

/// The gate's `on_upgrade` hook: an upgrade with `?token=` (e.g. `ws://host:3653/?token=...`)
/// has its token checked here, and the outcome attached to the agent; the login itself (the
/// session, the answer) is the chat module's, at the connection's new event. Every upgrade
/// is accepted: a bad token is answered as `C2S_UserLogin` answers it (`S2C_UserLogin{ret:
/// 0}`, then the close), which a browser can read where it cannot read an HTTP status.
pub fn on_upgrade(
    secret: &[u8],
) -> impl Fn(&UpgradeRequest) -> Result<Accept, Refuse> + Send + Sync + 'static {
    let secret = secret.to_vec();
    move |req: &UpgradeRequest| {
        let Some(token) = req.query_param("token") else {
            return Ok(Accept::new());
        };
        let login_plat = req
            .query_param("login_plat")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let token = token::verify(&secret, &token, now_unix());
        Ok(Accept::new().attach(UpgradeLogin { token, login_plat }))
    }
}

/// A gate node's `on_upgrade` hook (`[cluster] node_type = "gate"`): its chat module runs on
/// another node, which does not see what is attached here, so an upgrade with `?token=` is
/// refused (`501`) rather than left waiting for a login answer that never comes; clients
/// log in with `C2S_UserLogin` there.
pub fn refuse_upgrade_login(req: &UpgradeRequest) -> Result<Accept, Refuse> {
    match req.query_param("token") {
        Some(_) => Err(Refuse::status(http::StatusCode::NOT_IMPLEMENTED)),
        None => Ok(Accept::new()),
    }
}

/// The new event's part of a login at the upgrade: if [`on_upgrade`] attached a token, it
/// logs the connection in (or refuses it) exactly as `C2S_UserLogin` would.
pub fn at_upgrade(ctx: &mut Ctx<Chat>, agent: &Agent) {
    if let Some(login) = agent.attached::<UpgradeLogin>().copied() {
        log_in(ctx, agent, login.token, login.login_plat);
    }
}

/// The heartbeat answer: the same message with the server's time. Runs on the connection's
/// reader (it touches no module state), before login too.
pub fn heartbeat(_msg: &C2sUserHeartBeat, agent: &Agent) {
    let _ = agent.write(&C2sUserHeartBeat { ptime: now_unix() });
}

/// Checks the token; on success binds the uid (kicking its previous connection), on failure
/// answers `ret: 0` and closes.
pub fn login(ctx: &mut Ctx<Chat>, msg: C2sUserLogin, agent: &Agent) {
    let checked = token::verify(&ctx.secret, &msg.token, now_unix());
    log_in(ctx, agent, checked, msg.login_plat);
}

/// A checked token's login: on success binds the uid (kicking its previous connection) and
/// answers `ret: 1`; on failure answers `ret: 0` and closes.
fn log_in(ctx: &mut Ctx<Chat>, agent: &Agent, checked: Result<Claims, TokenError>, plat: i32) {
    let claims = match checked {
        Ok(claims) => claims,
        Err(e) => {
            tracing::debug!(conn = agent.id(), error = %e, "login refused");
            let _ = agent.kick(&S2cUserLogin {
                ret: 0,
                msg: e.to_string(),
                uid: 0,
            });
            return;
        }
    };
    let uid = claims.uid;
    if uid == 0 {
        let _ = agent.kick(&S2cUserLogin {
            ret: 0,
            msg: "uid 0 is not a user".into(),
            uid: 0,
        });
        return;
    }
    if let Some(old) = ctx.sessions.bind(uid, agent) {
        tracing::debug!(
            uid,
            old = old.id(),
            new = agent.id(),
            "second login, kicking the first"
        );
        let _ = old.kick(&S2cKick {
            reason: "logged in elsewhere".into(),
        });
        if let Some(conn) = ctx.conns.get_mut(&old.id()) {
            conn.uid = None;
        }
    }
    // The entry is made at login: an idle connection that never logs in costs no entry.
    ctx.conns.entry(agent.id()).or_default().uid = Some(uid);
    tracing::debug!(conn = agent.id(), uid, plat, "logged in");
    let _ = agent.write(&S2cUserLogin {
        ret: 1,
        msg: "ok".into(),
        uid,
    });
}
