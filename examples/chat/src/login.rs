//! Heartbeat and login.

use longlink::{Agent, Ctx};

use crate::chat::{Chat, now_unix};
use crate::msg::{C2sUserHeartBeat, C2sUserLogin, S2cKick, S2cUserLogin};
use crate::token;

/// The heartbeat answer: the same message with the server's time. Runs on the connection's
/// reader (it touches no module state), before login too.
pub fn heartbeat(_msg: &C2sUserHeartBeat, agent: &Agent) {
    let _ = agent.write(&C2sUserHeartBeat { ptime: now_unix() });
}

/// Checks the token; on success binds the uid (kicking its previous connection), on failure
/// answers `ret: 0` and closes.
pub fn login(ctx: &mut Ctx<Chat>, msg: C2sUserLogin, agent: &Agent) {
    let claims = match token::verify(&ctx.secret, &msg.token, now_unix()) {
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
    tracing::debug!(conn = agent.id(), uid, plat = msg.login_plat, "logged in");
    let _ = agent.write(&S2cUserLogin {
        ret: 1,
        msg: "ok".into(),
        uid,
    });
}
