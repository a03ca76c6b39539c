//! Every envelope round-trips; arbitrary bytes are an error, never a panic.

use super::*;
use proptest::prelude::*;

#[test]
fn every_kind_round_trips() {
    let to_backend = [
        ToBackend::Open {
            gate: "g1".into(),
            conn: 7,
            transport: 1,
            local: "127.0.0.1:1".into(),
            remote: "127.0.0.1:2".into(),
        },
        ToBackend::Msg {
            gate: "g1".into(),
            conn: 7,
            payload: Bytes::from_static(b"{\"A\":{}}"),
        },
        ToBackend::Close {
            gate: "g1".into(),
            conn: u64::MAX,
        },
        ToBackend::HandOff {
            gate: "g1".into(),
            conn: 9,
        },
        ToBackend::Adopt(Adopt {
            gate: "g1".into(),
            conn: 9,
            transport: 2,
            local: "127.0.0.1:1".into(),
            remote: "127.0.0.1:2".into(),
            state: AgentState {
                uid: 42,
                user_data: Some(Bytes::from_static(b"{\"room\":7}")),
            },
        }),
        ToBackend::Adopt(Adopt {
            gate: "g2".into(),
            conn: 1,
            transport: 1,
            local: String::new(),
            remote: String::new(),
            state: AgentState::default(),
        }),
        ToBackend::Probe,
        ToBackend::Acked { gate: "g1".into() },
    ];
    for m in to_backend {
        assert_eq!(ToBackend::decode(m.encode()).unwrap(), m);
    }
    let to_gate = [
        ToGate::Push {
            conn: 1,
            payload: Bytes::from_static(b"x"),
        },
        ToGate::Close { conn: 2 },
        ToGate::Destroy { conn: 3 },
        ToGate::Bind {
            conn: 4,
            uid: 5,
            at: 6,
        },
        ToGate::Join {
            conn: 6,
            group: "room.1".into(),
        },
        ToGate::Leave {
            conn: 6,
            group: "room.1".into(),
        },
        ToGate::PushUid {
            conn: 8,
            uid: 9,
            payload: Bytes::new(),
        },
        ToGate::KickUid {
            conn: 8,
            uid: 9,
            payload: Bytes::from_static(b"bye"),
        },
        ToGate::Displace { conn: 1, uid: 2 },
        ToGate::Goodbye {
            conn: 3,
            uid: 4,
            reason: "banned".into(),
        },
        ToGate::Move {
            conn: 5,
            node_type: "chat".into(),
            from: "chat-1".into(),
        },
        ToGate::PushUids(PushUids {
            targets: vec![(1, 2), (3, u64::MAX)],
            payload: Bytes::from_static(b"{\"A\":{}}"),
        }),
        ToGate::PushUids(PushUids {
            targets: Vec::new(),
            payload: Bytes::new(),
        }),
    ];
    for m in to_gate {
        assert_eq!(ToGate::decode(m.encode()).unwrap(), m);
    }
    let h = Holder {
        gate: "gate-a".into(),
        conn: 12,
        at: 1_700_000_000_000_000,
        incarnation: 99,
    };
    assert_eq!(Holder::decode(&h.encode()), Some(h));
    assert_eq!(Holder::decode(b"nonsense"), None);
    assert_eq!(Holder::decode(b"12 1700000000000000 gate-a x"), None);
    // An earlier version's entry (no incarnation): any start of its gate.
    let old = Holder::decode(b"12 1700000000000000 gate-a").unwrap();
    assert_eq!((old.gate.as_str(), old.incarnation), ("gate-a", 0));
    for state in [
        AgentState::default(),
        AgentState {
            uid: 3,
            user_data: Some(Bytes::new()),
        },
    ] {
        assert_eq!(AgentState::decode(state.encode()).unwrap(), state);
    }
}

#[test]
fn a_target_count_past_the_bytes_is_an_error() {
    let mut bytes = vec![super::to_gate::PUSH_UIDS];
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0; 16]);
    assert!(ToGate::decode(Bytes::from(bytes)).is_err());
    let mut bytes = vec![super::to_gate::PUSH_UIDS];
    bytes.extend_from_slice(&2u64.to_le_bytes());
    bytes.extend_from_slice(&[0; 24]);
    assert!(ToGate::decode(Bytes::from(bytes)).is_err());
}

proptest! {
    #[test]
    fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = ToBackend::decode(Bytes::from(bytes.clone()));
        let _ = AgentState::decode(Bytes::from(bytes.clone()));
        let _ = ToGate::decode(Bytes::from(bytes));
    }
}

#[test]
fn replay_requests_and_answers_round_trip() {
    let request = ReplayRequest {
        src: u64::MAX,
        after: 7,
        gate: "g1".into(),
    };
    assert_eq!(ReplayRequest::decode(request.encode()).unwrap(), request);
    let answer = ReplayAnswer {
        known: true,
        last: 9,
        more: true,
        entries: vec![
            Replayed {
                seq: 8,
                token: "room_1".into(),
                payload: Bytes::from_static(b"{\"A\":{}}"),
            },
            Replayed {
                seq: 9,
                token: String::new(),
                payload: Bytes::new(),
            },
        ],
    };
    assert_eq!(ReplayAnswer::decode(answer.encode()).unwrap(), answer);
    assert!(ReplayAnswer::decode(Bytes::from_static(b"\x01\x02")).is_err());
    let mut cut = answer.encode().to_vec();
    cut.pop();
    assert!(ReplayAnswer::decode(Bytes::from(cut)).is_err());
}
