//! The admission's places, taken and given back.

use super::*;

#[test]
fn a_new_handshake_over_the_share_pushes_out_the_oldest() {
    let shutdown = CancellationToken::new();
    // 25 % of 8: two places.
    let admission = Arc::new(Admission::new(8, 0, 25));
    let a = admission.handshake(&shutdown);
    let b = admission.handshake(&shutdown);
    assert!(!a.token().is_cancelled() && !b.token().is_cancelled());
    let c = admission.handshake(&shutdown);
    assert!(a.token().is_cancelled(), "the oldest is pushed out");
    assert!(!b.token().is_cancelled() && !c.token().is_cancelled());
    // A finished handshake gives its place back: nobody is pushed out.
    drop(b);
    let d = admission.handshake(&shutdown);
    assert!(!c.token().is_cancelled() && !d.token().is_cancelled());
    // The gate's stop ends them all.
    shutdown.cancel();
    assert!(c.token().is_cancelled() && d.token().is_cancelled());
}

#[test]
fn the_share_is_at_least_one_place() {
    let shutdown = CancellationToken::new();
    let admission = Arc::new(Admission::new(2, 0, 25));
    let a = admission.handshake(&shutdown);
    let b = admission.handshake(&shutdown);
    assert!(a.token().is_cancelled() && !b.token().is_cancelled());
    assert_eq!(Admission::new(10_000, 0, 25).max_handshakes, 2_500);
    assert_eq!(
        Admission::new(usize::MAX, 0, 100).max_handshakes,
        usize::MAX / 100
    );
}

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

fn waits(admission: &Arc<Admission>, ip: IpAddr) -> WaitPlace {
    let slot = admission.try_slot(Some(ip)).expect("a place");
    admission.wait(slot, ip)
}

#[test]
fn one_more_than_max_waiting_per_ip_ends_the_oldest_of_that_address() {
    let admission = Arc::new(Admission::new(100, 0, 25).with_waiting_per_ip(2));
    let a1 = waits(&admission, A);
    let b1 = waits(&admission, B);
    let a2 = waits(&admission, A);
    assert_eq!((admission.open(), admission.waiting().len()), (3, 3));
    let a3 = waits(&admission, A);
    assert!(a1.ended().is_cancelled(), "the oldest of A ends");
    assert!(![&b1, &a2, &a3].iter().any(|p| p.ended().is_cancelled()));
    // Its place is given back at once, before its task has seen the end.
    assert_eq!((admission.open(), admission.waiting().len()), (3, 3));
    drop(a1);
    drop(a2);
    assert_eq!((admission.open(), admission.waiting().len()), (2, 2));
}

#[test]
fn a_new_connection_over_max_conn_num_ends_a_waiting_session_of_its_address_first() {
    let admission = Arc::new(Admission::new(3, 0, 25).with_waiting_per_ip(10));
    let a1 = waits(&admission, A);
    let b1 = waits(&admission, B);
    let _attached = admission.try_slot(Some(A)).expect("the third place");
    let _b = admission
        .try_slot(Some(B))
        .expect("B's own waiting session makes room");
    assert!(b1.ended().is_cancelled() && !a1.ended().is_cancelled());
    let _c = admission.try_slot(Some(B)).expect("then any address's");
    assert!(a1.ended().is_cancelled());
    assert!(
        admission.try_slot(Some(B)).is_none(),
        "attached ones are never ended"
    );
    assert_eq!(admission.open(), 3);
}

#[test]
fn a_new_connection_over_max_conn_per_ip_ends_only_its_own_address_waiting_sessions() {
    let admission = Arc::new(Admission::new(100, 2, 25).with_waiting_per_ip(10));
    let b1 = waits(&admission, B);
    let _a1 = admission.try_slot(Some(A)).expect("a place");
    let a2 = waits(&admission, A);
    let _a3 = admission
        .try_slot(Some(A))
        .expect("A's waiting session makes room");
    assert!(a2.ended().is_cancelled() && !b1.ended().is_cancelled());
    assert!(admission.try_slot(Some(A)).is_none());
    assert!(!b1.ended().is_cancelled());
}

#[test]
fn a_place_taken_before_its_address_is_known_counts_for_it_once_settled() {
    let admission = Arc::new(Admission::new(100, 2, 25).with_waiting_per_ip(10));
    let _a1 = admission.try_slot(Some(A)).expect("a place");
    // Two proxied connections: no per-IP place until their address is known.
    let mut p1 = admission.try_slot(None).expect("a place");
    let mut p2 = admission.try_slot(None).expect("a place");
    assert!(admission.settle(&mut p1, A), "A's second place");
    assert!(!admission.settle(&mut p2, A), "A is full");
    assert!(admission.settle(&mut p2, B), "B is not");
    assert!(
        admission.settle(&mut p2, B),
        "a settled slot stays as it is"
    );
    assert_eq!(admission.open(), 3);
    drop(p1);
    assert_eq!(admission.open(), 2);
    let mut p3 = admission.try_slot(None).expect("a place");
    assert!(admission.settle(&mut p3, A), "A's place given back");
    // A waiting session of the address makes room, as at accept.
    drop(p3);
    let w = waits(&admission, A);
    let mut p4 = admission.try_slot(None).expect("a place");
    assert!(admission.settle(&mut p4, A));
    assert!(w.ended().is_cancelled());
}
