"""Topic administration through librdkafka's AdminClient: create, list, describe and alter
configs, add partitions, delete — and all of it as it was after a restart."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from kafkautil import (
    ADMIN_TIMEOUT_S,
    Recorder,
    admin,
    create_topic,
    produce_all,
    producer,
    read_partitions,
    unique_topic,
    wait_for_partitions,
)

DEFAULT_RETENTION_MS = "604800000"
DEFAULT_SEGMENT_MS = "604800000"


def create(client, *topics: NewTopic, validate_only: bool = False) -> dict:
    futures = client.create_topics(list(topics), operation_timeout=ADMIN_TIMEOUT_S,
                                   request_timeout=ADMIN_TIMEOUT_S, validate_only=validate_only)
    return {name: future.exception(timeout=ADMIN_TIMEOUT_S) for name, future in futures.items()}


def topic_configs(client, name: str) -> dict[str, str | None]:
    resource = ConfigResource(ResourceType.TOPIC, name)
    futures = client.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    entries = futures[resource].result(timeout=ADMIN_TIMEOUT_S)
    return {key: entry.value for key, entry in entries.items()}


def partition_counts(client, *names: str) -> dict[str, int]:
    metadata = client.list_topics(timeout=10)
    return {name: len(metadata.topics[name].partitions) for name in names
            if name in metadata.topics and metadata.topics[name].error is None}


def error_code(exc) -> int:
    assert isinstance(exc, KafkaException), f"expected a KafkaException, got {exc!r}"
    return exc.args[0].code()


def test_create_list_describe_alter_grow_delete_and_restart(broker):
    client = admin(broker.bootstrap)
    three, six = unique_topic("three"), unique_topic("six")
    results = create(
        client,
        NewTopic(three, num_partitions=3, replication_factor=1,
                 config={"retention.ms": "3600000", "segment.bytes": "1048576"}),
        NewTopic(six, num_partitions=6, replication_factor=1),
    )
    assert results == {three: None, six: None}
    wait_for_partitions(client, three, 3)
    wait_for_partitions(client, six, 6)
    assert partition_counts(client, three, six) == {three: 3, six: 6}

    metadata = client.list_topics(timeout=10)
    assert len(metadata.brokers) == 1
    (node,) = metadata.brokers.values()
    assert f"{node.host}:{node.port}" == broker.bootstrap
    for partition in metadata.topics[six].partitions.values():
        assert partition.leader == node.id
        assert partition.replicas == [node.id]
        assert partition.isrs == [node.id]

    configs = topic_configs(client, three)
    assert configs["retention.ms"] == "3600000"
    assert configs["segment.bytes"] == "1048576"
    assert topic_configs(client, six)["retention.ms"] == DEFAULT_RETENTION_MS

    # Incremental alter: set one key, delete (revert) another.
    resource = ConfigResource(ResourceType.TOPIC, three, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
    ])
    client.incremental_alter_configs([resource])[resource].result(timeout=ADMIN_TIMEOUT_S)
    configs = topic_configs(client, three)
    assert configs["retention.ms"] == "7200000"
    assert configs["segment.ms"] == "3600000"
    assert configs["segment.bytes"] == "1048576"  # untouched keys stay
    resource = ConfigResource(ResourceType.TOPIC, three, incremental_configs=[
        ConfigEntry("segment.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    client.incremental_alter_configs([resource])[resource].result(timeout=ADMIN_TIMEOUT_S)
    assert topic_configs(client, three)["segment.ms"] == DEFAULT_SEGMENT_MS

    # More partitions.
    futures = client.create_partitions([NewPartitions(three, 5)], operation_timeout=ADMIN_TIMEOUT_S,
                                       request_timeout=ADMIN_TIMEOUT_S)
    futures[three].result(timeout=ADMIN_TIMEOUT_S)
    wait_for_partitions(client, three, 5)

    # Delete one.
    futures = client.delete_topics([six], operation_timeout=ADMIN_TIMEOUT_S,
                                   request_timeout=ADMIN_TIMEOUT_S)
    futures[six].result(timeout=ADMIN_TIMEOUT_S)
    assert six not in client.list_topics(timeout=10).topics

    # A restart keeps all of it.
    broker.restart()
    client = admin(broker.bootstrap)
    topics = client.list_topics(timeout=10).topics
    assert six not in topics, f"deleted topic {six} is back after a restart"
    wait_for_partitions(client, three, 5)
    configs = topic_configs(client, three)
    assert configs["retention.ms"] == "7200000"
    assert configs["segment.bytes"] == "1048576"
    assert configs["segment.ms"] == DEFAULT_SEGMENT_MS

    # And a second restart, so nothing depends on state a restart happened to leave in memory.
    broker.restart()
    client = admin(broker.bootstrap)
    assert six not in client.list_topics(timeout=10).topics
    assert partition_counts(client, three) == {three: 5}


def test_topics_and_data_survive_restart(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("survive")
    create_topic(broker.bootstrap, name, partitions=4, config={"retention.ms": "-1"})
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), name,
                [(f"k{i}".encode(), f"v{i}".encode()) for i in range(400)], recorder)
    recorder.assert_all_delivered(400)

    broker.restart()
    client = admin(broker.bootstrap)
    wait_for_partitions(client, name, 4)
    assert topic_configs(client, name)["retention.ms"] == "-1"
    records = read_partitions(broker.bootstrap, name, 4, expected=400)
    assert sorted(m.value() for m in records) == sorted(f"v{i}".encode() for i in range(400))


def test_creating_an_existing_topic_fails(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("exists")
    create_topic(broker.bootstrap, name, partitions=2)
    (exc,) = create(client, NewTopic(name, num_partitions=3, replication_factor=1)).values()
    assert error_code(exc) == KafkaError.TOPIC_ALREADY_EXISTS
    assert partition_counts(client, name) == {name: 2}


@pytest.mark.parametrize("name", ["has space", "slash/name", "x" * 250, "..", "ümlaut"],
                         ids=["space", "slash", "too-long", "dotdot", "non-ascii"])
def test_invalid_topic_name_is_refused(broker, name):
    client = admin(broker.bootstrap)
    (exc,) = create(client, NewTopic(name, num_partitions=1, replication_factor=1)).values()
    assert error_code(exc) == KafkaError.TOPIC_EXCEPTION  # 17, INVALID_TOPIC_EXCEPTION
    assert name not in client.list_topics(timeout=10).topics


def test_invalid_partition_counts_are_refused(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("parts")
    (exc,) = create(client, NewTopic(name, num_partitions=0, replication_factor=1)).values()
    assert error_code(exc) == KafkaError.INVALID_PARTITIONS

    create_topic(broker.bootstrap, name, partitions=3)
    futures = client.create_partitions([NewPartitions(name, 2)], request_timeout=ADMIN_TIMEOUT_S)
    exc = futures[name].exception(timeout=ADMIN_TIMEOUT_S)
    assert error_code(exc) == KafkaError.INVALID_PARTITIONS
    assert partition_counts(client, name) == {name: 3}


def test_validate_only_creates_nothing(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("dry-run")
    results = create(client, NewTopic(name, num_partitions=2, replication_factor=1),
                     validate_only=True)
    assert results == {name: None}
    assert name not in client.list_topics(timeout=10).topics


def test_unknown_topic_errors(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("missing")
    resource = ConfigResource(ResourceType.TOPIC, name)
    exc = client.describe_configs([resource])[resource].exception(timeout=ADMIN_TIMEOUT_S)
    assert error_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART
    exc = client.delete_topics([name], request_timeout=ADMIN_TIMEOUT_S)[name].exception(
        timeout=ADMIN_TIMEOUT_S)
    assert error_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_deleted_topic_can_be_recreated_empty(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("recreate")
    create_topic(broker.bootstrap, name, partitions=2)
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), name, [(b"old", b"old-%d" % i) for i in range(50)],
                recorder)
    recorder.assert_all_delivered(50)
    client.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S)[name].result(
        timeout=ADMIN_TIMEOUT_S)

    create_topic(broker.bootstrap, name, partitions=3)
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), name, [(b"new", b"new-%d" % i) for i in range(10)],
                recorder)
    recorder.assert_all_delivered(10)
    records = read_partitions(broker.bootstrap, name, 3, expected=10)
    assert sorted(m.value() for m in records) == sorted(b"new-%d" % i for i in range(10))

    broker.restart()
    records = read_partitions(broker.bootstrap, name, 3, expected=10)
    assert sorted(m.value() for m in records) == sorted(b"new-%d" % i for i in range(10))


def test_metadata_for_all_topics_as_librdkafka_2_16_sends_it(broker):
    """librdkafka 2.16 asks for all topics (a null topic array) with Metadata v12 and three
    bytes after the body's tagged fields; Apache Kafka ignores bytes after a request body, so
    this request must be answered, not refused. These are its bytes, captured on the wire."""
    import wire

    topic = unique_topic("all-topics")
    create_topic(broker.bootstrap, topic, partitions=1)
    request = bytes.fromhex("0003000c00000003000772646b61666b610000000000010000")
    payload = wire.roundtrip(broker.bootstrap, wire.frame(request))
    # A whole Metadata v12 answer to "all topics": this broker, and the topic just created
    # with its one partition led by this broker.
    correlation_id, brokers, topics = wire.parse_metadata_v12(payload)
    assert correlation_id == 3
    assert [(host, port) for _, host, port in brokers] == [(broker.host, broker.port)], brokers
    node_id = brokers[0][0]
    assert topics.get(topic) == (0, [(0, 0, node_id)]), topics.get(topic)
