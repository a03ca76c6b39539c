//! The short fault soak (`longlink-soak`, tools/soak; `scripts/soak-cluster.sh` runs it at
//! size): one NATS, three gates and two chat nodes of this binary, 24 resumable clients (TCP
//! and WebSocket) chatting in 4 rooms and privately through cutting proxies, while each phase
//! runs in turn: nothing (baseline), random cuts, every gate replaced in turn, every chat
//! node in turn, NATS killed and started again. Once in JSON and once in protobuf.
//!
//! Every phase runs, its figures are printed, and each must keep every guarantee: each room
//! message received once and in order by every watcher, each private message once, each
//! message no one received refused to its sender (never delivered after its refusal); in
//! the planned phases (all but the NATS outage) also no session lost and no login repeated
//! (see `longlink_soak::Figures::broken`).

use std::path::PathBuf;

use longlink_soak::{Options, Phase, run};

/// The phases whose guarantees are checked: every one.
const ASSERTED: [Phase; 5] = [
    Phase::Baseline,
    Phase::Cuts,
    Phase::Gates,
    Phase::Chats,
    Phase::Nats,
];

async fn soak(encoding: longlink_client::Encoding) {
    let Some(nats) = longlink_testkit::nats_server_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nats-server not found (run scripts/test.sh, or set LONGLINK_NATS_SERVER)"
        );
        eprintln!("skipped: nats-server not found (scripts/test.sh installs it)");
        return;
    };
    let mut opts = Options::new(PathBuf::from(env!("CARGO_BIN_EXE_longlink-chat")), nats);
    opts.encoding = encoding;
    opts.seed = 7;
    // A stopping gate spreads its clients' moves over 1 s (5 s by default): the same moves,
    // a shorter test.
    opts.gate_settings = "drain_spread = 1".into();
    let report = tokio::time::timeout(std::time::Duration::from_secs(180), run(&opts))
        .await
        .expect("the soak ends within 180 s")
        .expect("the soak runs");
    eprintln!("{encoding}:\n{}", report.table());
    let broken = report.broken(&ASSERTED);
    assert!(
        broken.is_empty(),
        "{encoding}: {broken:?}\n{}",
        report.table()
    );
}

#[tokio::test]
async fn short_soak_json() {
    soak(longlink_client::Encoding::Json).await;
}

#[tokio::test]
async fn short_soak_protobuf() {
    soak(longlink_client::Encoding::Protobuf).await;
}
