//! Login at the WebSocket upgrade (`ws://host/chat?token=...`): the client gets what
//! `C2S_UserLogin` with the same token gets, byte for byte (`S2C_UserLogin` with `ret: 1`, or
//! `ret: 0` and the close), and a second login of the uid kicks the first, whichever way each
//! logged in.

mod common;

use common::*;
use longlink_chat::msg::C2sUserLogin;

/// `/chat?token=...` as a path.
fn with_token(token: &str) -> String {
    format!("/chat?token={token}&login_plat=2")
}

/// The first payload a client gets after a `C2S_UserLogin` with `token`.
async fn answer_to_message(server: &TestServer, token: &str) -> (Vec<u8>, Client) {
    let mut c = server.connect(Transport::Ws).await;
    c.send(&C2sUserLogin {
        token: token.to_owned(),
        login_plat: 2,
    })
    .await;
    (c.recv_payload().await, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_upgrade_logs_in_as_c2s_user_login_does() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut at_upgrade = server.connect_ws_path(&with_token(&token(42))).await;
            let got = at_upgrade.recv_payload().await;
            let (by_message, _m) = answer_to_message(&server, &token(43)).await;
            // The same answer but for the uid: compare with the uid swapped in.
            match (decode(enc, &got), decode(enc, &by_message)) {
                (Ok(Reply::Login(a)), Ok(Reply::Login(b))) => {
                    assert_eq!((a.ret, a.msg.as_str(), a.uid), (1, "ok", 42), "{enc:?}");
                    assert_eq!((b.ret, b.msg.as_str(), b.uid), (1, "ok", 43), "{enc:?}");
                }
                other => panic!("{enc:?}: {other:?}"),
            }
            // Logged in: the watch needs no C2S_UserLogin.
            at_upgrade.uid = Some(42);
            assert_eq!(at_upgrade.watch(9).await, 1);
            // A second login of uid 42, by message, kicks the first (as between two
            // messages), and the other way round.
            let (second, mut by_msg) = answer_to_message(&server, &token(42)).await;
            assert!(matches!(decode(enc, &second), Ok(Reply::Login(l)) if l.ret == 1));
            match at_upgrade.recv().await {
                Reply::Kick(k) => assert_eq!(k.reason, "logged in elsewhere"),
                r => panic!("{enc:?}: expected S2C_Kick, got {r:?}"),
            }
            at_upgrade.expect_closed().await;
            let mut third = server.connect_ws_path(&with_token(&token(42))).await;
            assert!(matches!(third.recv().await, Reply::Login(l) if l.ret == 1 && l.uid == 42));
            assert!(matches!(by_msg.recv().await, Reply::Kick(_)));
            by_msg.expect_closed().await;
            third.uid = Some(42);
            assert_eq!(third.watch(9).await, 1, "the kicked ones left the room");
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_in_the_upgrade_is_refused_as_c2s_user_login_refuses_it() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let expired = token_with(b"longlink-dev-secret", 7, now_unix() - 10);
            let forged = token_with(b"not-the-secret", 7, now_unix() + 600);
            for bad in ["garbage", expired.as_str(), forged.as_str(), &token(0)] {
                let mut at_upgrade = server.connect_ws_path(&with_token(bad)).await;
                let got = at_upgrade.recv_payload().await;
                let (by_message, mut m) = answer_to_message(&server, bad).await;
                assert_eq!(got, by_message, "{enc:?}: {bad}");
                assert!(
                    matches!(decode(enc, &got), Ok(Reply::Login(l)) if l.ret == 0 && !l.msg.is_empty()),
                    "{enc:?}: {:?}",
                    decode(enc, &got)
                );
                at_upgrade.expect_closed().await;
                m.expect_closed().await;
            }
            // Without a token, nothing is said until the client logs in.
            let mut plain = server.connect_ws_path("/chat?x=1").await;
            plain.expect_quiet().await;
            plain.login_uid(8).await;
            server.shutdown().await;
        }
    })
    .await;
}
