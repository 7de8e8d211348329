"""Broker configs through librdkafka's AdminClient: DescribeConfigs of the broker (values,
sources, read-only flags), IncrementalAlterConfigs and the legacy AlterConfigs on topics and
on the broker resource, a dynamic log default that topics without an override inherit (and
act on), and all of it after a restart."""

from __future__ import annotations

import time
import warnings

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from kafkautil import ADMIN_TIMEOUT_S, admin, consumer, create_topic, producer, unique_topic

NODE = "1"
DEFAULT_RETENTION_MS = "604800000"


def describe(client, resource_type, name: str) -> dict[str, ConfigEntry]:
    resource = ConfigResource(resource_type, name)
    futures = client.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    return futures[resource].result(timeout=ADMIN_TIMEOUT_S)


def incremental(client, resource_type, name: str, *entries: ConfigEntry):
    """The future of one IncrementalAlterConfigs resource."""
    resource = ConfigResource(resource_type, name, incremental_configs=list(entries))
    futures = client.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    return futures[resource]


def legacy_alter(client, resource_type, name: str, configs: dict[str, str]):
    """The future of one resource of the legacy AlterConfigs API (librdkafka's
    rd_kafka_AlterConfigs), which replaces the resource's whole set of dynamic configs."""
    resource = ConfigResource(resource_type, name, set_config=configs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # confluent-kafka deprecates it in favour of incremental
        futures = client.alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    return futures[resource]


def setting(name: str, value: str | None, op=AlterConfigOpType.SET) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=op)


def failure(future) -> KafkaError:
    exc = future.exception(timeout=ADMIN_TIMEOUT_S)
    assert isinstance(exc, KafkaException), f"expected a broker error, got {exc!r}"
    return exc.args[0]


def source(entry: ConfigEntry) -> ConfigSource:
    # confluent-kafka hands described sources back as plain ints.
    return ConfigSource(entry.source)


def value_and_source(entries: dict[str, ConfigEntry], name: str) -> tuple[str, ConfigSource]:
    entry = entries[name]
    return entry.value, source(entry)


def test_broker_configs_report_static_and_default_values(start_broker):
    broker = start_broker(env={"CAIRN_BROKER_NUM_PARTITIONS": "3",
                               "CAIRN_LOG_RETENTION_MS": "86400000"})
    client = admin(broker.bootstrap)
    entries = describe(client, ResourceType.BROKER, NODE)

    partitions = entries["num.partitions"]
    assert (partitions.value, source(partitions), partitions.is_read_only) == (
        "3", ConfigSource.STATIC_BROKER_CONFIG, True)
    auto = entries["auto.create.topics.enable"]
    assert (auto.value, source(auto), auto.is_read_only) == (
        "true", ConfigSource.DEFAULT_CONFIG, True)
    retention = entries["log.retention.ms"]
    assert (retention.value, source(retention), retention.is_read_only) == (
        "86400000", ConfigSource.STATIC_BROKER_CONFIG, False)
    segment = entries["log.segment.bytes"]
    assert (segment.value, source(segment), segment.is_read_only) == (
        "1073741824", ConfigSource.DEFAULT_CONFIG, False)
    assert value_and_source(entries, "node.id") == (NODE, ConfigSource.DEFAULT_CONFIG)
    assert entries["message.max.bytes"].value == "1048588"

    # A topic without an override inherits the static default, and says so.
    name = unique_topic("inherits")
    create_topic(broker.bootstrap, name)
    topic = describe(client, ResourceType.TOPIC, name)
    assert value_and_source(topic, "retention.ms") == (
        "86400000", ConfigSource.STATIC_BROKER_CONFIG)
    assert value_and_source(topic, "segment.bytes") == ("1073741824", ConfigSource.DEFAULT_CONFIG)

    # A restart with a changed static config reports the new static value.
    broker.env["CAIRN_BROKER_NUM_PARTITIONS"] = "5"
    broker.restart()
    client = admin(broker.bootstrap)
    entries = describe(client, ResourceType.BROKER, NODE)
    assert value_and_source(entries, "num.partitions") == ("5", ConfigSource.STATIC_BROKER_CONFIG)


@pytest.mark.timeout(180)
def test_a_dynamic_log_default_reaches_topics_acts_and_survives_a_restart(start_broker):
    # Retention checks every second (log.retention.check.interval.ms is read-only, 5 min by
    # default), so the dynamic default's effect shows within seconds.
    broker = start_broker(env={"CAIRN_LOG_RETENTION_CHECK_INTERVAL_MS": "1000"})
    client = admin(broker.bootstrap)
    plain, own = unique_topic("plain"), unique_topic("own")
    create_topic(broker.bootstrap, plain)
    create_topic(broker.bootstrap, own, config={"retention.ms": "10800000"})

    # Old records (an hour ago), kept by the 7-day default.
    prod = producer(broker.bootstrap)
    hour_ago = int(time.time() * 1000) - 3_600_000
    for i in range(20):
        prod.produce(plain, value=b"old-%d" % i, timestamp=hour_ago)
        prod.produce(own, value=b"old-%d" % i, timestamp=hour_ago)
    assert prod.flush(30) == 0

    incremental(client, ResourceType.BROKER, NODE,
                setting("log.retention.ms", "60000")).result(timeout=ADMIN_TIMEOUT_S)
    entries = describe(client, ResourceType.BROKER, NODE)
    retention = entries["log.retention.ms"]
    assert (retention.value, source(retention), retention.is_read_only) == (
        "60000", ConfigSource.DYNAMIC_BROKER_CONFIG, False)
    assert value_and_source(describe(client, ResourceType.TOPIC, plain), "retention.ms") == (
        "60000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert value_and_source(describe(client, ResourceType.TOPIC, own), "retention.ms") == (
        "10800000", ConfigSource.DYNAMIC_TOPIC_CONFIG), "an override wins over the default"

    # The partitions act on it: retention (checked every second) drops the hour-old records of
    # the topic that inherits the default, and only of that one.
    reader = consumer(broker.bootstrap)
    try:
        deadline = time.monotonic() + 30
        while True:
            low, high = reader.get_watermark_offsets(TopicPartition(plain, 0), timeout=10)
            if low == high and high > 0:
                break
            assert time.monotonic() < deadline, f"retention never applied: {low}..{high}"
            time.sleep(1)
        low, high = reader.get_watermark_offsets(TopicPartition(own, 0), timeout=10)
        assert high - low >= 20, f"the topic with its own retention lost records: {low}..{high}"
    finally:
        reader.close()

    broker.restart()
    client = admin(broker.bootstrap)
    assert value_and_source(describe(client, ResourceType.BROKER, NODE), "log.retention.ms") == (
        "60000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert value_and_source(describe(client, ResourceType.TOPIC, plain), "retention.ms") == (
        "60000", ConfigSource.DYNAMIC_BROKER_CONFIG)

    # Deleting the dynamic value reverts to the default, for the broker and the topic.
    incremental(client, ResourceType.BROKER, NODE,
                setting("log.retention.ms", None, AlterConfigOpType.DELETE)).result(
        timeout=ADMIN_TIMEOUT_S)
    assert value_and_source(describe(client, ResourceType.TOPIC, plain), "retention.ms") == (
        DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)


def test_legacy_alter_configs_replaces_the_whole_set(broker):
    client = admin(broker.bootstrap)
    name = unique_topic("legacy")
    create_topic(broker.bootstrap, name,
                 config={"retention.ms": "3600000", "segment.bytes": "1048576"})

    legacy_alter(client, ResourceType.TOPIC, name, {"segment.ms": "7200000"}).result(
        timeout=ADMIN_TIMEOUT_S)
    topic = describe(client, ResourceType.TOPIC, name)
    assert value_and_source(topic, "segment.ms") == ("7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert value_and_source(topic, "retention.ms") == (
        DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG), "unlisted overrides revert"
    assert topic["segment.bytes"].value == "1073741824"

    legacy_alter(client, ResourceType.BROKER, NODE, {"log.retention.ms": "120000"}).result(
        timeout=ADMIN_TIMEOUT_S)
    entries = describe(client, ResourceType.BROKER, NODE)
    assert value_and_source(entries, "log.retention.ms") == (
        "120000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    legacy_alter(client, ResourceType.BROKER, NODE, {"log.roll.ms": "3600000"}).result(
        timeout=ADMIN_TIMEOUT_S)
    entries = describe(client, ResourceType.BROKER, NODE)
    assert value_and_source(entries, "log.roll.ms") == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert value_and_source(entries, "log.retention.ms") == (
        DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG), "the per-broker set was replaced"

    broker.restart()
    client = admin(broker.bootstrap)
    entries = describe(client, ResourceType.BROKER, NODE)
    assert value_and_source(entries, "log.roll.ms") == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert describe(client, ResourceType.TOPIC, name)["segment.ms"].value == "7200000"


def test_refused_broker_config_changes_carry_kafkas_codes(broker):
    client = admin(broker.bootstrap)
    # Read-only in Kafka too: INVALID_REQUEST with Kafka's message.
    error = failure(incremental(client, ResourceType.BROKER, NODE, setting("num.partitions", "3")))
    assert error.code() == KafkaError.INVALID_REQUEST, error
    assert "Cannot update these configs dynamically" in error.str(), error
    # Unknown: refused and named.
    error = failure(incremental(client, ResourceType.BROKER, NODE,
                                setting("log.retention.hourz", "3")))
    assert error.code() == KafkaError.INVALID_CONFIG, error
    assert "log.retention.hourz" in error.str(), error
    # A bad value.
    error = failure(incremental(client, ResourceType.BROKER, NODE,
                                setting("log.retention.ms", "soon")))
    assert error.code() == KafkaError.INVALID_REQUEST, error
    entries = describe(client, ResourceType.BROKER, NODE)
    assert value_and_source(entries, "num.partitions") == ("1", ConfigSource.DEFAULT_CONFIG)
    assert value_and_source(entries, "log.retention.ms") == (
        DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)
