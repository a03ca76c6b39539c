//! A client that sends its requests and then shuts down its write side (a TCP half-close, as
//! scripts and some SDKs do) and reads on gets every answer, those of the chat's modules
//! included: the login reply and its private messages to itself (issue 14, item 4).

use super::*;

/// Trials, each on a fresh connection.
const TRIALS: u64 = 30;
/// Private messages each client sends itself after its login.
const MESSAGES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_client_gets_its_login_reply_and_every_echo() {
    bounded(TEST_TIMEOUT * 2, async {
        let server = TestServer::start(Enc::Json).await;
        for trial in 0..TRIALS {
            let uid = 500 + trial;
            let c = server.connect(Transport::Tcp).await;
            let (mut tx, mut rx) = c.into_split();
            let login = C2sUserLogin {
                token: token(uid),
                login_plat: 1,
            };
            tx.send(encode(Enc::Json, &login))
                .await
                .expect("send the login");
            for i in 0..MESSAGES {
                let msg = C2sMessage {
                    room_id: 0,
                    to_uid: uid,
                    text: format!("{trial}.{i}"),
                };
                tx.send(encode(Enc::Json, &msg))
                    .await
                    .expect("send a message");
            }
            // Dropping a TCP write half sends the FIN: no more requests.
            drop(tx);
            let mut replies = Vec::new();
            let end = loop {
                match rx.recv(TIMEOUT).await {
                    Ok(payload) => replies.push(decode(Enc::Json, &payload).expect("decodable")),
                    Err(end) => break end,
                }
            };
            assert!(
                matches!(replies.first(), Some(Reply::Login(l)) if l.ret == 1 && l.uid == uid),
                "trial {trial}: first {:?} of {} replies (then {end:?})",
                replies.first(),
                replies.len()
            );
            let texts: Vec<String> = replies[1..]
                .iter()
                .map(|r| match r {
                    Reply::Message(m) => m.text.clone(),
                    other => panic!("trial {trial}: unexpected {other:?}"),
                })
                .collect();
            let want: Vec<String> = (0..MESSAGES).map(|i| format!("{trial}.{i}")).collect();
            assert_same_texts(&format!("trial {trial}"), &texts, &want);
            assert!(matches!(end, End::Closed { .. }), "trial {trial}: {end:?}");
        }
        server.shutdown().await;
    })
    .await;
}
