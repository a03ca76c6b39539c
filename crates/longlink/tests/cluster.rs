//! The cluster layer over a real `nats-server` on 127.0.0.1 (one per test, on a free port):
//! forwarding with connection events in order, remote calls and their typed errors, push,
//! kick and broadcast by uid from a node that holds no connection, and bad envelopes.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::pinged::{
    backend, client, config, eventually_located, eventually_none, gate, ping, registry,
};
use common::{Echo, Running, STEP, TcpClient, Wire, bounded, run, wait_for};
use longlink::cluster::{Cluster, ClusterError};
use longlink::{App, Ctx, Encoding, Module, Processor};
use longlink_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_messages_and_events_arrive_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let (b, log, bc) = backend(&nats).await;
        let (g, addr, _gc, errors) = gate(&nats).await;
        // The backend starts in its own task: until it has subscribed, a forwarded message
        // fails ("no node serves svc") and is dropped, so the stream below would lose its
        // first messages.
        until_served(addr, &log, &errors).await;
        let mut c = client(addr).await;
        for n in 1..=50 {
            ping(&mut c, n, 0).await;
        }
        for n in 1..=50 {
            assert_eq!(c.recv_echo().await, format!("{} {n}", bc.node_id()));
        }
        drop(c);
        let mut want = vec!["new".to_string()];
        want.extend((1..=50).map(|n| format!("ping {n}")));
        want.push("close".into());
        wait_for("the close event to reach the backend", || {
            let closed = log.lock().unwrap().last().map(String::as_str) == Some("close");
            async move { closed }
        })
        .await;
        assert_eq!(*log.lock().unwrap(), want);
        assert!(
            errors.lock().unwrap().is_empty(),
            "{:?}",
            errors.lock().unwrap()
        );
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// Waits until a connection's ping is answered (the backend serves), then forgets what that
/// connection left in the backend's log and the gate's errors.
async fn until_served(
    addr: std::net::SocketAddr,
    log: &Mutex<Vec<String>>,
    errors: &Mutex<Vec<String>>,
) {
    let mut probe = client(addr).await;
    loop {
        ping(&mut probe, 1, 0).await;
        let answer = tokio::time::timeout(Duration::from_millis(200), probe.try_recv()).await;
        if let Ok(Ok(_)) = answer {
            break;
        }
    }
    drop(probe);
    wait_for("the probe's close event", || {
        let closed = log.lock().unwrap().last().map(String::as_str) == Some("close");
        async move { closed }
    })
    .await;
    log.lock().unwrap().clear();
    errors.lock().unwrap().clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_backend_is_reported_not_hung() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let (g, addr, _gc, errors) = gate(&nats).await;
        let mut c = client(addr).await;
        ping(&mut c, 1, 0).await;
        wait_for("the failure to be reported", || {
            let reported = !errors.lock().unwrap().is_empty();
            async move { reported }
        })
        .await;
        assert_eq!(
            errors.lock().unwrap()[0],
            "Ping: no node serves svc",
            "a typed, immediate no-responders error"
        );
        // A backend comes later: the same connection is served on its next message.
        let (b, _log, bc) = backend(&nats).await;
        let deadline = tokio::time::Instant::now() + STEP;
        for n in 2.. {
            // Until the new backend has subscribed, a message fails (and is reported).
            let failed = errors.lock().unwrap().len();
            ping(&mut c, n, 0).await;
            let answer = tokio::time::timeout(Duration::from_secs(1), c.try_recv()).await;
            if let Ok(Ok(payload)) = answer {
                assert_eq!(
                    Wire(Encoding::Json).decode_echo(&payload),
                    format!("{} {n}", bc.node_id())
                );
                break;
            }
            assert!(
                errors.lock().unwrap().len() > failed,
                "a message neither answered nor reported"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "the new backend never took over"
            );
        }
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_calls_answer_time_out_and_fail_fast() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let server = Cluster::connect(&config(&nats, "math")).await.unwrap();
        let caller = Cluster::connect(&config(&nats, "gate")).await.unwrap();
        let module = Module::new("math", 0u64);
        let m = module.module_ref();
        let running = run(App::new().module(module));
        server
            .serve(&m, "add", |total: &mut Ctx<u64>, n: u64| {
                **total += n;
                **total
            })
            .await;
        // A node that takes requests and never answers (stuck, or dead mid-call).
        let _stuck = server
            .nats()
            .queue_subscribe("longlink.rpc.math.slow", "math".into())
            .await
            .unwrap();
        // The server has taken the subscription once a request nobody serves comes back.
        let _ = server.nats().request("longlink.nobody", "".into()).await;

        assert_eq!(caller.call::<u64, u64>("math", "add", &2).await, Ok(2));
        assert_eq!(caller.call::<u64, u64>("math", "add", &3).await, Ok(5));
        assert_eq!(
            caller
                .call_node::<u64, u64>(server.node_id(), "add", &1)
                .await,
            Ok(6)
        );

        // No answer within request_timeout (500 ms): a typed timeout, not a hang.
        let started = std::time::Instant::now();
        assert_eq!(
            caller.call::<u64, u64>("math", "slow", &1).await,
            Err(ClusterError::Timeout(Duration::from_millis(500)))
        );
        assert!(started.elapsed() < Duration::from_secs(2));

        // Nobody serves it: at once.
        assert!(matches!(
            caller.call::<u64, u64>("nobody", "add", &1).await,
            Err(ClusterError::NoResponders(_))
        ));
        assert!(matches!(
            caller
                .call_node::<u64, u64>("no-such-node", "add", &1)
                .await,
            Err(ClusterError::NoResponders(_))
        ));
        // A request that does not decode there is the remote's error.
        assert!(matches!(
            caller.call::<&str, u64>("math", "add", &"seven").await,
            Err(ClusterError::Remote(e)) if e.contains("bad request")
        ));
        running.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_kick_and_broadcast_by_uid_from_any_node() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let (b, _log, _bc) = backend(&nats).await;
        let (g, addr, gc, _errors) = gate(&nats).await;
        // A node with no gate and no backend.
        let other = Cluster::connect(&config(&nats, "tool")).await.unwrap();
        let mut p = Processor::new(Encoding::Json);
        registry(&mut p);
        let hello = |text: &str| p.encode(&Echo { text: text.into() }).unwrap();

        let mut c = client(addr).await;
        ping(&mut c, 0, 77).await;
        c.recv_echo().await;
        eventually_located(&other, 77).await;
        assert_eq!(other.locate(77).await, Ok(Some(gc.node_id().to_owned())));

        other.push_uid(77, &hello("pushed")).await.unwrap();
        assert_eq!(c.recv_echo().await, "pushed");
        other.broadcast_all(&hello("everyone"));
        assert_eq!(c.recv_echo().await, "everyone");
        assert_eq!(
            other.push_uid(78, &hello("nobody")).await,
            Err(ClusterError::NotOnline(78))
        );

        // Garbage on the gate's own subject is dropped; the gate carries on.
        other
            .nats()
            .publish(
                format!("longlink.gate.{}", gc.node_id()),
                "\u{ff}junk".into(),
            )
            .await
            .unwrap();
        other.push_uid(77, &hello("still here")).await.unwrap();
        assert_eq!(c.recv_echo().await, "still here");

        other.kick_uid(77, Some(&hello("bye"))).await.unwrap();
        assert_eq!(c.recv_echo().await, "bye");
        c.expect_closed().await;
        eventually_none(&other, 77).await;

        // A gate that stops gracefully takes its users out of the directory before it is
        // gone (not after directory_ttl).
        let mut d = client(addr).await;
        ping(&mut d, 0, 79).await;
        d.recv_echo().await;
        eventually_located(&other, 79).await;
        g.shutdown().await;
        assert_eq!(other.locate(79).await, Ok(None));
        b.shutdown().await;
    })
    .await;
}

/// A backend, a gate, a client of it logged in as `uid` (its directory entry written), and
/// a processor that encodes `Echo`.
async fn one_user(nats: &NatsServer, uid: u64) -> (Running, Running, TcpClient, Processor) {
    let (b, _log, _bc) = backend(nats).await;
    let (g, addr, gc, _errors) = gate(nats).await;
    let mut c = client(addr).await;
    ping(&mut c, 0, uid).await;
    c.recv_echo().await;
    eventually_located(&gc, uid).await;
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    (b, g, c, p)
}

/// Runs `work` in a thread of its own, on a one-thread runtime of its own that ends (with
/// every task on it) as `work` does: a tool's `main`.
fn on_own_runtime<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
}

/// What a node published before its last handle went is not lost with it: a tool that pushes
/// to a uid and broadcasts, then drops its `Cluster` as soon as the calls return, still
/// reaches the client. The tool runs on a runtime of its own with one thread, so that its
/// publisher and its NATS connection's task run only once the handle is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_node_sent_before_its_last_handle_went_arrives() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let (b, g, mut c, p) = one_user(&nats, 81).await;
        let hello = |text: &str| p.encode(&Echo { text: text.into() }).unwrap();
        let (pushed, everyone) = (hello("pushed"), hello("everyone"));
        let tool_config = config(&nats, "tool");
        let (seen, looked) = tokio::sync::oneshot::channel::<()>();
        let tool = on_own_runtime(async move {
            let tool = Cluster::connect(&tool_config).await.unwrap();
            tool.push_uid(81, &pushed).await.unwrap();
            tool.broadcast_all(&everyone);
            drop(tool);
            // The runtime lives on until the client has looked.
            let _ = looked.await;
        });
        // A push and a broadcast take different subjects: either may come first.
        let mut got = [c.recv_echo().await, c.recv_echo().await];
        got.sort();
        assert_eq!(got, ["everyone", "pushed"]);
        let _ = seen.send(());
        tool.join().unwrap();
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_flushed_before_the_runtime_stops_arrives() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let (b, g, mut c, p) = one_user(&nats, 82).await;
        let pushed = p
            .encode(&Echo {
                text: "flushed".into(),
            })
            .unwrap();
        let tool_config = config(&nats, "tool");
        // A tool that pushes and ends its runtime at once, its `Cluster` never dropped
        // inside it: only the flush puts the push on the wire.
        let tool = on_own_runtime(async move {
            let tool = Cluster::connect(&tool_config).await.unwrap();
            tool.push_uid(82, &pushed).await.unwrap();
            tool.flush().await.unwrap();
            tool
        });
        let tool = tool.join().unwrap();
        assert_eq!(c.recv_echo().await, "flushed");
        drop(tool);
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// What `/metrics` says node `node` keeps of its commands to gates, in bytes.
fn commands_kept(node: &str) -> Option<f64> {
    let text = longlink::metrics::render()?;
    let series = format!("longlink_cluster_commands_kept_bytes{{node=\"{node}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_its_commands_to_a_gate_only_until_the_gate_has_applied_them() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    longlink::metrics::install();
    bounded(STEP * 6, async {
        let (b, log, bc) = backend(&nats).await;
        let (g, addr, _gc, errors) = gate(&nats).await;
        until_served(addr, &log, &errors).await;
        let mut c = client(addr).await;
        // Each answer is a command from the node to the gate, kept for a gate that misses
        // it (a NATS restart) until the gate reports it applied, about once a second.
        let mut kept = Vec::new();
        for n in 1..=20 {
            ping(&mut c, n, 0).await;
            assert_eq!(c.recv_echo().await, format!("{} {n}", bc.node_id()));
            kept.push(commands_kept(bc.node_id()).expect("the node's gauge"));
        }
        assert!(kept.iter().any(|&k| k > 0.0), "kept: {kept:?}");
        wait_for("the node keeps nothing the gate has applied", || {
            let kept = commands_kept(bc.node_id());
            async move { kept == Some(0.0) }
        })
        .await;
        drop(c);
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
