"""Old request versions, as old clients send them: kafka-python's admin client pinned to old
broker versions (CreateTopics v0, DeleteTopics v0, DescribeConfigs v0, DescribeLogDirs v0),
and kafka-python's own protocol classes for ListOffsets v0, OffsetCommit v0/v1,
OffsetForLeaderEpoch v0/v1. Produce v0-v2 get UNSUPPORTED_VERSION per partition and Fetch
v0-v3 a closed connection, as from Kafka 4, each with one log line naming the client."""

from __future__ import annotations

import struct
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import UnsupportedVersionError
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


def test_produce_v2_is_refused_per_partition_with_one_log_line(broker):
    name = unique_topic("old-produce")
    create_topic(broker.bootstrap, name)
    # kafka-python believing it talks to Kafka 0.10.1 produces with Produce v2 (message
    # format v1).
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 1),
                         client_id="ancient-producer", retries=0, request_timeout_ms=10_000)
    future = prod.send(name, b"v1 message")
    with pytest.raises(UnsupportedVersionError):
        future.get(timeout=30)
    prod.close()
    line = broker.process.wait_for_line("Produce v2")
    assert "ancient-producer" in line and "UNSUPPORTED_VERSION" in line, line


def test_fetch_v3_closes_the_connection_with_one_log_line(broker):
    name = unique_topic("old-fetch")
    create_topic(broker.bootstrap, name)
    protocol = KafkaProtocol(client_id="ancient-consumer")
    protocol.send_request(FetchRequest[3](
        replica_id=-1, max_wait_time=100, min_bytes=1, max_bytes=1 << 20,
        topics=[(name, [(0, 0, 1 << 20)])]))
    with wire.connect(broker.bootstrap) as sock:
        sock.sendall(protocol.send_bytes())
        assert wire.closed_by_peer(sock), "Kafka 4 closes the connection too"
    line = broker.process.wait_for_line("Fetch v3")
    assert "ancient-consumer" in line and "upgrade" in line, line
    broker.assert_alive()
