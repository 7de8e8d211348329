"""The Kafka wire protocol by hand, for requests no well-behaved client sends.

Only what the malformed-input tests need: request headers v1/v2, ApiVersions, Metadata v0/v1,
Produce v3 with a v2 record batch, and the matching response parsers (Metadata v1 and v12);
and for the cluster tests Produce v10 with its KIP-951 leader hints. test_malformed.py
checks these encoders against kafka-python's byte for byte.
"""

from __future__ import annotations

import socket
import struct
import time

from crc32c import crc32c

API_PRODUCE = 0
API_METADATA = 3
API_VERSIONS = 18

ERROR_NONE = 0
ERROR_CORRUPT_MESSAGE = 2
ERROR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERROR_MESSAGE_TOO_LARGE = 10
ERROR_UNSUPPORTED_VERSION = 35

CLIENT_ID = "cairn-e2e"


# --- primitives ---------------------------------------------------------------------------

def string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(value: int) -> bytes:
    """Zig-zag signed varint (record fields)."""
    return uvarint((value << 1) ^ (value >> 63))


def compact_string(value: str) -> bytes:
    data = value.encode()
    return uvarint(len(data) + 1) + data


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def header_v1(api_key: int, version: int, correlation_id: int,
              client_id: str | None = CLIENT_ID) -> bytes:
    return struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)


def header_v2(api_key: int, version: int, correlation_id: int,
              client_id: str | None = CLIENT_ID) -> bytes:
    """Flexible request header: v1 plus an empty tagged-field section."""
    return header_v1(api_key, version, correlation_id, client_id) + b"\x00"


# --- requests -----------------------------------------------------------------------------

def api_versions_request(version: int, correlation_id: int) -> bytes:
    """A framed ApiVersions request. v3+ is flexible and names the client software."""
    if version >= 3:
        body = compact_string("cairn-e2e") + compact_string("1.0") + b"\x00"
        return frame(header_v2(API_VERSIONS, version, correlation_id) + body)
    return frame(header_v1(API_VERSIONS, version, correlation_id))


def metadata_request(version: int, correlation_id: int, topics: list[str] | None = None) -> bytes:
    """A framed Metadata request in the v0 body layout (a non-null topic array)."""
    topics = topics or []
    body = struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
    return frame(header_v1(API_METADATA, version, correlation_id) + body)


def record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    body = bytearray(b"\x00")  # attributes
    body += varint(timestamp_delta) + varint(offset_delta)
    for field in (key, value):
        if field is None:
            body += varint(-1)
        else:
            body += varint(len(field)) + field
    body += varint(0)  # no headers
    return varint(len(body)) + bytes(body)


def record_batch(records: list[tuple[bytes | None, bytes | None]], base_timestamp: int,
                 corrupt_crc: bool = False) -> bytes:
    """An uncompressed v2 record batch (no producer id) with a correct CRC-32C, or with its
    CRC off by one when `corrupt_crc`."""
    encoded = b"".join(record(i, 0, k, v) for i, (k, v) in enumerate(records))
    after_crc = struct.pack(
        ">hiqqqhii",
        0,                    # attributes: no compression, create time
        len(records) - 1,     # lastOffsetDelta
        base_timestamp,       # baseTimestamp
        base_timestamp,       # maxTimestamp
        -1,                   # producerId
        -1,                   # producerEpoch
        -1,                   # baseSequence
        len(records),
    ) + encoded
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc = (crc + 1) & 0xFFFFFFFF
    after_length = struct.pack(">ibI", 0, 2, crc) + after_crc  # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce_request_v3(correlation_id: int, topic: str, partition: int, batch: bytes,
                       acks: int = -1, timeout_ms: int = 10_000) -> bytes:
    body = (
        string(None)                                 # transactional_id
        + struct.pack(">hi", acks, timeout_ms)
        + struct.pack(">i", 1) + string(topic)
        + struct.pack(">i", 1) + struct.pack(">i", partition)
        + struct.pack(">i", len(batch)) + batch
    )
    return frame(header_v1(API_PRODUCE, 3, correlation_id) + body)


# --- responses ----------------------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"response truncated at {self.pos} reading {fmt}: {self.data!r}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return value

    def uvarint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(">B")
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def compact_string(self) -> str | None:
        length = self.uvarint() - 1
        if length < 0:
            return None
        value = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return value

    def compact_array(self, item) -> list | None:
        count = self.uvarint() - 1
        return None if count < 0 else [item() for _ in range(count)]

    def tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.pos += self.uvarint()

    def done(self) -> bool:
        return self.pos == len(self.data)


def parse_api_versions_v0(payload: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """(correlation id, error code, {api key: (min, max)}) from an ApiVersions response in the
    v0 body layout (also what a v0–v2 or an error-35 response starts with)."""
    reader = Reader(payload)
    correlation_id, error = reader.take(">ih")
    count = reader.take(">i")
    apis = {}
    for _ in range(count):
        key, low, high = reader.take(">hhh")
        apis[key] = (low, high)
    return correlation_id, error, apis


def parse_produce_v3(payload: bytes) -> tuple[int, list[tuple[str, int, int, int]]]:
    """(correlation id, [(topic, partition, error code, base offset)])."""
    reader = Reader(payload)
    correlation_id = reader.take(">i")
    results = []
    for _ in range(reader.take(">i")):
        topic = reader.string()
        for _ in range(reader.take(">i")):
            partition, error, base_offset, _log_append_time = reader.take(">ihqq")
            results.append((topic, partition, error, base_offset))
    reader.take(">i")  # throttle_time_ms
    return correlation_id, results


def parse_metadata_v1(payload: bytes) -> tuple[int, list[tuple[int, str, int]], dict[str, tuple[int, list[tuple[int, int, int]]]]]:
    """(correlation id, [(node id, host, port)], {topic: (error code, [(partition, error
    code, leader)])}) from a Metadata v1 response."""
    reader = Reader(payload)
    correlation_id = reader.take(">i")
    brokers = []
    for _ in range(reader.take(">i")):
        node_id = reader.take(">i")
        host = reader.string()
        port = reader.take(">i")
        reader.string()  # rack
        brokers.append((node_id, host, port))
    reader.take(">i")  # controller id
    topics = {}
    for _ in range(reader.take(">i")):
        error = reader.take(">h")
        name = reader.string()
        reader.take(">b")  # is_internal
        partitions = []
        for _ in range(reader.take(">i")):
            p_error, index, leader = reader.take(">hii")
            for _ in range(2):  # replicas, isr
                for _ in range(reader.take(">i")):
                    reader.take(">i")
            partitions.append((index, p_error, leader))
        topics[name] = (error, partitions)
    assert reader.done(), f"{len(payload) - reader.pos} bytes after the Metadata v1 body"
    return correlation_id, brokers, topics


def parse_metadata_v12(payload: bytes) -> tuple[int, list[tuple[int, str, int]], dict[str, tuple[int, list[tuple[int, int, int]]]]]:
    """As parse_metadata_v1, from a Metadata v12 response (flexible: response header v1,
    compact arrays and strings, topic ids, tagged fields)."""
    reader = Reader(payload)
    correlation_id = reader.take(">i")
    reader.tagged_fields()  # response header
    reader.take(">i")  # throttle_time_ms

    def broker():
        node_id = reader.take(">i")
        host = reader.compact_string()
        port = reader.take(">i")
        reader.compact_string()  # rack
        reader.tagged_fields()
        return node_id, host, port

    def int32():
        return reader.take(">i")

    def partition():
        p_error, index, leader, _leader_epoch = reader.take(">hiii")
        for _ in range(3):  # replicas, isr, offline replicas
            reader.compact_array(int32)
        reader.tagged_fields()
        return index, p_error, leader

    def topic():
        error = reader.take(">h")
        name = reader.compact_string()
        reader.take(">16s")  # topic id
        reader.take(">b")  # is_internal
        partitions = reader.compact_array(partition)
        reader.take(">i")  # topic_authorized_operations
        reader.tagged_fields()
        return name, (error, partitions)

    brokers = reader.compact_array(broker)
    reader.compact_string()  # cluster id
    reader.take(">i")  # controller id
    topics = dict(reader.compact_array(topic))
    reader.tagged_fields()
    assert reader.done(), f"{len(payload) - reader.pos} bytes after the Metadata v12 body"
    return correlation_id, brokers, topics


# --- sockets ------------------------------------------------------------------------------

class Closed(Exception):
    """The broker closed (or reset) the connection."""


def produce_request_v10(correlation_id: int, topic: str, partition: int, batch: bytes,
                        acks: int = -1, timeout_ms: int = 10_000) -> bytes:
    """A framed flexible Produce v10 request (compact fields, empty tagged sections)."""
    body = (
        b"\x00"                                      # transactional_id: null
        + struct.pack(">hi", acks, timeout_ms)
        + uvarint(2) + compact_string(topic)         # one topic
        + uvarint(2) + struct.pack(">i", partition)  # one partition
        + uvarint(len(batch) + 1) + batch + b"\x00"  # records, partition tags
        + b"\x00"                                    # topic tags
        + b"\x00"                                    # request tags
    )
    return frame(header_v2(API_PRODUCE, 10, correlation_id) + body)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str | None:
        size = self.uvarint() - 1
        if size < 0:
            return None
        text = self.data[self.at:self.at + size].decode()
        self.at += size
        return text

    def tags(self) -> dict[int, bytes]:
        out = {}
        for _ in range(self.uvarint()):
            tag, size = self.uvarint(), self.uvarint()
            out[tag] = self.data[self.at:self.at + size]
            self.at += size
        return out


def parse_produce_v10(payload: bytes):
    """(correlation id, [(topic, partition, error code, base offset, current leader id or
    None, its epoch)], {node id: (host, port)} from node_endpoints)."""
    r = _Reader(payload)
    correlation_id = r.take(">i")
    r.tags()
    partitions = []
    for _ in range(r.uvarint() - 1):
        topic = r.compact_string()
        for _ in range(r.uvarint() - 1):
            index, error, base_offset, _, _ = r.take(">ihqqq")
            for _ in range(r.uvarint() - 1):  # record errors
                r.take(">i")
                r.compact_string()
                r.tags()
            r.compact_string()  # error message
            leader, epoch = None, None
            tags = r.tags()
            if 0 in tags:
                inner = _Reader(tags[0])
                leader, epoch = inner.take(">ii")
            partitions.append((topic, index, error, base_offset, leader, epoch))
        r.tags()
    r.take(">i")  # throttle
    endpoints = {}
    tags = r.tags()
    if 0 in tags:
        inner = _Reader(tags[0])
        for _ in range(inner.uvarint() - 1):
            node = inner.take(">i")
            host = inner.compact_string()
            port = inner.take(">i")
            inner.compact_string()  # rack
            inner.tags()
            endpoints[node] = (host, port)
    return correlation_id, partitions, endpoints


def connect(bootstrap: str, timeout: float = 10.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError as exc:
            raise Closed("connection reset") from exc
        if not chunk:
            raise Closed(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    if size < 0 or size > 64 * 1024 * 1024:
        raise ValueError(f"implausible response size {size}")
    return recv_exact(sock, size)


def roundtrip(bootstrap: str, request: bytes) -> bytes:
    with connect(bootstrap) as sock:
        sock.sendall(request)
        return recv_frame(sock)


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the peer closes the connection within `timeout` (any bytes it sends before
    closing are read and dropped). False if it is still open then."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        if not chunk:
            return True


def send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    """Sends what the peer will take; a peer that closes early is what some tests expect."""
    try:
        sock.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass
