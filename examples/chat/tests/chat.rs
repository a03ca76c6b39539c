//! Black-box tests of the chat protocol (../../shared/protocol/chat.md): a real server on
//! ephemeral ports, real TCP and WebSocket clients that do their own framing and encoding.

mod common;

use common::*;
use longlink_chat::msg::{C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Heartbeat and login

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_is_answered_before_login_with_server_time() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                let mut c = server.connect(t).await;
                // Whatever the client's ptime, the answer carries the server's time.
                for ptime in [0, 1, -5, i64::MAX, now_unix()] {
                    c.send(&C2sUserHeartBeat { ptime }).await;
                    match c.recv().await {
                        Reply::HeartBeat(hb) => assert_near_now(hb.ptime, "heartbeat"),
                        other => panic!("{enc:?}/{t:?}: expected a heartbeat, got {other:?}"),
                    }
                }
                // Still not logged in: the chat module refuses a watch.
                c.expect_quiet().await;
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_succeeds_with_a_valid_token() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut clients = Vec::new();
            for (i, t) in Transport::ALL.into_iter().enumerate() {
                for (j, plat) in [0, 1, 2, -1].into_iter().enumerate() {
                    let uid = 100 + 10 * i as u64 + j as u64;
                    let mut c = server.connect(t).await;
                    c.send(&C2sUserLogin {
                        token: token(uid),
                        login_plat: plat,
                    })
                    .await;
                    match c.recv().await {
                        Reply::Login(l) => {
                            assert_eq!(l.ret, 1, "{enc:?}/{t:?}: {l:?}");
                            assert_eq!(l.uid, uid, "{enc:?}/{t:?}: {l:?}");
                            c.uid = Some(uid);
                        }
                        other => panic!("{enc:?}/{t:?}: expected S2C_UserLogin, got {other:?}"),
                    }
                    c.heartbeat().await;
                    // Logged in: a watch is now accepted.
                    assert_eq!(c.watch(5).await, 1 + j as u32 + 4 * i as u32);
                    clients.push(c);
                }
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_uid_round_trips() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                // Above 2^53: a JSON number a JavaScript double cannot hold, still exact here.
                let uid = u64::MAX - 7;
                let mut a = server.login(t, uid).await;
                a.tell(uid, "self").await;
                let m = a.expect_message().await;
                assert_eq!((m.from_uid, m.to_uid), (uid, uid));
                drop(a);
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_again_on_one_connection_moves_the_session() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut a = server.login(Transport::Tcp, 1).await;
            let mut probe = server.login(Transport::Ws, 9).await;
            // Same uid again on the same connection: no kick, still logged in.
            a.login_uid(1).await;
            a.heartbeat().await;
            probe.tell(1, "one").await;
            assert_eq!(a.expect_message().await.text, "one");
            // Another uid on the same connection: the old uid is no longer online.
            a.login_uid(2).await;
            probe.tell(2, "two").await;
            assert_eq!(a.expect_message().await.text, "two");
            probe.tell(1, "one again").await;
            probe.expect_error(ERR_NOT_ONLINE).await;
            a.expect_quiet().await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_expired_and_wrongly_signed_tokens_are_refused_and_closed() {
    bounded(TEST_TIMEOUT, async {
        let now = now_unix();
        let signed_other = token_with(b"not-the-secret", 7, now + 3600);
        let expired = token_with(SECRET, 7, now - 10);
        let expired_now = token_with(SECRET, 7, now - 1);
        let uid_zero = token_with(SECRET, 0, now + 3600);
        let good = token(7);
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        let bad_signature = parts.join(".");
        let cases: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            ("garbage", "not-a-token".into()),
            ("three dots", "a.b.c".into()),
            ("wrong secret", signed_other),
            ("expired", expired),
            ("expired a second ago", expired_now),
            ("tampered signature", bad_signature),
            ("uid 0", uid_zero),
            ("very long", "x".repeat(6000)),
        ];
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            // A bystander logged in before the bad clients; it must not notice them.
            let mut bystander = server.login(Transport::Tcp, 1).await;
            assert_eq!(bystander.watch(3).await, 1);
            for t in Transport::ALL {
                for (what, tok) in &cases {
                    let mut c = server.connect(t).await;
                    c.heartbeat().await;
                    c.send(&C2sUserLogin {
                        token: tok.clone(),
                        login_plat: 1,
                    })
                    .await;
                    match c.recv().await {
                        Reply::Login(l) => {
                            assert_eq!(l.ret, 0, "{enc:?}/{t:?}/{what}: {l:?}");
                            assert_eq!(l.uid, 0, "{enc:?}/{t:?}/{what}: {l:?}");
                        }
                        other => panic!("{enc:?}/{t:?}/{what}: expected a refusal, got {other:?}"),
                    }
                    c.expect_closed().await;
                    // Others keep being served: the bystander, and a new login.
                    bystander.heartbeat().await;
                    bystander.expect_quiet().await;
                    let mut fresh = server.login(t, 7).await;
                    fresh.heartbeat().await;
                }
            }
            // Nobody else ever entered room 3.
            assert_eq!(bystander.watch(3).await, 1);
            server.shutdown().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Rooms

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_room_counts_watchers() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut a = server.login(Transport::Tcp, 1).await;
            let mut b = server.login(Transport::Ws, 2).await;
            assert_eq!(a.watch(7).await, 1);
            assert_eq!(b.watch(7).await, 2);
            // Watching the same room again changes nothing.
            assert_eq!(b.watch(7).await, 2);
            // Watching another room leaves the first one.
            assert_eq!(a.watch(8).await, 1);
            assert_eq!(b.watch(8).await, 2);
            assert_eq!(a.watch(7).await, 1);
            // Room 0 is "watch none".
            assert_eq!(b.watch(0).await, 0);
            assert_eq!(a.watch(8).await, 1);
            // A watcher that disconnects leaves its room.
            let mut c = server.login(Transport::Ws, 3).await;
            assert_eq!(c.watch(8).await, 2);
            drop(c);
            b.watch_until(8, 2).await; // a and b
            // A watcher that is kicked by a second login leaves too.
            let mut d = server.login(Transport::Tcp, 4).await;
            assert_eq!(d.watch(8).await, 3);
            let mut d2 = server.login(Transport::Ws, 4).await;
            assert!(matches!(d.recv().await, Reply::Kick(_)));
            d.expect_closed().await;
            b.watch_until(8, 2).await;
            assert_eq!(d2.watch(8).await, 3);
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_message_reaches_every_watcher_on_both_transports() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut a = server.login(Transport::Tcp, 1).await;
            let mut b = server.login(Transport::Ws, 2).await;
            let mut c = server.login(Transport::Tcp, 3).await; // watches another room
            let mut d = server.login(Transport::Ws, 4).await; // watches nothing
            let mut e = server.connect(Transport::Tcp).await; // not logged in
            assert_eq!(a.watch(42).await, 1);
            assert_eq!(b.watch(42).await, 2);
            assert_eq!(c.watch(43).await, 1);

            for (sender, text) in [(1u64, "hello from tcp"), (2, "hello from ws ✓")] {
                if sender == 1 {
                    a.say(42, text).await;
                } else {
                    b.say(42, text).await;
                }
                for watcher in [&mut a, &mut b] {
                    let m = watcher.expect_message().await;
                    assert_eq!(m.room_id, 42, "{enc:?}");
                    assert_eq!(m.from_uid, sender, "{enc:?}");
                    assert_eq!(m.to_uid, 0, "{enc:?}");
                    assert_eq!(m.text, text, "{enc:?}");
                }
            }
            // Non-watchers got nothing.
            c.expect_quiet().await;
            d.expect_quiet().await;
            e.expect_quiet().await;

            // A sender that does not watch the room still gets its own message (the protocol:
            // "the sender of a room message receives it too"), the watchers get it once.
            d.say(42, "from outside").await;
            let m = d.expect_message().await;
            assert_eq!(
                (m.room_id, m.from_uid, m.text.as_str()),
                (42, 4, "from outside")
            );
            for watcher in [&mut a, &mut b] {
                let m = watcher.expect_message().await;
                assert_eq!((m.room_id, m.from_uid), (42, 4));
                watcher.expect_quiet().await;
            }
            c.expect_quiet().await;
            d.expect_quiet().await;

            // The sender gets its own message once, not twice.
            a.say(42, "once").await;
            assert_eq!(a.expect_message().await.text, "once");
            assert_eq!(b.expect_message().await.text, "once");
            a.expect_quiet().await;
            b.expect_quiet().await;

            // A room message to room 0 is a bad request.
            a.say(0, "nowhere").await;
            a.expect_error(ERR_BAD_REQUEST).await;
            a.expect_quiet().await;
            b.expect_quiet().await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watchers_all_get_a_room_message() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut watchers = Vec::new();
            for uid in 1..=20u64 {
                let t = if uid % 2 == 0 {
                    Transport::Tcp
                } else {
                    Transport::Ws
                };
                let mut c = server.login(t, uid).await;
                assert_eq!(c.watch(1).await, uid as u32);
                watchers.push(c);
            }
            watchers[0].say(1, "to all").await;
            for c in &mut watchers {
                let m = c.expect_message().await;
                assert_eq!((m.room_id, m.from_uid, m.text.as_str()), (1, 1, "to all"));
            }
            for c in &mut watchers {
                c.expect_quiet().await;
            }
            server.shutdown().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Private messages

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_message_crosses_transports() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                let (ua, ub) = if t == Transport::Tcp {
                    (10, 20)
                } else {
                    (11, 21)
                };
                let mut a = server.login(t, ua).await;
                let mut b = server.login(t.other(), ub).await;
                let mut bystander = server.login(t, 99 - ua).await;
                bystander.watch(5).await;
                a.watch(5).await;
                b.watch(5).await;

                a.send(&C2sMessage {
                    room_id: 5,
                    to_uid: ub,
                    text: "psst".into(),
                })
                .await;
                let m = b.expect_message().await;
                assert_eq!(m.from_uid, ua, "{enc:?}/{t:?}");
                assert_eq!(m.to_uid, ub, "{enc:?}/{t:?}");
                assert_eq!(m.text, "psst", "{enc:?}/{t:?}");

                b.tell(ua, "back").await;
                let m = a.expect_message().await;
                assert_eq!((m.from_uid, m.to_uid, m.text.as_str()), (ub, ua, "back"));

                // Private messages are not broadcast to the room, nor echoed to the sender.
                a.expect_quiet().await;
                b.expect_quiet().await;
                bystander.expect_quiet().await;
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_message_to_an_offline_uid_is_refused() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                let mut a = server.login(t, 1).await;
                a.tell(12345, "anyone?").await;
                let e = a.expect_error(ERR_NOT_ONLINE).await;
                assert!(!e.msg.is_empty(), "{e:?}");
                // The connection stays.
                a.heartbeat().await;
                a.expect_quiet().await;

                // A user who logs out (disconnects) goes offline.
                let mut b = server.login(t.other(), 2).await;
                a.tell(2, "still there").await;
                assert_eq!(b.expect_message().await.text, "still there");
                drop(b);
                let deadline = tokio::time::Instant::now() + TIMEOUT;
                loop {
                    a.tell(2, "gone?").await;
                    // Either the refusal, or (while the close is on its way) nothing: the quiet
                    // check's answer comes next.
                    a.send(&C2sUpdateWatchRoom { room_id: a.room }).await;
                    match a.recv().await {
                        Reply::Error(e) => {
                            assert_eq!(e.code, ERR_NOT_ONLINE);
                            assert!(matches!(a.recv().await, Reply::Watch(_)));
                            break;
                        }
                        Reply::Watch(_) => {}
                        other => panic!("unexpected {other:?}"),
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "uid 2 still online after its connection closed"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                drop(a);
            }
            server.shutdown().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// One connection per uid

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_login_kicks_the_first_without_logging_out_the_second() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut other = server.login(Transport::Tcp, 1000).await;
            for (round, first_t) in Transport::ALL.into_iter().enumerate() {
                let uid = 5 + round as u64;
                let room = 30 + round as u64;
                let mut first = server.login(first_t, uid).await;
                assert_eq!(first.watch(room).await, 1);
                let mut second = server.login(first_t.other(), uid).await;

                match first.recv().await {
                    Reply::Kick(k) => assert!(!k.reason.is_empty(), "{k:?}"),
                    r => panic!("{enc:?}/{first_t:?}: expected S2C_Kick, got {r:?}"),
                }
                first.expect_closed().await;

                // Wait until the server has processed the first connection's close: it
                // leaves its room, so `other` alone watches it.
                other.watch_until(room, 1).await;

                // The second connection still works and still holds the uid.
                second.heartbeat().await;
                assert_eq!(second.watch(room).await, 2);
                other.tell(uid, "for the second").await;
                let m = second.expect_message().await;
                assert_eq!((m.from_uid, m.to_uid), (1000, uid));
                assert_eq!(m.text, "for the second");
                other.expect_quiet().await;
                second.say(room, "still here").await;
                assert_eq!(second.expect_message().await.text, "still here");
                assert_eq!(other.expect_message().await.from_uid, uid);
                second.expect_quiet().await;
                assert_eq!(other.watch(0).await, 0);
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_login_kicks_the_second() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut c1 = server.login(Transport::Tcp, 8).await;
            let mut c2 = server.login(Transport::Ws, 8).await;
            assert!(matches!(c1.recv().await, Reply::Kick(_)));
            c1.expect_closed().await;
            let mut c3 = server.login(Transport::Tcp, 8).await;
            assert!(matches!(c2.recv().await, Reply::Kick(_)));
            c2.expect_closed().await;
            c3.tell(8, "me").await;
            assert_eq!(c3.expect_message().await.text, "me");
            server.shutdown().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Refused requests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_login_are_refused_and_the_connection_stays() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut target = server.login(Transport::Tcp, 2).await;
            for t in Transport::ALL {
                let mut c = server.connect(t).await;
                c.say(1, "hi").await;
                c.expect_error(ERR_NOT_LOGGED_IN).await;
                c.heartbeat().await;
                c.tell(2, "hi").await;
                c.expect_error(ERR_NOT_LOGGED_IN).await;
                c.send(&C2sUpdateWatchRoom { room_id: 1 }).await;
                c.expect_error(ERR_NOT_LOGGED_IN).await;
                c.heartbeat().await;
                // Nothing reached the target.
                target.expect_quiet().await;
                // And a login afterwards works on the same connection.
                c.login_uid(3).await;
                c.tell(2, "now").await;
                assert_eq!(target.expect_message().await.from_uid, 3);
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_longer_than_the_limit_is_refused() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                let mut a = server.login(t, 1).await;
                let mut b = server.login(t.other(), 2).await;
                a.watch(9).await;
                b.watch(9).await;

                // One character too many, as a room message and as a private one.
                let long = "x".repeat(MAX_TEXT_LEN + 1);
                a.say(9, &long).await;
                let e = a.expect_error(ERR_TEXT_TOO_LONG).await;
                assert!(!e.msg.is_empty());
                a.tell(2, &long).await;
                a.expect_error(ERR_TEXT_TOO_LONG).await;
                b.expect_quiet().await;
                // The connection stays.
                a.heartbeat().await;

                // Exactly the limit passes; the limit counts characters, not bytes.
                let max = "é".repeat(MAX_TEXT_LEN);
                a.say(9, &max).await;
                assert_eq!(a.expect_message().await.text, max);
                assert_eq!(b.expect_message().await.text, max);
                let long_chars = "é".repeat(MAX_TEXT_LEN + 1);
                a.say(9, &long_chars).await;
                a.expect_error(ERR_TEXT_TOO_LONG).await;
                // Empty text is fine.
                a.tell(2, "").await;
                assert_eq!(b.expect_message().await.text, "");
                a.expect_quiet().await;
                b.expect_quiet().await;
                drop((a, b));
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_text_len_comes_from_the_configuration() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Json, |c| c.chat.max_text_len = 3).await;
        let mut a = server.login(Transport::Tcp, 1).await;
        a.tell(1, "abc").await;
        assert_eq!(a.expect_message().await.text, "abc");
        a.tell(1, "abcd").await;
        a.expect_error(ERR_TEXT_TOO_LONG).await;
        server.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The wire, byte by byte

/// A JSON reply as a value, checked to be a one-key envelope named `name`.
async fn json_reply(c: &mut Client, name: &str) -> Value {
    let payload = c.recv_payload().await;
    let value: Value = serde_json::from_slice(&payload).expect("reply is JSON");
    let obj = value.as_object().expect("reply is an object");
    assert_eq!(obj.len(), 1, "{value}");
    obj.get(name)
        .unwrap_or_else(|| panic!("expected {name}, got {value}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_wire_is_the_leaf_envelope() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        for t in Transport::ALL {
            let mut c = server.connect(t).await;
            let mut peer = server.login(t.other(), 77).await;
            c.send_payload(br#"{"C2S_UserHeartBeat":{"ptime":1}}"#)
                .await
                .unwrap();
            let body = json_reply(&mut c, "C2S_UserHeartBeat").await;
            assert_near_now(body["ptime"].as_i64().expect("ptime integer"), "ptime");

            // Missing fields default (an empty body is valid).
            c.send_payload(br#"{"C2S_UserHeartBeat":{}}"#)
                .await
                .unwrap();
            json_reply(&mut c, "C2S_UserHeartBeat").await;

            let login = format!(
                r#"{{"C2S_UserLogin":{{"token":"{}","login_plat":1}}}}"#,
                token(66)
            );
            c.send_payload(login.as_bytes()).await.unwrap();
            let body = json_reply(&mut c, "S2C_UserLogin").await;
            assert_eq!(body["ret"], json!(1), "{body}");
            assert_eq!(body["uid"], json!(66), "{body}");
            assert!(body["msg"].is_string(), "{body}");

            c.send_payload(br#"{"C2S_UpdateWatchRoom":{"room_id":7}}"#)
                .await
                .unwrap();
            let body = json_reply(&mut c, "S2C_UpdateWatchRoom").await;
            assert_eq!(body, json!({"room_id": 7, "online": 1}));

            c.send_payload(br#"{"C2S_Message":{"room_id":7,"to_uid":0,"text":"hi"}}"#)
                .await
                .unwrap();
            let body = json_reply(&mut c, "S2C_Message").await;
            assert_eq!(body["room_id"], json!(7), "{body}");
            assert_eq!(body["from_uid"], json!(66), "{body}");
            assert_eq!(body["to_uid"], json!(0), "{body}");
            assert_eq!(body["text"], json!("hi"), "{body}");
            assert_near_now(body["ts"].as_i64().expect("ts integer"), "ts");

            c.send_payload(br#"{"C2S_Message":{"to_uid":77,"text":"p"}}"#)
                .await
                .unwrap();
            let body = json_reply(&mut peer, "S2C_Message").await;
            assert_eq!(body["from_uid"], json!(66), "{body}");
            assert_eq!(body["to_uid"], json!(77), "{body}");

            c.send_payload(br#"{"C2S_Message":{"to_uid":5,"text":"p"}}"#)
                .await
                .unwrap();
            let body = json_reply(&mut c, "S2C_Error").await;
            assert_eq!(body["code"], json!(ERR_NOT_ONLINE), "{body}");
            assert!(body["msg"].is_string(), "{body}");

            let kicker = server.login(t.other(), 66).await;
            let body = json_reply(&mut c, "S2C_Kick").await;
            assert!(body["reason"].is_string(), "{body}");
            c.expect_closed().await;
            drop(kicker);
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_wire_uses_the_table_ids() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Protobuf).await;
        for t in Transport::ALL {
            let mut c = server.connect(t).await;
            // C2S_UserHeartBeat (id 0) { ptime: 150 }
            c.send_payload(&[0x00, 0x00, 0x08, 0x96, 0x01])
                .await
                .unwrap();
            let reply = c.recv_payload().await;
            assert_eq!(&reply[..2], &[0x00, 0x00], "{reply:?}");
            let fields = pb_fields(&reply[2..]);
            assert_eq!(fields.len(), 1, "{fields:?}");
            let (1, PbValue::Varint(ptime)) = fields[0].clone() else {
                panic!("{fields:?}")
            };
            assert_near_now(ptime as i64, "ptime");

            // An empty body is valid.
            c.send_payload(&[0x00, 0x00]).await.unwrap();
            assert_eq!(&c.recv_payload().await[..2], &[0x00, 0x00]);

            // C2S_UserLogin (id 1) { token, login_plat: 2 }
            let tok = token(300);
            let mut login = vec![0x00, 0x01, 0x0a];
            write_varint(&mut login, tok.len() as u64);
            login.extend_from_slice(tok.as_bytes());
            login.extend_from_slice(&[0x10, 0x02]);
            c.send_payload(&login).await.unwrap();
            let reply = c.recv_payload().await;
            assert_eq!(
                &reply[..2],
                &[0x00, 0x02],
                "S2C_UserLogin is id 2: {reply:?}"
            );
            let fields = pb_fields(&reply[2..]);
            assert!(fields.contains(&(1, PbValue::Varint(1))), "{fields:?}");
            assert!(fields.contains(&(3, PbValue::Varint(300))), "{fields:?}");

            // C2S_UpdateWatchRoom (id 3) { room_id: 7 } -> S2C_UpdateWatchRoom (id 4)
            c.send_payload(&[0x00, 0x03, 0x08, 0x07]).await.unwrap();
            let reply = c.recv_payload().await;
            assert_eq!(reply, vec![0x00, 0x04, 0x08, 0x07, 0x10, 0x01]);

            // C2S_Message (id 5) { room_id: 7, text: "hi" } -> S2C_Message (id 6)
            c.send_payload(&[0x00, 0x05, 0x08, 0x07, 0x1a, 0x02, b'h', b'i'])
                .await
                .unwrap();
            let reply = c.recv_payload().await;
            assert_eq!(&reply[..2], &[0x00, 0x06], "{reply:?}");
            let fields = pb_fields(&reply[2..]);
            assert!(fields.contains(&(1, PbValue::Varint(7))), "{fields:?}");
            assert!(fields.contains(&(2, PbValue::Varint(300))), "{fields:?}");
            assert!(
                fields.contains(&(4, PbValue::Bytes(b"hi".to_vec()))),
                "{fields:?}"
            );
            let ts = fields.iter().find(|(f, _)| *f == 5).expect("ts field");
            let PbValue::Varint(ts) = ts.1 else { panic!() };
            assert_near_now(ts as i64, "ts");

            // C2S_Message { to_uid: 9 } to nobody -> S2C_Error (id 8) { code: 3 }
            c.send_payload(&[0x00, 0x05, 0x10, 0x09]).await.unwrap();
            let reply = c.recv_payload().await;
            assert_eq!(&reply[..2], &[0x00, 0x08], "{reply:?}");
            let fields = pb_fields(&reply[2..]);
            assert!(fields.contains(&(1, PbValue::Varint(3))), "{fields:?}");

            // A second login: S2C_Kick is id 7.
            let _kicker = server.login(t.other(), 300).await;
            let reply = c.recv_payload().await;
            assert_eq!(&reply[..2], &[0x00, 0x07], "{reply:?}");
            c.expect_closed().await;
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_text_frames_are_accepted_and_replies_are_binary() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        let mut c = server.connect(Transport::Ws).await;
        c.send_text(r#"{"C2S_UserHeartBeat":{"ptime":1}}"#)
            .await
            .unwrap();
        match c.recv().await {
            Reply::HeartBeat(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(!c.last_was_text, "replies are binary messages");
        c.send_text(&format!(
            r#"{{"C2S_UserLogin":{{"token":"{}","login_plat":1}}}}"#,
            token(4)
        ))
        .await
        .unwrap();
        assert!(matches!(c.recv().await, Reply::Login(l) if l.ret == 1 && l.uid == 4));
        assert!(!c.last_was_text);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_frames_split_and_coalesced_are_read_correctly() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut c = server.connect(Transport::Tcp).await;
            let hb = encode(enc, &C2sUserHeartBeat { ptime: 1 });
            let mut frame = (hb.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(&hb);
            // One byte per write.
            for b in &frame {
                c.send_raw(&[*b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            assert!(matches!(c.recv().await, Reply::HeartBeat(_)));
            // Three frames in one write, then a login split across the boundary of a fourth.
            let login = encode(
                enc,
                &C2sUserLogin {
                    token: token(9),
                    login_plat: 0,
                },
            );
            let mut login_frame = (login.len() as u16).to_be_bytes().to_vec();
            login_frame.extend_from_slice(&login);
            let mut batch = frame.repeat(3);
            batch.extend_from_slice(&login_frame[..10]);
            c.send_raw(&batch).await.unwrap();
            for _ in 0..3 {
                assert!(matches!(c.recv().await, Reply::HeartBeat(_)));
            }
            c.send_raw(&login_frame[10..]).await.unwrap();
            assert!(matches!(c.recv().await, Reply::Login(l) if l.ret == 1 && l.uid == 9));
            server.shutdown().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_connection_and_returns() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut clients = Vec::new();
            for uid in 1..=4u64 {
                let t = if uid % 2 == 0 {
                    Transport::Tcp
                } else {
                    Transport::Ws
                };
                let mut c = server.login(t, uid).await;
                c.watch(1).await;
                clients.push(c);
            }
            let mut anonymous = server.connect(Transport::Tcp).await;
            anonymous.heartbeat().await;
            let stop = server.stop.clone();
            let shutdown = tokio::spawn(server.shutdown());
            stop.stop();
            for c in &mut clients {
                // Whatever comes first (see shutdown_sends_kick_before_closing), the
                // connection ends.
                loop {
                    match c.try_recv(TIMEOUT).await {
                        Ok(Reply::Kick(_)) => {}
                        Ok(other) => panic!("{c:?}: unexpected {other:?} during shutdown"),
                        Err(End::Closed { .. }) => break,
                        Err(End::TimedOut) => panic!("{c:?}: not closed on shutdown"),
                    }
                }
            }
            loop {
                match anonymous.try_recv(TIMEOUT).await {
                    Ok(Reply::Kick(_)) => {}
                    Ok(other) => panic!("unexpected {other:?} during shutdown"),
                    Err(End::Closed { .. }) => break,
                    Err(End::TimedOut) => panic!("not closed on shutdown"),
                }
            }
            shutdown.await.expect("clean shutdown");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_kick_before_closing() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            let mut a = server.login(Transport::Tcp, 1).await;
            let mut b = server.login(Transport::Ws, 2).await;
            let stop = server.stop.clone();
            let shutdown = tokio::spawn(server.shutdown());
            stop.stop();
            for c in [&mut a, &mut b] {
                match c.try_recv(TIMEOUT).await {
                    Ok(Reply::Kick(k)) => assert!(!k.reason.is_empty()),
                    other => panic!("{enc:?} {c:?}: expected S2C_Kick on shutdown, got {other:?}"),
                }
                c.expect_closed().await;
            }
            shutdown.await.expect("clean shutdown");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_is_one_count_across_both_transports() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start_with(enc, |c| c.gate.max_conn_num = 2).await;
            let mut a = server.login(Transport::Tcp, 1).await;
            let mut b = server.login(Transport::Ws, 2).await;
            // Full: a third TCP connection is closed at once, a WebSocket one refused.
            let mut c = server.connect(Transport::Tcp).await;
            c.send(&C2sUserHeartBeat { ptime: 0 }).await;
            c.expect_closed().await;
            let refused = Client::try_connect(Transport::Ws, enc, server.ws).await;
            let why = refused.expect_err("a WebSocket over the limit is refused");
            assert!(why.contains("503"), "{enc:?}: {why}");
            // Those two are untouched.
            a.tell(2, "still").await;
            assert_eq!(b.expect_message().await.text, "still");
            a.heartbeat().await;
            // A place frees when a connection closes (its close is asynchronous: retry).
            drop(a);
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            loop {
                let mut c = server.connect(Transport::Tcp).await;
                c.send(&C2sUserHeartBeat { ptime: 0 }).await;
                match c.try_recv(TIMEOUT).await {
                    Ok(Reply::HeartBeat(_)) => break,
                    Ok(other) => panic!("{enc:?}: unexpected {other:?}"),
                    Err(_) => {}
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{enc:?}: no place freed after a connection closed"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            b.heartbeat().await;
            server.shutdown().await;
        }
    })
    .await;
}
