//! Two scripted leaf servers for `LL_Move` (and volatile messages): real sockets, the
//! protocol's steps written out, each step's expectation asserted.

use tokio::io::AsyncWriteExt;

async fn read_frame(s: &mut tokio::net::TcpStream) -> Option<serde_json::Value> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 2];
    s.read_exact(&mut header).await.ok()?;
    let mut body = vec![0; usize::from(u16::from_be_bytes(header))];
    s.read_exact(&mut body).await.ok()?;
    Some(serde_json::from_slice(&body).expect("the client writes JSON"))
}

async fn write_frame(s: &mut tokio::net::TcpStream, v: serde_json::Value) {
    let body = v.to_string().into_bytes();
    let len = u16::try_from(body.len()).expect("short");
    s.write_all(&len.to_be_bytes()).await.expect("write");
    s.write_all(&body).await.expect("write");
}

fn said(text: &str) -> serde_json::Value {
    serde_json::json!({"S2C_Message": {"room_id": 0, "from_uid": 1, "to_uid": 0, "text": text, "ts": 0}})
}

/// Two scripted leaf servers (TCP, JSON) for LL_Move: the first starts a session, sends one
/// message, three volatile ones (not counted) and `LL_Move{after_ms: 100}`, and must see the client's `C2S_Message{"x"}` and its
/// `LL_Ack{seq: 1}` before it leaves; the second must see `LL_Resume{t1, last_seq: 1}` first,
/// answers `LL_Resumed{t2, last_seq: 0}`, must get `"x"` again (never handled), and sends one
/// more message.
pub(crate) async fn scripted_move() -> (
    std::net::SocketAddr,
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    use serde_json::json;
    let a = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let b = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = a.accept().await.expect("accept");
        let first = read_frame(&mut s).await.expect("a first frame");
        assert!(first.get("LL_SessionStart").is_some(), "{first}");
        write_frame(
            &mut s,
            json!({"LL_Session": {"token": "t1", "window_s": 30}}),
        )
        .await;
        write_frame(&mut s, said("before")).await;
        for _ in 0..3 {
            write_frame(&mut s, json!({"S2C_Noise": {}})).await;
        }
        write_frame(&mut s, json!({"LL_Move": {"after_ms": 100}})).await;
        let mut seen = Vec::new();
        while let Some(f) = read_frame(&mut s).await {
            seen.push(f);
        }
        assert!(
            seen.contains(&json!({"C2S_Message": {"room_id": 0, "to_uid": 0, "text": "x"}})),
            "{seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&json!({"LL_Ack": {"seq": 1}})),
            "{seen:?}"
        );

        let (mut s, _) = b.accept().await.expect("accept");
        let resume = read_frame(&mut s).await.expect("LL_Resume");
        assert_eq!(resume, json!({"LL_Resume": {"token": "t1", "last_seq": 1}}));
        write_frame(
            &mut s,
            json!({"LL_Resumed": {"token": "t2", "last_seq": 0}}),
        )
        .await;
        let again = read_frame(&mut s).await.expect("the resend");
        assert_eq!(
            again,
            json!({"C2S_Message": {"room_id": 0, "to_uid": 0, "text": "x"}})
        );
        write_frame(&mut s, said("after")).await;
        while read_frame(&mut s).await.is_some() {}
    });
    (addr_a, addr_b, task)
}
