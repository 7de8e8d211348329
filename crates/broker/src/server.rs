//! The Kafka listener: accepting connections, reading frames, answering in order.
//!
//! Each connection has a reader (this task) and a writer task. The reader decodes frames and
//! parses requests, starts one task per request, and queues that task's answer slot on a
//! bounded channel; the writer takes the slots in order and writes each response when it is
//! ready. Clients pipeline requests and expect responses in request order (the Kafka
//! protocol guarantees it), while a slow request — a long-polling fetch — does not block the
//! parsing of the next. When `max_inflight_per_connection` answers are pending the reader
//! stops reading, so the socket's own flow control pushes back on the client.
//!
//! A frame over `socket.request.max.bytes`, an unknown API, an unsupported version (except
//! ApiVersions, which is answered per the protocol) or a malformed request closes only that
//! connection, with a log line naming the peer and the reason.
//!
//! Requests that change state (`handlers::changes_state`: commits, group and admin APIs,
//! DeleteRecords, InitProducerId) take effect in the order the connection sent them: each
//! starts only once the previous one has finished, and any other request (except Produce,
//! ordered on its partitions, and ApiVersions) starts after the state changes sent before
//! it, so a client reads its own writes. Reads do not wait for each other: a long-polling
//! Fetch holds up nothing but its own answer slot.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use cairn_partition::StorageShards;
use cairn_protocol::kafka_protocol::messages::ApiKey;
use cairn_protocol::{
    api_versions_unsupported, decode_frame, encode_response_chunks, missing_frame_bytes,
    parse_request, ErrorCode, RequestError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::BrokerConfig;
use crate::http::HttpServer;
use crate::node::Node;
use crate::{handlers, BrokerError};

/// How long shutdown waits for connections to finish their in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Initial read buffer of a connection (it grows up to the largest frame being read).
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Once a frame's size is known, the reader reserves room for the rest of it in one step, up
/// to this much; a larger frame grows the buffer as its bytes arrive. One step means the
/// socket reads land where the frame stays, instead of the buffer doubling and copying what
/// it holds several times per large Produce request. Reserving is address space, not memory:
/// pages are touched only as bytes arrive, so a client declaring a large frame and sending
/// little still costs only what it sent.
const FRAME_RESERVE_BYTES: usize = 8 << 20;

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    node: Arc<Node>,
    shards: Arc<StorageShards>,
    local_addr: SocketAddr,
    http: Option<HttpServer>,
    shutdown: watch::Sender<bool>,
    acceptor: tokio::task::JoinHandle<()>,
}

/// An answer slot: the encoded response frame as chunks to write back to back (see
/// `encode_response_chunks`), `None` when the request gets none (acks=0), or an error that
/// closes the connection.
type Answer = oneshot::Receiver<Result<Option<Vec<Bytes>>, ()>>;

/// Chunks handed to one `writev` at most.
const MAX_WRITE_CHUNKS: usize = 64;

/// Writes `chunks` in order, with vectored writes: a Fetch response's records go out from the
/// buffers they were read into.
async fn write_chunks(writer: &mut OwnedWriteHalf, mut chunks: Vec<Bytes>) -> std::io::Result<()> {
    chunks.retain(|c| !c.is_empty());
    let mut next = 0usize;
    while next < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[next..]
            .iter()
            .take(MAX_WRITE_CHUNKS)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut written = writer.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let chunk = &mut chunks[next];
            if written >= chunk.len() {
                written -= chunk.len();
                next += 1;
            } else {
                chunk.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

impl Broker {
    /// Binds the HTTP API (if configured; it answers `/livez` from then on and 503 to
    /// everything else), opens the data directory (topics, partitions, metadata, groups),
    /// binds the Kafka listener and starts serving both.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let http = match config.http_listen {
            Some(addr) => Some(
                HttpServer::bind(addr, config.http.clone(), shutdown_rx.clone())
                    .await
                    .map_err(|source| BrokerError::HttpBind { addr, source })?,
            ),
            None => None,
        };
        let started = Self::open(config, shutdown_rx).await;
        let (node, shards, listener, local_addr) = match started {
            Ok(s) => s,
            Err(e) => {
                // Nothing else runs yet: stop the HTTP server, which waits for nothing.
                let _ = shutdown.send(true);
                if let Some(http) = http {
                    http.stopped().await;
                }
                return Err(e);
            }
        };
        node.spawn_tasks();
        let acceptor = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&node),
            node.shutdown.clone(),
        ));
        if let Some(http) = &http {
            http.serve(Arc::clone(&node));
        }
        Ok(Broker {
            node,
            shards,
            local_addr,
            http,
            shutdown,
            acceptor,
        })
    }

    /// Opens the node and binds the Kafka listener.
    async fn open(
        config: BrokerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Arc<Node>, Arc<StorageShards>, TcpListener, SocketAddr), BrokerError> {
        let shards =
            Arc::new(StorageShards::new(config.storage_threads).map_err(BrokerError::Threads)?);
        let mut cleaner = config.cleaner.clone();
        cleaner.settings.codec = Some(Arc::new(cairn_protocol::CleanerCodec::default()));
        cairn_partition::configure_cleaner(cleaner);
        let mut node = Node::open(config, Arc::clone(&shards), shutdown).await?;
        let listen = node.config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?;
        if node.config.advertise.1 == 0 {
            node.config.advertise.1 = local_addr.port();
        }
        let node = Arc::new(node);
        if let Some(cluster) = &node.cluster {
            // Peers ask for this node's consumer groups (the console's cluster-wide list).
            let weak = Arc::downgrade(&node);
            cluster.set_group_source(Arc::new(move || {
                weak.upgrade().map_or_else(
                    || serde_json::Value::Array(Vec::new()),
                    |node| crate::http::health::local_groups_json(&node),
                )
            }));
        }
        Ok((node, shards, listener, local_addr))
    }

    /// The address the HTTP API is bound to, if it runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node handlers serve (tests drive handlers directly with it).
    #[cfg(test)]
    pub(crate) fn ctx(&self) -> Arc<Node> {
        Arc::clone(&self.node)
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.node.cluster_id
    }

    /// Stops accepting, lets connections finish in-flight requests (for a bounded time),
    /// then flushes and closes every partition.
    pub async fn shutdown(self) {
        if let Some(cluster) = &self.node.cluster {
            // While everything still serves, so clients are redirected, not dropped.
            let handles = self
                .node
                .topics
                .list()
                .iter()
                .flat_map(|t| t.partitions.iter().cloned())
                .collect();
            cluster
                .hand_off_leaderships(handles, std::time::Duration::from_secs(5))
                .await;
        }
        let _ = self.shutdown.send(true);
        let _ = self.acceptor.await;
        if let Some(http) = self.http {
            http.stopped().await;
        }
        self.node.topics.close_all().await;
        if let Some(cluster) = &self.node.cluster {
            cluster.close().await;
        }
        let shards = self.shards;
        let _ = tokio::task::spawn_blocking(move || shards.shutdown()).await;
    }
}

fn is_shutting_down(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(ctx.config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if is_shutting_down(&shutdown) {
            break;
        }
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let ctx = Arc::clone(&ctx);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            // Counted while the task lives (also if it is aborted at shutdown).
            let counted = OpenConnection::new(&ctx);
            serve_connection(stream, peer, ctx, shutdown).await;
            drop(counted);
            drop(permit);
        });
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
        connections.abort_all();
    }
}

/// An open connection as `/metrics` counts it: counted on creation, uncounted on drop.
struct OpenConnection(Arc<Node>);

impl OpenConnection {
    fn new(ctx: &Arc<Node>) -> OpenConnection {
        ctx.metrics.connection(true);
        OpenConnection(Arc::clone(ctx))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.metrics.connection(false);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Node>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "connection opened");
    let (mut reader, mut writer) = stream.into_split();
    let (answers, mut pending) =
        mpsc::channel::<Answer>(ctx.config.max_inflight_per_connection.max(1));
    let writer_task = tokio::spawn(async move {
        while let Some(answer) = pending.recv().await {
            match answer.await {
                Ok(Ok(Some(chunks))) => {
                    if write_chunks(&mut writer, chunks).await.is_err() {
                        break;
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(())) | Err(_) => break,
            }
        }
        let _ = writer.shutdown().await;
    });
    let max_frame = ctx.config.max_frame_bytes;
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    // Finished when the last state-changing request sent so far has taken effect: its task
    // holds the sender and drops it when done, which ends the receivers' `changed()`.
    let mut last_change: Option<watch::Receiver<()>> = None;
    let conn = handlers::Conn::new(peer);
    'connection: loop {
        loop {
            let frame = match decode_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, reason = %e, "closing connection: bad frame");
                    break 'connection;
                }
            };
            let (tx, rx) = oneshot::channel();
            if answers.send(rx).await.is_err() {
                break 'connection;
            }
            match parse_request(frame) {
                Ok(request) => {
                    if request.trailing_bytes > 0 {
                        tracing::debug!(%peer, api = ?request.api_key, bytes = request.trailing_bytes, "ignoring bytes after the request body, as Kafka does");
                    }
                    let (key, version, correlation_id) =
                        (request.api_key, request.api_version, request.correlation_id);
                    let after = match key {
                        ApiKey::Produce | ApiKey::ApiVersions => None,
                        _ => last_change.clone(),
                    };
                    let done = handlers::changes_state(key).then(|| {
                        let (done, finished) = watch::channel(());
                        last_change = Some(finished);
                        done
                    });
                    // Ordered part here, on the reader (see `handlers::dispatch`); the rest
                    // in its own task so a slow request does not hold up the next.
                    let started = Instant::now();
                    let work =
                        handlers::dispatch(Arc::clone(&ctx), Arc::clone(&conn), request).await;
                    let metrics_ctx = Arc::clone(&ctx);
                    tokio::spawn(async move {
                        if let Some(mut previous) = after {
                            // Err once the previous change's sender is dropped: it is done.
                            let _ = previous.changed().await;
                        }
                        let body = work.await;
                        drop(done);
                        let api = format!("{key:?}");
                        metrics_ctx
                            .metrics
                            .request(&api, version, started.elapsed());
                        if let Some(body) = &body {
                            metrics_ctx.metrics.response_errors(&api, body);
                        }
                        let answer = match body {
                            None => Ok(None),
                            Some(body) => encode_response_chunks(correlation_id, key, version, body)
                                .map(Some)
                                .map_err(|e| {
                                    tracing::error!(%peer, api = ?key, version, error = %e, "cannot encode response; closing connection");
                                }),
                        };
                        let _ = tx.send(answer);
                    });
                }
                Err(RequestError::UnsupportedVersion {
                    api_key: ApiKey::ApiVersions,
                    correlation_id,
                    api_version,
                }) => {
                    // The protocol's rule: answer in the v0 format with error 35 and the
                    // supported versions; the client retries with one of them.
                    tracing::debug!(%peer, api_version, "ApiVersions version not supported; answering with v0");
                    ctx.metrics.refused(
                        &format!("{:?}", ApiKey::ApiVersions),
                        ErrorCode::UnsupportedVersion,
                    );
                    let _ = tx.send(Ok(Some(vec![
                        api_versions_unsupported(correlation_id).freeze()
                    ])));
                }
                Err(e) => {
                    if let RequestError::RefusedVersion { api_key, .. } = &e {
                        // No answer can be written (Kafka counts nothing either), but the
                        // error counter shows operators clients that need another version.
                        ctx.metrics
                            .refused(&format!("{api_key:?}"), ErrorCode::UnsupportedVersion);
                    }
                    tracing::warn!(%peer, reason = %e, "closing connection: bad request");
                    let _ = tx.send(Err(()));
                    break 'connection;
                }
            }
        }
        buf.reserve(missing_frame_bytes(&buf, max_frame).min(FRAME_RESERVE_BYTES));
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(answers);
    let _ = writer_task.await;
    tracing::debug!(%peer, "connection closed");
}
