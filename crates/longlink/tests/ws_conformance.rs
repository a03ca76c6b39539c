//! longlink's WebSocket reading against RFC 6455, differentially: the cases of the Autobahn
//! testsuite's sections 1-7 and 9 (in `ws_conformance/cases.rs`), as client frames, go to a
//! real gate over a loopback socket and to tungstenite's server-side `WebSocket` in process
//! (`longlink_testkit::wsdiff`), each whole and in small reads, with the same message limit.
//! The two must agree on every message delivered, every pong and the close code, or differ
//! as the case says ([`Exception`], each a documented choice of longlink's).
//!
//! The gate's processor is protobuf with one raw-handled message at id 0, so a message
//! reaches the application as it came when it starts with `00 00`; the cases' messages do
//! (where a case sends one that does not, e.g. an empty message, the processor closes the
//! connection: [`Exception::Undecodable`]).
//!
//! The seeds of the fuzz target `ws_differential` (`fuzz/seeds/ws_differential`) are
//! replayed here the same way, through a gate with the fuzz target's message limit.

mod ws_conformance {
    pub(crate) mod cases;
    pub(crate) mod closing;
    pub(crate) mod fragments;
    pub(crate) mod utf8;
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use longlink::processor::MessageOptions;
use longlink::shutdown::StopHandle;
use longlink::{App, Encoding, Gate, GateConfig, Processor};
use longlink_testkit::ws::upgrade_status;
use longlink_testkit::wsdiff::{self, FUZZ_MAX_MSG_LEN, Observed};
use longlink_testkit::{STEP, bounded, stops_within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_conformance::cases::{self, Case, MAX_MSG_LEN};

/// The one message of the gate's protocol (id 0), handled raw.
#[derive(Clone, PartialEq, prost::Message)]
struct Blob {}

/// The messages each connection delivered to the application (by the client's address),
/// each with its id `00 00` put back in front.
type Log = Arc<Mutex<HashMap<SocketAddr, Vec<Vec<u8>>>>>;

/// A gate on loopback whose application logs every message as it came.
struct Gate_ {
    ws: SocketAddr,
    log: Log,
    stop: StopHandle,
    app: tokio::task::JoinHandle<Result<(), longlink::app::AppError>>,
}

async fn start(max_msg_len: usize) -> Gate_ {
    let log = Log::default();
    let mut p = Processor::new(Encoding::Protobuf);
    p.register_protobuf::<Blob>(MessageOptions::new()).unwrap();
    let to = Arc::clone(&log);
    p.handle_raw::<Blob, _>(move |raw, agent| {
        let message = [&[0, 0][..], &raw.body].concat();
        let mut log = to.lock().unwrap();
        log.entry(agent.remote_addr()).or_default().push(message);
    })
    .unwrap();
    let config = GateConfig {
        ws_addr: "127.0.0.1:0".into(),
        encoding: Encoding::Protobuf,
        max_msg_len: max_msg_len as u32,
        ..GateConfig::default()
    };
    let gate = Gate::builder(config, p).bind().await.expect("gate binds");
    let ws = gate.ws_addr().expect("ws listener");
    let app = App::new().gate(gate).handle_signals(false);
    let stop = app.stop_handle();
    Gate_ {
        ws,
        log,
        stop,
        app: tokio::spawn(app.run()),
    }
}

impl Gate_ {
    /// Sends `input` after the upgrade, in writes of `read_size` bytes (a yield after each,
    /// so that the gate reads them one by one), then ends the sending side; reads all the
    /// gate sends until it closes.
    async fn observe(&self, input: &[u8], read_size: usize) -> Observed {
        let mut s = TcpStream::connect(self.ws).await.expect("connect");
        s.set_nodelay(true).unwrap();
        let status = upgrade_status(&mut s, "/").await;
        assert!(status.starts_with("HTTP/1.1 101"), "{status}");
        let me = s.local_addr().unwrap();
        let (mut r, mut w) = s.into_split();
        let send = async {
            for chunk in input.chunks(read_size.max(1)) {
                if w.write_all(chunk).await.is_err() {
                    return; // the gate has closed
                }
                if read_size < input.len() {
                    tokio::task::yield_now().await;
                }
            }
            let _ = w.shutdown().await;
        };
        let receive = async {
            let mut got = Vec::new();
            let _ = r.read_to_end(&mut got).await;
            got
        };
        let ((), got) = tokio::time::timeout(STEP, async { tokio::join!(send, receive) })
            .await
            .expect("the gate closes the connection");
        let written = wsdiff::frames(&got);
        let pongs = written
            .iter()
            .filter(|(b0, _)| *b0 == 0x8A)
            .map(|(_, p)| p.clone())
            .collect();
        let close = written
            .iter()
            .find(|(b0, _)| *b0 == 0x88)
            .and_then(|(_, p)| Some(u16::from_be_bytes([*p.first()?, *p.get(1)?])));
        let messages = self.log.lock().unwrap().remove(&me).unwrap_or_default();
        Observed {
            messages,
            pongs,
            close,
        }
    }

    async fn stop(self) {
        self.stop.stop();
        stops_within(STEP * 2, self.app).await;
    }
}

/// The read sizes a case goes in: whole, and small (3 bytes; 997 for inputs over 8 KiB,
/// the size of Autobahn's chopped writes).
fn read_sizes(input: &[u8]) -> [usize; 2] {
    let small = if input.len() > 8 * 1024 { 997 } else { 3 };
    [usize::MAX, small]
}

/// Runs `case` against the gate and tungstenite, each whole and in small reads; the
/// verdicts, one per read size, against what the case expects.
async fn check(gate: &Gate_, case: &Case, failures: &mut Vec<String>) {
    let mut whole = None;
    for read_size in read_sizes(&case.bytes) {
        let reads = match read_size {
            usize::MAX => "whole".to_owned(),
            n => format!("in reads of {n}"),
        };
        let reference = wsdiff::reference(&case.bytes, MAX_MSG_LEN, read_size);
        let observed = gate.observe(&case.bytes, read_size).await;
        match wsdiff::compare(&reference, &observed, true, || {
            wsdiff::unlimited(&case.bytes, read_size)
        }) {
            Ok(verdict) if verdict == case.expect => {}
            Ok(verdict) => failures.push(format!(
                "{} ({}), {reads}: expected {:?}, got {verdict:?}",
                case.id, case.what, case.expect
            )),
            Err(e) => failures.push(format!("{} ({}), {reads}: {e}", case.id, case.what)),
        }
        // Nor does how the bytes came change what longlink did.
        match &whole {
            None => whole = Some(observed),
            Some(first) if *first != observed => failures.push(format!(
                "{}: whole {first:?}, {reads} {observed:?}",
                case.id
            )),
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn longlink_agrees_with_tungstenite_on_the_autobahn_cases() {
    bounded(Duration::from_secs(120), async {
        let gate = start(MAX_MSG_LEN).await;
        let all = cases::all();
        let mut failures = Vec::new();
        for case in &all {
            check(&gate, case, &mut failures).await;
        }
        gate.stop().await;
        assert!(
            failures.is_empty(),
            "{} of {} cases differ:\n{}",
            failures.len(),
            all.len(),
            failures.join("\n")
        );
    })
    .await;
}

/// The reference itself: tungstenite judges each UTF-8 sequence of section 6 as Autobahn's
/// table does (delivers the valid ones, fails on the others with 1007).
#[test]
fn tungstenite_judges_the_utf8_sequences_as_autobahn_does() {
    for (valid, seq) in ws_conformance::utf8::utf8_sequences() {
        let mut input = Vec::new();
        wsdiff::put_frame(&mut input, 0x81, &seq);
        wsdiff::put_frame(&mut input, 0x88, &1000u16.to_be_bytes());
        let expected = if valid {
            wsdiff::RefEnd::Answered(Some(1000))
        } else {
            wsdiff::RefEnd::Failed(1007)
        };
        let r = wsdiff::reference(&input, MAX_MSG_LEN, usize::MAX);
        assert_eq!(r.end, expected, "{seq:02x?}");
    }
}

/// The seeds of the fuzz target `ws_differential` (`fuzz/seeds/ws_differential`, where the
/// inputs it finds are kept too) replayed through a gate with the fuzz target's message
/// limit: the fuzz target drives the gate's codec directly, this drives a connection.
#[tokio::test]
async fn the_fuzz_seeds_agree_through_a_gate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ws_differential");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    bounded(Duration::from_secs(60), async {
        let gate = start(FUZZ_MAX_MSG_LEN).await;
        let mut failures = Vec::new();
        for path in &seeds {
            let (input, read_size) = wsdiff::generate(&std::fs::read(path).unwrap());
            let reference = wsdiff::reference(&input, FUZZ_MAX_MSG_LEN, read_size);
            let observed = gate.observe(&input, read_size).await;
            if let Err(e) = wsdiff::compare(&reference, &observed, true, || {
                wsdiff::unlimited(&input, read_size)
            }) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
        gate.stop().await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    })
    .await;
}
