"""Hostile and broken input on the Kafka port: every case must cost at most the offending
connection, never the broker, and must not make it hold on to memory.

Requests are built by hand (wire.py); the first test checks those encoders against
kafka-python's, so a failure here is the broker's, not the test's.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest
from confluent_kafka import KafkaError

import wire
from kafkautil import Recorder, create_topic, producer, produce_all, unique_topic

REQUEST_MAX_BYTES_DEFAULT = 104_857_600
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


def assert_serving(broker) -> None:
    """The process is alive and a fresh connection gets a correct ApiVersions v0 answer."""
    broker.assert_alive()
    try:
        payload = wire.roundtrip(broker.bootstrap, wire.api_versions_request(0, 4242))
    except (OSError, wire.Closed) as exc:
        pytest.fail(f"broker no longer answers ApiVersions on a new connection: {exc!r}\n"
                    f"{broker.logs()}")
    correlation_id, error, apis = wire.parse_api_versions_v0(payload)
    assert correlation_id == 4242
    assert error == wire.ERROR_NONE
    assert wire.API_PRODUCE in apis and wire.API_VERSIONS in apis, apis
    broker.assert_alive()


# --- the hand encoders, against kafka-python ------------------------------------------------

def test_hand_encoders_match_kafka_python():
    from kafka.protocol.api_versions import ApiVersionsRequest, ApiVersionsResponse
    from kafka.protocol.metadata import MetadataRequest
    from kafka.protocol.produce import ProduceRequest, ProduceResponse
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

    def kp_frame(request, correlation_id):
        header = request.build_header(correlation_id, wire.CLIENT_ID)  # kept: encode is a weak method
        return wire.frame(header.encode() + request.encode())

    assert wire.api_versions_request(0, 7) == kp_frame(ApiVersionsRequest[0](), 7)
    assert wire.api_versions_request(3, 8) == kp_frame(
        ApiVersionsRequest[3](client_software_name="cairn-e2e", client_software_version="1.0",
                              _tagged_fields={}), 8)
    assert wire.metadata_request(0, 9, ["a", "bc"]) == kp_frame(MetadataRequest[0](topics=["a", "bc"]), 9)

    records = [(b"k0", b"v0"), (None, b"value-1" * 30), (b"k2", None), (b"", b"")]
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20)
    for offset, (key, value) in enumerate(records):
        builder.append(offset, timestamp=1_700_000_000_000, key=key, value=value, headers=[])
    expected_batch = bytes(builder.build())
    batch = wire.record_batch(records, 1_700_000_000_000)
    assert batch == expected_batch
    assert DefaultRecordBatch(batch).validate_crc()
    corrupt = wire.record_batch(records, 1_700_000_000_000, corrupt_crc=True)
    assert not DefaultRecordBatch(corrupt).validate_crc()
    assert len(corrupt) == len(batch)
    assert [(r.key, r.value) for r in DefaultRecordBatch(batch)] == records

    assert wire.produce_request_v3(11, "topic", 3, batch, acks=-1, timeout_ms=5000) == kp_frame(
        ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=5000,
                          topics=[("topic", [(3, batch)])]), 11)

    response = ProduceResponse[3](topics=[("topic", [(3, 2, -1, -1)])], throttle_time_ms=0)
    produce_response = struct.pack(">i", 12) + response.encode()
    assert wire.parse_produce_v3(produce_response) == (12, [("topic", 3, 2, -1)])
    response = ApiVersionsResponse[0](error_code=35, api_versions=[(0, 3, 12), (18, 0, 3)])
    versions_response = struct.pack(">i", 13) + response.encode()
    assert wire.parse_api_versions_v0(versions_response) == (13, 35, {0: (3, 12), 18: (0, 3)})


# --- one case per test; each ends by checking the broker still serves -----------------------

def send_oversized_frame(broker, size: int) -> None:
    with wire.connect(broker.bootstrap) as sock:
        wire.send_ignoring_reset(sock, struct.pack(">i", size) + b"\x00\x12\x00\x00" * 4)
        assert wire.closed_by_peer(sock), f"a {size}-byte frame did not close the connection"


@pytest.mark.parametrize("size", [2**31 - 1, REQUEST_MAX_BYTES_DEFAULT + 1, -1, -(2**31)],
                         ids=["2^31-1", "request.max+1", "minus-1", "min-int"])
def test_oversized_or_negative_frame_closes_the_connection(broker, size):
    send_oversized_frame(broker, size)
    assert_serving(broker)


def test_frame_above_a_configured_socket_request_max_bytes(start_broker):
    broker = start_broker(env={"CAIRN_BROKER_SOCKET_REQUEST_MAX_BYTES": "65536"})
    send_oversized_frame(broker, 65_537)
    # A request just under the limit is still served: the limit is not off by far.
    with wire.connect(broker.bootstrap) as sock:
        request = wire.api_versions_request(0, 5)
        sock.sendall(request)
        assert wire.parse_api_versions_v0(wire.recv_frame(sock))[:2] == (5, 0)
    assert_serving(broker)


def test_corrupt_crc_is_refused_with_corrupt_message(broker):
    topic = unique_topic("crc")
    create_topic(broker.bootstrap, topic, partitions=1)
    records = [(b"key", b"value %d" % i) for i in range(3)]
    now = int(time.time() * 1000)
    with wire.connect(broker.bootstrap) as sock:
        # A correct batch first: proves the request itself is well formed.
        sock.sendall(wire.produce_request_v3(1, topic, 0, wire.record_batch(records, now)))
        correlation_id, results = wire.parse_produce_v3(wire.recv_frame(sock))
        assert correlation_id == 1
        assert [(t, p, e) for t, p, e, _ in results] == [(topic, 0, wire.ERROR_NONE)], results
        good_offset = results[0][3]
        assert good_offset >= 0

        sock.sendall(wire.produce_request_v3(
            2, topic, 0, wire.record_batch(records, now, corrupt_crc=True)))
        correlation_id, results = wire.parse_produce_v3(wire.recv_frame(sock))
        assert correlation_id == 2
        assert [(t, p, e) for t, p, e, _ in results] == [
            (topic, 0, wire.ERROR_CORRUPT_MESSAGE)], results

        # The same connection still works and the log did not take the bad batch.
        sock.sendall(wire.produce_request_v3(3, topic, 0, wire.record_batch(records, now)))
        correlation_id, results = wire.parse_produce_v3(wire.recv_frame(sock))
        assert correlation_id == 3
        assert results[0][2] == wire.ERROR_NONE, results
        assert results[0][3] == good_offset + len(records), (good_offset, results)
    assert_serving(broker)


def test_unknown_api_key_closes_the_connection(broker):
    with wire.connect(broker.bootstrap) as sock:
        wire.send_ignoring_reset(sock, wire.frame(wire.header_v1(999, 0, 1)))
        assert wire.closed_by_peer(sock), "an unknown api key did not close the connection"
    assert_serving(broker)


@pytest.mark.parametrize("version", [99, 4, -1])
def test_unsupported_api_versions_version_gets_error_35_in_v0_format(broker, version):
    with wire.connect(broker.bootstrap) as sock:
        sock.sendall(wire.api_versions_request(version, 77))
        correlation_id, error, apis = wire.parse_api_versions_v0(wire.recv_frame(sock))
    assert correlation_id == 77
    assert error == wire.ERROR_UNSUPPORTED_VERSION
    assert apis, "the error-35 answer must list the supported versions"
    low, high = apis[wire.API_VERSIONS]
    assert low == 0 and 0 <= high < 99
    assert_serving(broker)


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_every_advertised_api_versions_version_answers(broker, version):
    with wire.connect(broker.bootstrap) as sock:
        sock.sendall(wire.api_versions_request(version, 100 + version))
        payload = wire.recv_frame(sock)
    # Every version's response starts with the v0 layout (v3's array is compact, so only the
    # correlation id and error code are read here for v3).
    if version < 3:
        correlation_id, error, apis = wire.parse_api_versions_v0(payload)
        assert apis[wire.API_VERSIONS][1] >= 3
    else:
        correlation_id, error = struct.unpack_from(">ih", payload)
    assert (correlation_id, error) == (100 + version, wire.ERROR_NONE)


def test_unsupported_metadata_version_is_refused(broker):
    """An unsupported version of any API but ApiVersions closes the connection without an
    answer (the broker's documented behaviour, crates/broker/src/server.rs: there is no body
    to answer in for a version it does not know), logs why, and the broker serves on."""
    with wire.connect(broker.bootstrap) as sock:
        wire.send_ignoring_reset(sock, wire.metadata_request(99, 31))
        sock.settimeout(10)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("Metadata v99: the connection was still open after 10 s; "
                        f"received {received!r}")
    assert received == b"", f"Metadata v99 was answered: {received!r}"
    line = broker.process.wait_for_line(
        "Metadata v99 from client.id", timeout=10)
    assert "closing connection" in line, line
    assert "not served" in line and "correlation id 31" in line, line
    assert_serving(broker)


def test_truncated_frame_then_close(broker):
    with wire.connect(broker.bootstrap) as sock:
        sock.sendall(struct.pack(">i", 100) + b"\x00" * 10)
    assert_serving(broker)


def test_truncated_frame_left_hanging(broker):
    with wire.connect(broker.bootstrap) as hanging:
        hanging.sendall(struct.pack(">i", 100) + wire.header_v1(wire.API_VERSIONS, 0, 1)[:6])
        time.sleep(1.0)
        # Another client is served while the first one dawdles mid-frame.
        assert_serving(broker)
        time.sleep(1.0)
        assert_serving(broker)


@pytest.mark.parametrize("seed", range(6))
def test_random_garbage(broker, seed):
    rng = random.Random(seed)
    for _ in range(5):
        size = rng.choice([1, 3, 4, 17, 512, 4096, 65536])
        with wire.connect(broker.bootstrap) as sock:
            wire.send_ignoring_reset(sock, rng.randbytes(size))
            # Whatever the broker makes of it, it may answer or close; give it a moment.
            wire.closed_by_peer(sock, timeout=0.2)
    # A plausible frame length followed by garbage, which gets past framing into parsing.
    for _ in range(5):
        body = rng.randbytes(rng.randint(8, 2000))
        with wire.connect(broker.bootstrap) as sock:
            wire.send_ignoring_reset(sock, wire.frame(body))
            wire.closed_by_peer(sock, timeout=0.2)
    assert_serving(broker)


def test_garbage_after_a_valid_request_on_the_same_connection(broker):
    with wire.connect(broker.bootstrap) as sock:
        sock.sendall(wire.api_versions_request(0, 1))
        assert wire.parse_api_versions_v0(wire.recv_frame(sock))[:2] == (1, 0)
        wire.send_ignoring_reset(sock, wire.frame(b"\xff" * 64))
        wire.closed_by_peer(sock, timeout=1.0)
    assert_serving(broker)


def test_message_larger_than_max_message_bytes(start_broker):
    broker = start_broker(env={"CAIRN_LOG_MAX_MESSAGE_BYTES": "10000"})
    topic = unique_topic("too-large")
    create_topic(broker.bootstrap, topic, partitions=1)

    # librdkafka: the broker's answer becomes the delivery error.
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"message.max.bytes": 1_000_000, "compression.type": "none",
                                         "linger.ms": 0, "retries": 0})
    produce_all(prod, topic, [(b"big", b"x" * 20_000)], recorder)
    assert len(recorder.reports) == 1
    error = recorder.reports[0].error
    assert error is not None, "a 20 KB record was accepted by a broker with max.message.bytes=10000"
    assert error.code() == KafkaError.MSG_SIZE_TOO_LARGE, error

    # A record that fits still goes through.
    recorder = Recorder()
    produce_all(prod, topic, [(b"small", b"y" * 5_000)], recorder)
    recorder.assert_all_delivered(1)

    # By hand: error 10 for that partition.
    with wire.connect(broker.bootstrap) as sock:
        batch = wire.record_batch([(b"big", b"z" * 20_000)], int(time.time() * 1000))
        sock.sendall(wire.produce_request_v3(1, topic, 0, batch))
        correlation_id, results = wire.parse_produce_v3(wire.recv_frame(sock))
    assert correlation_id == 1
    assert [(t, p, e) for t, p, e, _ in results] == [(topic, 0, wire.ERROR_MESSAGE_TOO_LARGE)]
    assert_serving(broker)


# --- everything at once, measuring memory ----------------------------------------------------

@pytest.mark.timeout(300)
def test_malformed_battery_does_not_grow_memory(broker):
    topic = unique_topic("battery")
    create_topic(broker.bootstrap, topic, partitions=1)
    assert_serving(broker)
    before = broker.rss_bytes()

    for round_number in range(3):
        for size in (2**31 - 1, REQUEST_MAX_BYTES_DEFAULT + 1, -1):
            send_oversized_frame(broker, size)
        for version in (99, 4):
            with wire.connect(broker.bootstrap) as sock:
                sock.sendall(wire.api_versions_request(version, 1))
                assert wire.parse_api_versions_v0(wire.recv_frame(sock))[1] == 35
        with wire.connect(broker.bootstrap) as sock:
            wire.send_ignoring_reset(sock, wire.frame(wire.header_v1(999, 0, 1)))
            wire.closed_by_peer(sock)
        with wire.connect(broker.bootstrap) as sock:
            wire.send_ignoring_reset(sock, wire.metadata_request(99, 2))
            wire.closed_by_peer(sock, timeout=1.0)
        records = [(b"k", b"v" * 100)] * 10
        with wire.connect(broker.bootstrap) as sock:
            for n in range(20):
                batch = wire.record_batch(records, int(time.time() * 1000), corrupt_crc=True)
                sock.sendall(wire.produce_request_v3(n, topic, 0, batch))
                assert wire.parse_produce_v3(wire.recv_frame(sock))[1][0][2] == 2
        # Many half-sent frames left open at once, then dropped.
        hanging = []
        for _ in range(20):
            sock = wire.connect(broker.bootstrap)
            sock.sendall(struct.pack(">i", 100_000) + b"\x00" * 1000)
            hanging.append(sock)
        assert_serving(broker)
        for sock in hanging:
            sock.close()
        rng = random.Random(round_number)
        for _ in range(30):
            with wire.connect(broker.bootstrap) as sock:
                wire.send_ignoring_reset(sock, rng.randbytes(rng.choice([7, 300, 5000])))
                wire.closed_by_peer(sock, timeout=0.05)
        assert_serving(broker)

    # Give the broker a moment to drop the closed connections' buffers.
    time.sleep(1.0)
    after = broker.rss_bytes()
    assert after - before < RSS_GROWTH_LIMIT, (
        f"broker RSS grew from {before >> 20} MiB to {after >> 20} MiB over the battery"
    )
    assert_serving(broker)
