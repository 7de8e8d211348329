//! The transport between real sockets on loopback: messages both ways, in order; a peer of
//! another cluster refused; reconnection after a peer restarts; bounded queues; a peer whose
//! port refuses reported down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cairn_cluster::{Inbound, Transport, TransportConfig};
use tokio::sync::mpsc;

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn node(
    id: u64,
    cluster: &str,
    addrs: &BTreeMap<u64, SocketAddr>,
) -> (Transport, mpsc::Receiver<Inbound>) {
    let config = TransportConfig::new(id, cluster, addrs[&id], addrs.clone());
    Transport::start(config).await.expect("start")
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a message in time")
        .expect("the transport is running")
}

#[tokio::test]
async fn messages_flow_both_ways_in_order() {
    let addrs: BTreeMap<u64, SocketAddr> = [(1, free_addr()), (2, free_addr())].into();
    let (a, mut a_rx) = node(1, "c", &addrs).await;
    let (b, mut b_rx) = node(2, "c", &addrs).await;
    wait_until("both connected", || a.is_connected(2) && b.is_connected(1)).await;
    for i in 0..1000u32 {
        assert!(a.send(2, u64::from(i % 7), i.to_be_bytes().to_vec()));
    }
    assert!(b.send(1, 99, b"pong".to_vec()));
    for i in 0..1000u32 {
        let m = recv(&mut b_rx).await;
        assert_eq!(
            (m.from, m.group, m.message),
            (1, u64::from(i % 7), i.to_be_bytes().to_vec())
        );
    }
    let m = recv(&mut a_rx).await;
    assert_eq!((m.from, m.group, &m.message[..]), (2, 99, &b"pong"[..]));
    assert!(!a.send(3, 1, vec![]), "no such peer");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_peer_of_another_cluster_is_refused() {
    let addrs: BTreeMap<u64, SocketAddr> = [(1, free_addr()), (2, free_addr())].into();
    let (a, _a_rx) = node(1, "cluster-a", &addrs).await;
    let (b, mut b_rx) = node(2, "cluster-b", &addrs).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.is_connected(2) && !b.is_connected(1));
    a.send(2, 1, b"hello?".to_vec());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), b_rx.recv())
            .await
            .is_err(),
        "nothing crosses between clusters"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected_and_queues_are_bounded() {
    let addrs: BTreeMap<u64, SocketAddr> = [(1, free_addr()), (2, free_addr())].into();
    let mut config = TransportConfig::new(1, "c", addrs[&1], addrs.clone());
    config.queue_messages = 100;
    config.max_backoff = Duration::from_millis(200);
    let (a, _a_rx) = Transport::start(config).await.expect("start");
    // Peer 2 is down: the queue fills and then drops, it does not grow.
    for i in 0..10_000u32 {
        a.send(2, 1, i.to_be_bytes().to_vec());
    }
    assert!(a.dropped() >= 9_000, "dropped {}", a.dropped());
    let (b, mut b_rx) = node(2, "c", &addrs).await;
    wait_until("connected", || a.is_connected(2)).await;
    // What was queued arrives (at most the queue's worth), then fresh messages.
    let mut got = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), b_rx.recv()).await {
        got += 1;
    }
    assert!(got <= 101, "the queue held {got}");
    b.shutdown().await;
    // Peer 2 restarts on the same address; node 1 reconnects by itself.
    let (b, mut b_rx) = node(2, "c", &addrs).await;
    let mut arrived = false;
    for round in 0..100u32 {
        a.send(2, 5, round.to_be_bytes().to_vec());
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), b_rx.recv()).await {
            assert_eq!((m.from, m.group), (1, 5));
            arrived = true;
            break;
        }
    }
    assert!(arrived, "node 1 never reconnected to the restarted node 2");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_peer_whose_port_refuses_is_reported_down() {
    let addrs: BTreeMap<u64, SocketAddr> =
        [(1, free_addr()), (2, free_addr()), (3, free_addr())].into();
    let (a, _a_rx) = node(1, "c", &addrs).await;
    let mut refused = a.refused_peers();
    let (b, _b_rx) = node(2, "c", &addrs).await;
    wait_until("connected to node 2", || a.is_connected(2)).await;
    // Node 3 never started: its port refuses, and only node 3 is reported.
    let first = tokio::time::timeout(Duration::from_secs(5), refused.recv())
        .await
        .expect("a report in time")
        .expect("the transport is running");
    assert_eq!(first.peer, 3);
    // Node 2 goes away: reported within a few reconnect attempts of the next send.
    b.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        a.send(2, 1, b"ping".to_vec());
        match tokio::time::timeout(Duration::from_millis(100), refused.recv()).await {
            Ok(Ok(r)) if r.peer == 2 => break,
            Ok(Ok(r)) => assert_eq!(r.peer, 3, "only nodes 2 and 3 are down"),
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) | Err(_) => {}
            Ok(Err(e)) => panic!("reports ended: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 2's refusals were never reported"
        );
    }
    a.shutdown().await;
}
