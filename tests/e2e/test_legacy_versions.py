"""Old request versions, as old clients send them: kafka-python's admin client pinned to old
broker versions (CreateTopics v0, DeleteTopics v0, DescribeConfigs v0, DescribeLogDirs v0),
and kafka-python's own protocol classes for ListOffsets v0, OffsetCommit v0/v1,
OffsetForLeaderEpoch v0/v1; and the message sets (formats 0 and 1) of Produce v0-v2 and
Fetch v0-v3, which Kafka 4 refuses and Cairn converts, because the Go client Debian ships
(kafka-go 0.2.1) speaks nothing newer."""

from __future__ import annotations

import struct
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest
from kafka.protocol.fetch import FetchRequest
from kafka.protocol.list_offsets import ListOffsetsRequest
from kafka.protocol.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from kafka.protocol.parser import KafkaProtocol
from kafka.structs import OffsetAndMetadata

import wire
from kafkautil import Recorder, create_topic, produce_all, producer, unique_topic

CLIENT_ID = "legacy-e2e"
UNSUPPORTED_VERSION = 35


def call(bootstrap: str, request):
    """Sends one request built from kafka-python's protocol classes and returns its parsed
    response (kafka-python encodes and decodes the exact version)."""
    protocol = KafkaProtocol(client_id=CLIENT_ID)
    protocol.send_request(request)
    with wire.connect(bootstrap) as sock:
        sock.sendall(protocol.send_bytes())
        payload = wire.recv_frame(sock)
    ((_, response),) = protocol.receive_bytes(struct.pack(">i", len(payload)) + payload)
    return response


def old_admin(broker, version) -> KafkaAdminClient:
    """kafka-python's admin client believing the broker is `version`: it picks that broker's
    request versions instead of negotiating."""
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=version,
                            client_id=CLIENT_ID, request_timeout_ms=30_000)


def test_admin_at_old_versions(broker):
    # Kafka 0.10.1: CreateTopics v0 and DeleteTopics v0.
    client = old_admin(broker, (0, 10, 1))
    name = unique_topic("v0")
    client.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    metadata = client.describe_topics([name])
    assert len(metadata[0]["partitions"]) == 2
    client.delete_topics([name])
    client.close()

    # Kafka 0.11: DescribeConfigs v0 (is_default in place of a source).
    client = old_admin(broker, (0, 11))
    kept = unique_topic("configs")
    create_topic(broker.bootstrap, kept, config={"retention.ms": "3600000"})
    (response,) = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, kept)])
    assert response.API_VERSION == 0
    ((error, _message, _type, resource, configs),) = response.resources
    assert (error, resource) == (0, kept)
    by_name = {c[0]: c for c in configs}  # name, value, read_only, is_default, is_sensitive
    assert by_name["retention.ms"][1:4] == ("3600000", False, False)
    assert by_name["segment.bytes"][1:4] == ("1073741824", False, True)
    client.close()


def test_describe_log_dirs_v0_sizes_grow(broker):
    name = unique_topic("sizes")
    create_topic(broker.bootstrap, name, partitions=2)
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id=CLIENT_ID)

    def sizes():
        response = client.describe_log_dirs()
        assert response.API_VERSION == 0
        ((error, log_dir, topics),) = response.log_dirs
        assert error == 0 and log_dir.startswith("/")
        return {(topic, partition): size for topic, partitions in topics if topic == name
                for partition, size, lag, future in partitions}

    before = sizes()
    assert set(before) == {(name, 0), (name, 1)}
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), name,
                [(b"k", b"x" * 1000) for _ in range(100)], recorder, partition=0)
    recorder.assert_all_delivered(100)
    after = sizes()
    assert after[(name, 0)] >= before[(name, 0)] + 100 * 1000, (before, after)
    assert after[(name, 1)] == before[(name, 1)]
    client.close()


def test_list_offsets_v0(broker):
    name = unique_topic("offsets-v0")
    create_topic(broker.bootstrap, name)
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), name, [(None, b"v%d" % i) for i in range(5)],
                recorder)
    recorder.assert_all_delivered(5)
    # (partition, timestamp, max_num_offsets): latest, earliest, latest with no room, and -3
    # (max timestamp), which v0 does not know.
    request = ListOffsetsRequest[0](replica_id=-1, topics=[
        (name, [(0, -1, 1), (0, -2, 1), (0, -1, 0), (0, -3, 1)])])
    ((topic, answers),) = call(broker.bootstrap, request).topics
    assert topic == name
    (latest, earliest, none, unknown) = [(error, offsets) for _, error, offsets in answers]
    assert latest[0] == 0 and len(latest[1]) == 1
    assert earliest[0] == 0 and len(earliest[1]) == 1
    assert latest[1][0] - earliest[1][0] >= 5
    assert none == (0, [])
    assert unknown == (UNSUPPORTED_VERSION, [])


def test_offset_commit_v0_and_v1(broker):
    name = unique_topic("commit-v0")
    create_topic(broker.bootstrap, name, partitions=2)
    group = unique_topic("old-group")
    response = call(broker.bootstrap, OffsetCommitRequest[0](
        consumer_group=group, topics=[(name, [(0, 3, "v0")])]))
    assert response.topics == [(name, [(0, 0)])]
    response = call(broker.bootstrap, OffsetCommitRequest[1](
        consumer_group=group, consumer_group_generation_id=-1, consumer_id="",
        topics=[(name, [(1, 7, int(time.time() * 1000), "v1")])]))
    assert response.topics == [(name, [(1, 0)])]
    fetched = call(broker.bootstrap, OffsetFetchRequest[1](
        consumer_group=group, topics=[(name, [0, 1])]))
    ((topic, partitions),) = fetched.topics
    assert topic == name
    assert sorted((p, offset, metadata, error) for p, offset, metadata, error in partitions) == [
        (0, 3, "v0", 0), (1, 7, "v1", 0)]


def test_kafka_python_commits_with_offset_commit_v1_through_its_own_api(broker):
    # Believing the broker is Kafka 0.8.2, kafka-python commits and fetches offsets with
    # OffsetCommit v1 / OffsetFetch v1 (its table for that version), without joining a group.
    name = unique_topic("commit-v1")
    create_topic(broker.bootstrap, name)
    group = unique_topic("kp-082")
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                             api_version=(0, 8, 2), enable_auto_commit=False,
                             client_id=CLIENT_ID)
    try:
        partition = TopicPartition(name, 0)
        consumer.assign([partition])
        consumer.commit({partition: OffsetAndMetadata(5, "kp", -1)})
        assert consumer.committed(partition) == 5
    finally:
        consumer.close()


def test_offset_for_leader_epoch_v0_and_v1(broker):
    name = unique_topic("epochs")
    create_topic(broker.bootstrap, name)
    for version in (0, 1):
        response = call(broker.bootstrap, OffsetForLeaderEpochRequest[version](
            topics=[(name, [(0, 1_000_000)])]))
        ((topic, (answer,)),) = response.topics
        assert topic == name
        assert answer[0] == 0, answer  # error code
        assert answer[-1] >= 0, answer  # end offset
        if version == 1:
            assert answer[2] >= 0, "v1 answers the epoch"
        else:
            assert len(answer) == 3, "v0 answers no epoch"


@pytest.mark.parametrize("api_version,codec", [
    ((0, 9), None), ((0, 9), "gzip"), ((0, 9), "snappy"),
    ((0, 10, 1), None), ((0, 10, 1), "gzip"), ((0, 10, 1), "snappy"), ((0, 10, 1), "lz4"),
])
def test_message_sets_of_old_clients_round_trip(broker, api_version, codec):
    """kafka-python believing it talks to Kafka 0.9 (Produce v1 / Fetch v1, message format
    0) or 0.10.1 (Produce v2 / Fetch v3, format 1), with each codec it has for that format:
    its message sets are stored as v2 batches and come back down-converted, keys, values and
    (format 1) timestamps intact, offsets dense."""
    name = unique_topic("old-format")
    create_topic(broker.bootstrap, name)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                         compression_type=codec, client_id="old-producer", linger_ms=20)
    sent_at = int(time.time() * 1000)
    futures = [prod.send(name, key=f"k{i}".encode(), value=f"value-{i}".encode() * 3,
                         partition=0)
               for i in range(50)]
    prod.flush(30)
    offsets = [f.get(timeout=30).offset for f in futures]
    prod.close()
    assert offsets == list(range(50))
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                         client_id="old-consumer", enable_auto_commit=False,
                         consumer_timeout_ms=10_000)
    tp = TopicPartition(name, 0)
    cons.assign([tp])
    cons.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 50 and time.monotonic() < deadline:
        for records in cons.poll(timeout_ms=1000).values():
            got.extend(records)
    cons.close()
    assert [r.offset for r in got] == list(range(50))
    assert [(r.key, r.value) for r in got] == [
        (f"k{i}".encode(), f"value-{i}".encode() * 3) for i in range(50)]
    if api_version >= (0, 10):
        assert all(r.timestamp >= sent_at - 1000 for r in got), "format 1 keeps timestamps"


def test_a_corrupt_old_message_is_refused_and_the_broker_serves_on(broker):
    name = unique_topic("old-corrupt")
    create_topic(broker.bootstrap, name)
    # Produce v2 with one format-1 message whose CRC is wrong: CORRUPT_MESSAGE (2).
    body = struct.pack(">bbq", 1, 0, int(time.time() * 1000)) + struct.pack(">i", -1)
    body += struct.pack(">i", 5) + b"hello"
    message = struct.pack(">I", 12345) + body
    message_set = struct.pack(">qi", 0, len(message)) + message
    request = (
        struct.pack(">hi", -1, 10_000)
        + struct.pack(">i", 1) + wire.string(name)
        + struct.pack(">i", 1) + struct.pack(">i", 0)
        + struct.pack(">i", len(message_set)) + message_set
    )
    frame = wire.frame(wire.header_v1(0, 2, 7, client_id="bad-old") + request)
    answer = wire.roundtrip(broker.bootstrap, frame)
    correlation_id, topics_count = struct.unpack_from(">ii", answer)
    assert correlation_id == 7 and topics_count == 1
    # topic name, partition count, partition, error code
    at = 8 + 2 + len(name) + 4
    partition, error = struct.unpack_from(">ih", answer, at)
    assert (partition, error) == (0, 2), answer
    broker.assert_alive()
