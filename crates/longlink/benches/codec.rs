//! Micro-benchmarks: framing, JSON and protobuf encode/decode.
//!
//! Run: `cargo bench -p longlink --bench codec`

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use longlink::processor::MessageOptions;
use longlink::wire::LenCodec;
use longlink::{Encoding, Processor};
use std::hint::black_box;

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct ChatMessage {
    #[prost(uint64, tag = "1")]
    room_id: u64,
    #[prost(uint64, tag = "2")]
    from_uid: u64,
    #[prost(uint64, tag = "3")]
    to_uid: u64,
    #[prost(string, tag = "4")]
    text: String,
    #[prost(int64, tag = "5")]
    ts: i64,
}

fn sample() -> ChatMessage {
    ChatMessage {
        room_id: 7,
        from_uid: 42,
        to_uid: 0,
        text: "hello, everyone in room seven".into(),
        ts: 1_790_000_000,
    }
}

fn processor(encoding: Encoding) -> Processor {
    let mut p = Processor::new(encoding);
    p.register_with::<ChatMessage>(MessageOptions::new().outgoing())
        .expect("register");
    p
}

fn framing(c: &mut Criterion) {
    let codec = LenCodec::default();
    let payload = vec![b'x'; 64];
    let mut wire = BytesMut::new();
    for _ in 0..64 {
        codec.encode(&payload, &mut wire).expect("encode");
    }
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(64));
    g.bench_function("decode 64 frames of 64 B", |b| {
        b.iter(|| {
            let mut src = wire.clone();
            let mut n = 0;
            while let Ok(Some(f)) = codec.decode(&mut src) {
                n += f.len();
            }
            black_box(n)
        })
    });
    g.bench_function("encode 64 frames of 64 B", |b| {
        let mut out = BytesMut::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            for _ in 0..64 {
                codec.encode(black_box(&payload), &mut out).expect("encode");
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode S2C_Message");
    for (name, encoding) in [("json", Encoding::Json), ("protobuf", Encoding::Protobuf)] {
        let p = processor(encoding);
        let msg = sample();
        g.bench_function(name, |b| {
            b.iter(|| black_box(p.encode(black_box(&msg)).expect("encode")))
        });
    }
    g.finish();
}

criterion_group!(benches, framing, encode);
criterion_main!(benches);
