//! TCP between nodes: one connection per ordered node pair, raft messages batched into
//! frames, bounded queues, reconnection with backoff.
//!
//! ```text
//!  send(to, group, bytes) ─► per-peer queue (bounded) ─► writer task ─► TCP ─► peer's
//!                              full: dropped (raft resends)   │ Hello/Welcome    listener
//!                                                            ▼ then Raft frames   │
//!                             reconnect, backoff 50 ms → 2 s             inbound queue ─► receiver
//! ```
//!
//! Each node dials every peer it sends to, so a connection carries one direction only: no
//! ordering between the two directions is needed by raft. A writer takes whatever its queue
//! holds, up to `batch_bytes`, into one frame: the raft messages of all partitions for one
//! peer leave in one write (TiKV batches per store the same way; a frame over the peer's
//! limit once made TiKV drop connections, hence the cap). A listener refuses a dialer of
//! another cluster (and says so to it, once, in a log line on both sides). Nothing waits
//! without bound: queues are bounded and full queues drop, because raft resends whatever it
//! does not hear back about.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::frame::{self, envelope_cost, Envelope, Frame, FrameError};

/// Settings of a node's transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This node's id.
    pub node_id: u64,
    /// The cluster this node belongs to; peers of another cluster are refused.
    pub cluster_id: String,
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// The other nodes and where they listen.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Largest frame accepted or sent.
    pub max_frame_bytes: usize,
    /// A writer fills a frame up to about this many bytes of messages.
    pub batch_bytes: usize,
    /// Messages queued per peer before further sends are dropped.
    pub queue_messages: usize,
    /// Messages received and not yet taken before further ones are dropped.
    pub inbound_messages: usize,
    /// Longest wait between two connection attempts to a peer.
    pub max_backoff: Duration,
    /// A connection is given up as dead when data it sent stays unacknowledged this long
    /// (`TCP_USER_TIMEOUT`, and a write that cannot finish in this time), or when an
    /// inbound one brings nothing for twice this long (peers send something every half
    /// second). Without it a connection cut by a network partition stays "established"
    /// after the network heals, until TCP's retransmission backoff (minutes) gives up.
    pub dead_after: Duration,
}

impl TransportConfig {
    /// Defaults for `node_id` of `cluster_id` listening on `listen`, with `peers`.
    pub fn new(
        node_id: u64,
        cluster_id: impl Into<String>,
        listen: SocketAddr,
        peers: BTreeMap<u64, SocketAddr>,
    ) -> TransportConfig {
        TransportConfig {
            node_id,
            cluster_id: cluster_id.into(),
            listen,
            peers,
            max_frame_bytes: 64 << 20,
            batch_bytes: 1 << 20,
            queue_messages: 8192,
            inbound_messages: 32768,
            max_backoff: Duration::from_secs(2),
            dead_after: Duration::from_secs(5),
        }
    }
}

/// A message from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The sending node.
    pub from: u64,
    /// The raft group it is for.
    pub group: u64,
    /// The encoded message.
    pub message: Vec<u8>,
}

/// A peer's listening address refused a connection: no process listens there, so the node
/// is down (killed, crashed or restarting) rather than slow or cut off. Sent on every
/// refused attempt (at the reconnect backoff, 50 ms doubling to `max_backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRefused {
    /// The peer's node id.
    pub peer: u64,
}

/// Why the transport cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The listen address cannot be bound.
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// One peer's outgoing side.
#[derive(Debug)]
struct Peer {
    queue: mpsc::Sender<Envelope>,
    connected: Arc<AtomicBool>,
}

/// A node's transport. Dropping it (or [`Transport::shutdown`]) stops its tasks.
#[derive(Debug)]
pub struct Transport {
    node_id: u64,
    local_addr: SocketAddr,
    peers: HashMap<u64, Peer>,
    dropped: Arc<AtomicU64>,
    refused: broadcast::Sender<PeerRefused>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// How long a dialer waits for the listener's answer to its `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before reconnecting.
const MIN_BACKOFF: Duration = Duration::from_millis(50);

impl Transport {
    /// Binds the listener and starts a writer per peer. Messages from peers arrive on the
    /// returned receiver.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(Transport, mpsc::Receiver<Inbound>), TransportError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| TransportError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: config.listen,
                source,
            })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let dropped = Arc::new(AtomicU64::new(0));
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_messages.max(1));
        let config = Arc::new(config);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(accept_loop(
            listener,
            Arc::clone(&config),
            inbound_tx,
            Arc::clone(&dropped),
            shutdown_rx.clone(),
        )));
        let (refused, _) = broadcast::channel(64);
        let mut peers = HashMap::new();
        for (&id, &addr) in &config.peers {
            if id == config.node_id {
                continue;
            }
            let (queue, rx) = mpsc::channel(config.queue_messages.max(1));
            let connected = Arc::new(AtomicBool::new(false));
            tasks.push(tokio::spawn(writer(
                id,
                addr,
                Arc::clone(&config),
                rx,
                Arc::clone(&connected),
                refused.clone(),
                shutdown_rx.clone(),
            )));
            peers.insert(id, Peer { queue, connected });
        }
        Ok((
            Transport {
                node_id: config.node_id,
                local_addr,
                peers,
                dropped,
                refused,
                shutdown,
                tasks,
            },
            inbound_rx,
        ))
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The address peers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `message` for `group` on peer `to`. Returns `false` when it was dropped: an
    /// unknown peer, or its queue is full (raft resends what goes unanswered).
    pub fn send(&self, to: u64, group: u64, message: Vec<u8>) -> bool {
        let Some(peer) = self.peers.get(&to) else {
            return false;
        };
        match peer.queue.try_send(Envelope { group, message }) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether the connection to peer `id` is up now.
    pub fn is_connected(&self, id: u64) -> bool {
        self.peers
            .get(&id)
            .is_some_and(|p| p.connected.load(Ordering::Relaxed))
    }

    /// Every later [`PeerRefused`]: a peer whose address refused a connection. A receiver
    /// that falls behind loses the oldest events (they repeat while the peer stays down).
    pub fn refused_peers(&self) -> broadcast::Receiver<PeerRefused> {
        self.refused.subscribe()
    }

    /// Messages dropped so far, in and out (full queues, unknown peers).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops every task and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads one whole frame from `stream` into `buf` (which may hold a partial one already).
async fn read_frame(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max_bytes: usize,
) -> std::io::Result<Option<Frame>> {
    loop {
        match frame::decode(buf, max_bytes) {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Sets the socket options of a peer connection: no Nagle delay, and `TCP_USER_TIMEOUT` so the
/// kernel aborts the connection once sent data has gone unacknowledged for `dead_after`.
fn tune(stream: &TcpStream, dead_after: Duration) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    if let Err(e) = sock.set_tcp_user_timeout(Some(dead_after)) {
        tracing::debug!(error = %e, "cannot set TCP_USER_TIMEOUT on a peer connection");
    }
}

async fn write_frame(stream: &mut TcpStream, f: &Frame) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    frame::encode(f, &mut out).map_err(std::io::Error::other)?;
    stream.write_all(&out).await
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<TransportConfig>,
    inbound: mpsc::Sender<Inbound>,
    dropped: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(MIN_BACKOFF).await;
                continue;
            }
        };
        tune(&stream, config.dead_after);
        tokio::spawn(serve_peer(
            stream,
            peer,
            Arc::clone(&config),
            inbound.clone(),
            Arc::clone(&dropped),
            shutdown.clone(),
        ));
    }
}

/// The listening side of one connection: the handshake, then frames into the inbound queue.
async fn serve_peer(
    mut stream: TcpStream,
    addr: SocketAddr,
    config: Arc<TransportConfig>,
    inbound: mpsc::Sender<Inbound>,
    dropped: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let hello = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame(&mut stream, &mut buf, config.max_frame_bytes),
    )
    .await;
    let from = match hello {
        Ok(Ok(Some(Frame::Hello {
            cluster_id,
            node_id,
        }))) => {
            let refusal = if cluster_id != config.cluster_id {
                Some(format!(
                    "node {node_id} belongs to cluster {cluster_id:?}, this node to {:?}",
                    config.cluster_id
                ))
            } else if !config.peers.contains_key(&node_id) || node_id == config.node_id {
                Some(format!(
                    "node {node_id} is not a peer of node {}",
                    config.node_id
                ))
            } else {
                None
            };
            if let Some(reason) = refusal {
                tracing::warn!(%addr, %reason, "refusing a peer connection");
                let _ = write_frame(&mut stream, &Frame::Refused { reason }).await;
                return;
            }
            node_id
        }
        Ok(Ok(other)) => {
            tracing::warn!(%addr, frame = ?other.as_ref().map(std::mem::discriminant), "peer connection did not start with Hello; closing");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(%addr, error = %e, "bad frame from a peer; closing");
            return;
        }
        Err(_) => {
            tracing::warn!(%addr, "peer sent no Hello in time; closing");
            return;
        }
    };
    if write_frame(
        &mut stream,
        &Frame::Welcome {
            node_id: config.node_id,
        },
    )
    .await
    .is_err()
    {
        return;
    }
    tracing::debug!(%addr, from, "peer connected");
    let idle = config.dead_after * 2;
    loop {
        let next = tokio::select! {
            f = tokio::time::timeout(idle, read_frame(&mut stream, &mut buf, config.max_frame_bytes)) => match f {
                Ok(f) => f,
                Err(_) => {
                    // The dialer sends every half second: this connection is dead (the
                    // dialer has a new one, or will once the network lets it).
                    tracing::debug!(%addr, from, "peer connection silent; closing");
                    return;
                }
            },
            _ = shutdown.changed() => return,
        };
        match next {
            Ok(Some(Frame::Raft { messages })) => {
                for e in messages {
                    let m = Inbound {
                        from,
                        group: e.group,
                        message: e.message,
                    };
                    if inbound.try_send(m).is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(Some(_)) => {
                tracing::warn!(%addr, from, "unexpected frame from a peer; closing");
                return;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%addr, from, error = %e, "bad frame from a peer; closing");
                return;
            }
        }
    }
}

/// Why a dial failed; `refused` when nothing listens at the address.
struct DialError {
    message: String,
    refused: bool,
}

impl From<String> for DialError {
    fn from(message: String) -> DialError {
        DialError {
            message,
            refused: false,
        }
    }
}

impl From<&str> for DialError {
    fn from(message: &str) -> DialError {
        DialError::from(message.to_string())
    }
}

/// Dials `addr` and introduces this node; the connection once the peer welcomed it.
async fn dial(
    peer: u64,
    addr: SocketAddr,
    config: &TransportConfig,
) -> Result<TcpStream, DialError> {
    let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| DialError::from("connect timed out"))?
        .map_err(|e| DialError {
            refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
            message: e.to_string(),
        })?;
    tune(&stream, config.dead_after);
    let hello = Frame::Hello {
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id,
    };
    write_frame(&mut stream, &hello)
        .await
        .map_err(|e| DialError::from(e.to_string()))?;
    let mut buf = BytesMut::new();
    let answer = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame(&mut stream, &mut buf, config.max_frame_bytes),
    )
    .await
    .map_err(|_| DialError::from("no answer to Hello"))?
    .map_err(|e| DialError::from(e.to_string()))?;
    match answer {
        Some(Frame::Welcome { node_id }) if node_id == peer => Ok(stream),
        Some(Frame::Welcome { node_id }) => Err(DialError::from(format!(
            "{addr} is node {node_id}, not node {peer} as configured"
        ))),
        Some(Frame::Refused { reason }) => Err(DialError::from(format!("refused: {reason}"))),
        Some(_) => Err("unexpected answer to Hello".into()),
        None => Err("closed before answering Hello".into()),
    }
}

/// The sending side for one peer: connects (with backoff), then writes batches of queued
/// messages until the connection fails, then connects again.
async fn writer(
    peer: u64,
    addr: SocketAddr,
    config: Arc<TransportConfig>,
    mut queue: mpsc::Receiver<Envelope>,
    connected: Arc<AtomicBool>,
    refused: broadcast::Sender<PeerRefused>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut last_error = String::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut stream = match dial(peer, addr, &config).await {
            Ok(s) => s,
            Err(e) => {
                if e.refused {
                    // No receiver (nobody subscribed yet) is fine.
                    let _ = refused.send(PeerRefused { peer });
                }
                if e.message != last_error {
                    // Once per distinct failure, not once per attempt.
                    tracing::warn!(peer, %addr, error = %e.message, "cannot connect to a peer; retrying");
                    last_error = e.message;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(config.max_backoff);
                continue;
            }
        };
        if !last_error.is_empty() {
            tracing::info!(peer, %addr, "connected to a peer");
        }
        last_error.clear();
        backoff = MIN_BACKOFF;
        connected.store(true, Ordering::Relaxed);
        let mut out = BytesMut::new();
        loop {
            let first = tokio::select! {
                m = queue.recv() => m,
                _ = shutdown.changed() => return,
            };
            let Some(first) = first else { return };
            let mut bytes = envelope_cost(&first);
            let mut messages = vec![first];
            while bytes < config.batch_bytes {
                match queue.try_recv() {
                    Ok(e) => {
                        bytes += envelope_cost(&e);
                        messages.push(e);
                    }
                    Err(_) => break,
                }
            }
            out.clear();
            let encoded = frame::encode(&Frame::Raft { messages }, &mut out);
            if let Err(FrameError::Encode(e)) = &encoded {
                tracing::error!(peer, error = %e, "cannot encode a frame of raft messages");
                continue;
            }
            if out.len() > config.max_frame_bytes {
                tracing::warn!(
                    peer,
                    bytes = out.len(),
                    "dropping a frame over max_frame_bytes"
                );
                continue;
            }
            match tokio::time::timeout(config.dead_after, stream.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!(peer, error = %e, "peer connection lost; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::info!(peer, "peer connection stalled; reconnecting");
                    break;
                }
            }
        }
        connected.store(false, Ordering::Relaxed);
    }
}
