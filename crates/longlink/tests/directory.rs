//! The cluster's directory over a real `nats-server`: a uid entry is written once and lasts
//! while its gate lives; only what must expire carries a time-to-live; an entry counts only
//! while its gate is alive in the start that wrote it; entries that do not count are swept
//! out; a gate whose alive key lapsed claims its uids again; a bucket made by an earlier
//! version is brought up to date.

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use common::pinged::{backend, client, config, eventually_located, gate_with, ping};
use common::{Echo, STEP, bounded, wait_for};
use longlink::cluster::{Cluster, ClusterConfig, ClusterError};
use longlink::{Encoding, Processor};
use longlink_testkit::NatsServer;

/// `directory_ttl` in these tests: alive keys are rewritten every third of it.
const TTL: Duration = Duration::from_secs(1);

fn short(nats: &NatsServer, node_type: &str, node_id: &str) -> ClusterConfig {
    ClusterConfig {
        directory_ttl: TTL,
        node_id: node_id.into(),
        ..config(nats, node_type)
    }
}

async fn bucket(cluster: &Cluster) -> kv::Store {
    let js = jetstream::new(cluster.nats().clone());
    let mut tries = 0;
    loop {
        match js.get_key_value("longlink_sessions").await {
            Ok(store) => return store,
            Err(e) if tries > 100 => panic!("no directory bucket: {e}"),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Writes a uid entry as a gate would (`conn at gate incarnation`), never to expire.
async fn write_entry(cluster: &Cluster, uid: u64, value: &str) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-TTL", "never");
    jetstream::new(cluster.nats().clone())
        .publish_with_headers(
            format!("$KV.longlink_sessions.uid.{uid}"),
            headers,
            Bytes::from(value.to_owned()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// The entry of `uid` as stored (a removed one is `None`).
async fn stored(store: &kv::Store, uid: u64) -> Option<kv::Entry> {
    let entry = store.entry(format!("uid.{uid}")).await.unwrap();
    entry.filter(|e| e.operation == kv::Operation::Put)
}

/// A client logged in as `uid` (again until the backend, still subscribing, answers).
async fn login(addr: std::net::SocketAddr, uid: u64) -> common::TcpClient {
    let mut c = client(addr).await;
    loop {
        ping(&mut c, 0, uid).await;
        let answer = tokio::time::timeout(Duration::from_millis(300), c.try_recv()).await;
        if let Ok(Ok(_)) = answer {
            return c;
        }
    }
}

fn hello(text: &str) -> longlink::Encoded {
    let mut p = Processor::new(Encoding::Json);
    common::pinged::registry(&mut p);
    p.encode(&Echo { text: text.into() }).unwrap()
}

/// A gate (`directory_ttl` 1 s), a backend, a probe node with no gate, and a client logged
/// in as `uid` on the gate, in the directory.
struct OneUser {
    gate: common::Running,
    backend: common::Running,
    gate_cluster: Cluster,
    probe: Cluster,
    client: common::TcpClient,
}

impl OneUser {
    async fn start(nats: &NatsServer, uid: u64) -> OneUser {
        let gc = Cluster::connect(&short(nats, "gate", "")).await.unwrap();
        let (gate, addr, gate_cluster, _) = gate_with(gc).await;
        let (backend, _, _) = backend(nats).await;
        let probe = Cluster::connect(&short(nats, "tool", "")).await.unwrap();
        let client = login(addr, uid).await;
        eventually_located(&probe, uid).await;
        OneUser {
            gate,
            backend,
            gate_cluster,
            probe,
            client,
        }
    }

    async fn stop(self) {
        self.gate.shutdown().await;
        self.backend.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uid_entry_is_written_once_and_lasts_while_its_gate_lives() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let mut one = OneUser::start(&nats, 81).await;
        let (probe, c) = (&one.probe, &mut one.client);
        let store = bucket(probe).await;
        let written = stored(&store, 81).await.expect("the entry").revision;
        // Three times the bucket's maximum age: an entry not rewritten lasts all the same.
        tokio::time::sleep(TTL * 3 + TTL / 2).await;
        let entry = stored(&store, 81)
            .await
            .expect("the entry outlives directory_ttl");
        assert_eq!(entry.revision, written, "the entry was rewritten");
        let gate = one.gate_cluster.node_id().to_owned();
        assert_eq!(probe.locate(81).await, Ok(Some(gate)));
        probe.push_uid(81, &hello("still found")).await.unwrap();
        assert_eq!(c.recv_echo().await, "still found");
        one.stop().await;
    })
    .await;
}

/// The headers a key's last message was stored with (none: no message).
async fn stored_headers(store: &kv::Store, key: &str) -> Option<async_nats::HeaderMap> {
    let subject = format!("$KV.longlink_sessions.{key}");
    let message = store.stream.get_last_raw_message_by_subject(&subject).await;
    message.ok().map(|m| m.headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_made_now_has_no_maximum_age_and_only_what_must_expire_carries_a_time_to_live() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let one = OneUser::start(&nats, 85).await;
        let mut store = bucket(&one.probe).await;
        let config = store.stream.info().await.unwrap().config.clone();
        // No maximum age: nats-server does not look over every entry while they last.
        assert_eq!(config.max_age, Duration::ZERO);
        assert!(config.allow_message_ttl);
        let entry = stored_headers(&store, "uid.85")
            .await
            .expect("the uid entry");
        assert_eq!(entry.get("Nats-TTL"), None, "a uid entry lasts as it is");
        let alive_key = format!("node.{}", one.gate_cluster.node_id());
        let alive = stored_headers(&store, &alive_key)
            .await
            .expect("the alive key");
        let ttl = alive.get("Nats-TTL").map(|v| v.as_str().to_owned());
        assert_eq!(
            ttl.as_deref(),
            Some("1"),
            "the alive key expires after directory_ttl"
        );
        // A gate that stops leaves a marker that expires too: nothing of it lasts.
        one.stop().await;
        assert_eq!(store.get(&alive_key).await.unwrap(), None);
        wait_for("the stopped gate's marker expired", || {
            let store = store.clone();
            let key = alive_key.clone();
            async move { stored_headers(&store, &key).await.is_none() }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_gone_gates_count_for_nothing_and_are_swept_out() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        // "gate-b" first: it makes the bucket and sweeps an empty directory.
        let gb = Cluster::connect(&short(&nats, "gate", "gate-b"))
            .await
            .unwrap();
        let (g_b, addr, _, _) = gate_with(gb).await;
        let (b, _, _) = backend(&nats).await;
        let probe = Cluster::connect(&short(&nats, "tool", "")).await.unwrap();
        let mut live = login(addr, 90).await;
        eventually_located(&probe, 90).await;
        // A gate that is gone (no alive key), and an earlier start of gate-b itself.
        write_entry(&probe, 91, "5 1 ghost-gate 7").await;
        write_entry(&probe, 92, "6 1 gate-b 12345").await;
        // An entry of a gone gate with a later login than any: it displaces no one.
        write_entry(&probe, 93, &format!("7 {} ghost-gate 7", u64::MAX / 2)).await;
        for uid in [91, 92, 93] {
            assert_eq!(probe.locate(uid).await, Ok(None), "uid {uid}");
            assert_eq!(
                probe.push_uid(uid, &hello("nobody")).await,
                Err(ClusterError::NotOnline(uid))
            );
        }
        let mut c = login(addr, 93).await;
        eventually_located(&probe, 93).await;
        probe.push_uid(93, &hello("logged in")).await.unwrap();
        assert_eq!(c.recv_echo().await, "logged in");

        // "gate-a" comes: first by name, it sweeps at its first look.
        let ga = Cluster::connect(&short(&nats, "gate", "gate-a"))
            .await
            .unwrap();
        let (g_a, _, _, _) = gate_with(ga).await;
        let store = bucket(&probe).await;
        wait_for("the gone gates' entries swept out", || {
            let store = store.clone();
            async move { stored(&store, 91).await.is_none() && stored(&store, 92).await.is_none() }
        })
        .await;
        assert!(stored(&store, 90).await.is_some(), "a live entry was swept");
        assert!(stored(&store, 93).await.is_some(), "a live entry was swept");
        probe.push_uid(90, &hello("untouched")).await.unwrap();
        assert_eq!(live.recv_echo().await, "untouched");
        g_a.shutdown().await;
        g_b.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_whose_alive_key_lapsed_claims_its_uids_again() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let mut one = OneUser::start(&nats, 95).await;
        let (probe, gc, c) = (&one.probe, &one.gate_cluster, &mut one.client);
        // As after NATS was away for longer than directory_ttl and a sweep removed the
        // gate's entries meanwhile.
        let store = bucket(probe).await;
        store.purge(format!("node.{}", gc.node_id())).await.unwrap();
        store.purge("uid.95").await.unwrap();
        assert_eq!(probe.locate(95).await, Ok(None));
        eventually_located(probe, 95).await;
        probe.push_uid(95, &hello("found again")).await.unwrap();
        assert_eq!(c.recv_echo().await, "found again");
        one.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_made_by_an_earlier_version_is_brought_up_to_date() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let probe = Cluster::connect(&short(&nats, "tool", "")).await.unwrap();
        // As an earlier version made it: entries expire after directory_ttl, no per-message
        // time-to-live.
        jetstream::new(probe.nats().clone())
            .create_key_value(kv::Config {
                bucket: "longlink_sessions".into(),
                history: 1,
                max_age: TTL,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .unwrap();
        let gc = Cluster::connect(&short(&nats, "gate", "")).await.unwrap();
        let (g, addr, _, _) = gate_with(gc).await;
        let (b, _, _) = backend(&nats).await;
        let _c = login(addr, 97).await;
        eventually_located(&probe, 97).await;
        let store = bucket(&probe).await;
        let written = stored(&store, 97).await.expect("the entry").revision;
        tokio::time::sleep(TTL * 3).await;
        let entry = stored(&store, 97).await.expect("the entry expired");
        assert_eq!(entry.revision, written, "the entry was rewritten");
        assert!(probe.locate(97).await.unwrap().is_some());
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
