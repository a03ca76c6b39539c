//! A room's watcher count across gates (issue 26), over a real `nats-server`: one chat node
//! and two gates. A count change goes out as one room broadcast (one NATS message on the
//! room's group subject, which every gate writes to its own watchers), not as one command per
//! watcher to its gate: with 100,000 watchers joining 100 rooms, those commands were what the
//! chat node spent its time on, and new connections waited past `request_timeout` for it.
//! Every watcher still gets the count once, save the one that knows it already.

mod common;

use std::time::Duration;

use common::node::Layout;
use common::*;
use futures_util::StreamExt;
use longlink_chat::msg::S2cRoomInfo;
use longlink_testkit::NatsServer;

/// Longer than the chat's room-info delay (100 ms): a change's `S2C_RoomInfo` is out.
const SETTLE: Duration = Duration::from_millis(400);

/// A plain client of the gate at `gate` logged in as `uid`, watching `room`, its room
/// infos shown.
async fn watcher(gate: &common::node::Node, uid: u64, room: u64) -> Client {
    let mut c = Client::connect(Transport::Tcp, Enc::Json, gate.tcp.expect("a gate")).await;
    common::node::login_until_served(&mut c, uid).await;
    c.watch(room).await;
    c.presence = true;
    c
}

/// Every `S2C_RoomInfo` `c` gets until it is quiet for [`SETTLE`].
async fn room_infos(c: &mut Client) -> Vec<S2cRoomInfo> {
    let mut got = Vec::new();
    while let Ok(reply) = c.try_recv(SETTLE).await {
        match reply {
            Reply::RoomInfo(info) => got.push(info),
            other => panic!("{c:?}: {other:?}"),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_count_change_is_one_room_broadcast_told_once_to_each_watcher() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let l = Layout::start(&nats).await;
        let room = 51;
        let mut watchers = Vec::new();
        for (uid, gate) in [(301, &l.g1), (302, &l.g2), (303, &l.g1), (304, &l.g2)] {
            watchers.push(watcher(gate, uid, room).await);
        }
        tokio::time::sleep(SETTLE).await;
        for c in &mut watchers {
            room_infos(c).await; // the counts so far, read
        }

        // From here on, what the chat node publishes on the room's group subject.
        let nats_client = l.chat.cluster.as_ref().expect("a cluster").nats().clone();
        let mut on_room = nats_client
            .subscribe("longlink.grp.room_51")
            .await
            .expect("subscribe");
        nats_client.flush().await.expect("flush");

        // A fifth watcher, told the count by its S2C_UpdateWatchRoom.
        let mut late = watcher(&l.g2, 305, room).await;
        tokio::time::sleep(SETTLE).await;
        let five = S2cRoomInfo {
            room_id: room,
            online: 5,
        };
        for c in &mut watchers {
            assert_eq!(room_infos(c).await, [five], "{c:?}");
        }
        assert_eq!(
            room_infos(&mut late).await,
            [],
            "the new watcher knows the count"
        );

        let mut published = 0;
        while let Ok(Some(_)) = tokio::time::timeout(SETTLE, on_room.next()).await {
            published += 1;
        }
        assert_eq!(
            published, 1,
            "one NATS message on the room's subject for the change"
        );
        drop((watchers, late));
        l.shutdown().await;
    })
    .await;
}
