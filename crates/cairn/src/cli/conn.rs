//! One TCP connection to one broker: request/response frames, correlation ids, and the
//! ApiVersions handshake that decides which version of each API to speak.
//!
//! Handshake (KIP-35/KIP-511): ApiVersions v3 first; a broker that does not know v3 answers
//! with error 35 (UNSUPPORTED_VERSION) in a v0 response, possibly listing the ApiVersions
//! range it does support, and the client asks again with that version, else v0 — as
//! librdkafka does. Afterwards each API is spoken at the highest version both sides
//! support ([`select_version`]); the client's side is [`CLIENT_APIS`].
//!
//! One request is outstanding at a time, so responses are matched by order and their
//! correlation ids checked. Every response frame is bounded by [`MAX_RESPONSE_FRAME_BYTES`]
//! before it is buffered, and every round trip by the command's `--timeout-ms`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::BytesMut;
use cairn_protocol::client::{decode_response, encode_request};
use cairn_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, IncrementalAlterConfigsRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, RequestKind, ResponseKind,
    SyncGroupRequest,
};
use cairn_protocol::kafka_protocol::protocol::{Request, StrBytes};
use cairn_protocol::{decode_frame, ErrorCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::error_code::KafkaError;

/// Largest response frame accepted: Kafka's default `socket.request.max.bytes` (100 MiB),
/// twice the 50 MiB a fetch asks for at most.
pub(crate) const MAX_RESPONSE_FRAME_BYTES: usize = cairn_protocol::DEFAULT_MAX_FRAME_BYTES;
/// Spare buffer capacity ensured before each socket read.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// `client.id` in every request header.
const CLIENT_ID: &str = "cairn";
/// The ApiVersions version tried first (v3 names the client software, KIP-511).
const FIRST_API_VERSIONS_VERSION: i16 = 3;

/// One API this client speaks, and the versions it speaks it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientApi {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ClientApi {
    ClientApi { key, min, max }
}

/// The APIs the CLI uses. Minimums are kafka-protocol's (what Kafka 4 still serves); every
/// request builder fills its fields for each version in range (a test encodes each at every
/// version). Maximums stop where a newer version would need something the CLI does not
/// have or has not been run against.
pub(crate) const CLIENT_APIS: &[ClientApi] = &[
    // v13 names topics by ID.
    api(ApiKey::Produce, 3, 12),
    // v13 names topics by ID.
    api(ApiKey::Fetch, 4, 12),
    // v10 only adds a timeout for tiered-storage lookups.
    api(ApiKey::ListOffsets, 1, 9),
    // v13 adds a top-level error code (KIP-1102) the CLI does not read.
    api(ApiKey::Metadata, 0, 12),
    // v10 names topics by id.
    api(ApiKey::OffsetCommit, 2, 9),
    // v2 is the first that can ask for every topic (a null list); v10 names topics by id.
    api(ApiKey::OffsetFetch, 2, 9),
    // v4 batches keys (KIP-699); v5 only allows TRANSACTION_ABORTABLE; v6 share groups.
    api(ApiKey::FindCoordinator, 0, 5),
    // Kafka 4 serves JoinGroup v2+; v4 answers a new member MEMBER_ID_REQUIRED.
    api(ApiKey::JoinGroup, 2, 9),
    api(ApiKey::Heartbeat, 0, 4),
    // v3 leaves by a list of members.
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    // v6 (KIP-1043) answers an unknown group with GROUP_ID_NOT_FOUND: not needed.
    api(ApiKey::DescribeGroups, 0, 5),
    // v4 filters by state (KIP-518), v5 by type.
    api(ApiKey::ListGroups, 0, 5),
    // v4 changes only which features may be listed; the CLI reads none.
    api(ApiKey::ApiVersions, 0, FIRST_API_VERSIONS_VERSION),
    api(ApiKey::CreateTopics, 2, 7),
    // v6 moves names from `topic_names` to `topics` (the builder handles both).
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
];

/// The client's version range for `key`.
pub(crate) fn client_range(key: ApiKey) -> Option<(i16, i16)> {
    CLIENT_APIS
        .iter()
        .find(|a| a.key == key)
        .map(|a| (a.min, a.max))
}

/// The highest version in both ranges, or `None` if they do not meet (or the broker does
/// not serve the API at all).
pub(crate) fn select_version(client: (i16, i16), broker: Option<(i16, i16)>) -> Option<i16> {
    let (broker_min, broker_max) = broker?;
    let version = client.1.min(broker_max);
    (version >= client.0.max(broker_min)).then_some(version)
}

/// A request body this client sends, tied to its API and response type.
pub(crate) trait Call: Request + Into<RequestKind> {
    /// The response body, if `kind` is this API's.
    fn response(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! calls {
    ($($request:ident => $name:ident),* $(,)?) => {$(
        impl Call for $request {
            fn response(kind: ResponseKind) -> Option<Self::Response> {
                match kind {
                    ResponseKind::$name(body) => Some(body),
                    _ => None,
                }
            }
        }
    )*};
}

calls!(
    ProduceRequest => Produce,
    FetchRequest => Fetch,
    ListOffsetsRequest => ListOffsets,
    MetadataRequest => Metadata,
    ApiVersionsRequest => ApiVersions,
    CreateTopicsRequest => CreateTopics,
    DeleteTopicsRequest => DeleteTopics,
    DescribeConfigsRequest => DescribeConfigs,
    CreatePartitionsRequest => CreatePartitions,
    IncrementalAlterConfigsRequest => IncrementalAlterConfigs,
    FindCoordinatorRequest => FindCoordinator,
    ListGroupsRequest => ListGroups,
    DescribeGroupsRequest => DescribeGroups,
    DeleteGroupsRequest => DeleteGroups,
    OffsetCommitRequest => OffsetCommit,
    OffsetFetchRequest => OffsetFetch,
    JoinGroupRequest => JoinGroup,
    SyncGroupRequest => SyncGroup,
    HeartbeatRequest => Heartbeat,
    LeaveGroupRequest => LeaveGroup,
);

/// A connection that has completed the ApiVersions handshake.
#[derive(Debug)]
pub(crate) struct Connection {
    addr: String,
    stream: TcpStream,
    read_buf: BytesMut,
    next_correlation_id: i32,
    /// The broker's version range per API key.
    broker_versions: BTreeMap<i16, (i16, i16)>,
    timeout: Duration,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates versions; `timeout` bounds the
    /// connect and, later, each request.
    pub async fn open(addr: &str, timeout: Duration) -> anyhow::Result<Connection> {
        let stream = connect(addr, timeout).await?;
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            read_buf: BytesMut::new(),
            next_correlation_id: 0,
            broker_versions: BTreeMap::new(),
            timeout,
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    /// The `host:port` this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The version of `key` this connection speaks.
    pub fn version(&self, key: ApiKey) -> anyhow::Result<i16> {
        let Some(client) = client_range(key) else {
            bail!("internal error: the CLI has no version range for {key:?}");
        };
        let broker = self.broker_versions.get(&(key as i16)).copied();
        select_version(client, broker).ok_or_else(|| {
            let offered = match broker {
                Some((min, max)) => format!("it serves v{min} to v{max}"),
                None => "it does not serve it".to_string(),
            };
            anyhow!(
                "broker {} cannot speak {key:?} v{} to v{}: {offered}",
                self.addr,
                client.0,
                client.1
            )
        })
    }

    /// Sends the request `build` makes for the negotiated version and returns the response.
    pub async fn call<R: Call>(
        &mut self,
        build: impl FnOnce(i16) -> R,
    ) -> anyhow::Result<R::Response> {
        self.call_waiting(Duration::ZERO, build).await
    }

    /// Like [`Connection::call`], for requests the broker may hold for up to `wait`
    /// (a long-polling Fetch): the time limit is `--timeout-ms` plus `wait`.
    pub async fn call_waiting<R: Call>(
        &mut self,
        wait: Duration,
        build: impl FnOnce(i16) -> R,
    ) -> anyhow::Result<R::Response> {
        let key = api_key::<R>()?;
        let version = self.version(key)?;
        let kind = self
            .round_trip(key, version, build(version).into(), wait)
            .await?;
        R::response(kind).ok_or_else(|| {
            anyhow!(
                "broker {} answered {key:?} with another API's response",
                self.addr
            )
        })
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_only<R: Call>(&mut self, build: impl FnOnce(i16) -> R) -> anyhow::Result<()> {
        let key = api_key::<R>()?;
        let version = self.version(key)?;
        let frame = self.encode(key, version, &build(version).into())?;
        let write = self.stream.write_all(&frame);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(result) => result.map_err(|e| self.io_error(key, &e)),
            Err(_) => Err(self.timed_out(key)),
        }
    }

    async fn negotiate(&mut self) -> anyhow::Result<()> {
        let mut version = FIRST_API_VERSIONS_VERSION;
        loop {
            let request = api_versions_request(version);
            let kind = self
                .round_trip(ApiKey::ApiVersions, version, request.into(), Duration::ZERO)
                .await?;
            let Some(response) = ApiVersionsRequest::response(kind) else {
                bail!(
                    "broker {} answered ApiVersions with another API's response",
                    self.addr
                );
            };
            if response.error_code == ErrorCode::UnsupportedVersion.code() && version > 0 {
                version = api_versions_fallback(&response, version);
                continue;
            }
            KafkaError::check(response.error_code, None)
                .with_context(|| format!("ApiVersions to {} failed", self.addr))?;
            self.broker_versions = response
                .api_keys
                .iter()
                .map(|a| (a.api_key, (a.min_version, a.max_version)))
                .collect();
            return Ok(());
        }
    }

    fn encode(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &RequestKind,
    ) -> anyhow::Result<BytesMut> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        encode_request(key, version, correlation_id, Some(CLIENT_ID), body)
            .map_err(|e| anyhow!("cannot encode {key:?} v{version}: {e}"))
    }

    async fn round_trip(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
        wait: Duration,
    ) -> anyhow::Result<ResponseKind> {
        let correlation_id = self.next_correlation_id;
        let frame = self.encode(key, version, &body)?;
        let limit = self.timeout + wait;
        let (stream, read_buf) = (&mut self.stream, &mut self.read_buf);
        let exchange = async {
            stream.write_all(&frame).await?;
            read_frame(stream, read_buf).await
        };
        let frame = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => return Err(self.io_error(key, &e)),
            Err(_) => return Err(self.timed_out(key)),
        };
        // Every response header starts with the correlation id: checked before decoding, so
        // an answer to another request is named as such, not as a malformed `key` answer.
        let got = frame
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if got != Some(correlation_id) {
            bail!(
                "broker {} answered {key:?} with correlation id {}, expected {correlation_id}",
                self.addr,
                got.map_or_else(|| "(none: an empty frame)".to_string(), |c| c.to_string())
            );
        }
        let (_, kind) = decode_response(frame, key, version)
            .map_err(|e| anyhow!("bad {key:?} response from {}: {e}", self.addr))?;
        Ok(kind)
    }

    fn io_error(&self, key: ApiKey, e: &std::io::Error) -> anyhow::Error {
        // A frame size that is really "HTTP" or a TLS record: something else listens there.
        let hint = match e.kind() {
            std::io::ErrorKind::InvalidData => " (is this a Kafka listener?)",
            _ => "",
        };
        anyhow!(
            "{key:?} request to {} failed: {}{hint}",
            self.addr,
            describe_io(e)
        )
    }

    fn timed_out(&self, key: ApiKey) -> anyhow::Error {
        anyhow!(
            "{key:?} request to {} timed out after {} ms",
            self.addr,
            self.timeout.as_millis()
        )
    }
}

/// ApiVersions at `version`; v3+ names the client software (KIP-511).
pub(crate) fn api_versions_request(version: i16) -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = StrBytes::from_static_str("cairn");
        request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    }
    request
}

fn api_key<R: Request>() -> anyhow::Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|()| anyhow!("internal error: unknown api key {}", R::KEY))
}

/// The ApiVersions version to try after `tried` was refused: the highest the broker listed
/// below `tried`, else 0.
fn api_versions_fallback(response: &ApiVersionsResponse, tried: i16) -> i16 {
    response
        .api_keys
        .iter()
        .find(|a| a.api_key == ApiKey::ApiVersions as i16)
        .map(|a| a.max_version.min(tried - 1))
        .unwrap_or(0)
        .max(0)
}

/// Reads one whole response frame (without its size prefix).
async fn read_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<bytes::Bytes> {
    loop {
        match decode_frame(buf, MAX_RESPONSE_FRAME_BYTES) {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        buf.reserve(READ_CHUNK_BYTES);
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// TCP connect with the command's time limit; errors read "cannot connect to ADDR: why".
async fn connect(addr: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !port_ok {
        bail!("invalid broker address {addr:?}: expected HOST:PORT, e.g. 127.0.0.1:9092");
    }
    let attempt = async {
        let addrs = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| anyhow!("cannot resolve {addr}: {}", describe_io(&e)))?;
        let mut last = None;
        for socket_addr in addrs {
            match TcpStream::connect(socket_addr).await {
                Ok(stream) => {
                    // Requests are small and answered one at a time: don't let Nagle hold them.
                    stream.set_nodelay(true).ok();
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => anyhow!(
                "cannot connect to {addr}: connection refused (is `cairn serve` running there? \
                 name another broker with --bootstrap-server or CAIRN_BOOTSTRAP)"
            ),
            Some(e) => anyhow!("cannot connect to {addr}: {}", describe_io(&e)),
            None => anyhow!("cannot resolve {addr}: no addresses"),
        })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => bail!(
            "cannot connect to {addr}: timed out after {} ms",
            timeout.as_millis()
        ),
    }
}

/// An I/O error as a short lower-case phrase ("connection refused"), without the
/// "(os error 111)" suffix.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_string(),
        ErrorKind::ConnectionReset => "connection reset by the broker".to_string(),
        ErrorKind::UnexpectedEof => "connection closed by the broker".to_string(),
        ErrorKind::BrokenPipe => "connection closed by the broker".to_string(),
        ErrorKind::TimedOut => "timed out".to_string(),
        _ => {
            let text = e.to_string();
            let text = match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests;
