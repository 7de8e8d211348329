"""kafka-python, a pure-Python client that negotiates request versions down to what the broker
advertises: producing with every codec, reading with assign(), its admin client, and
interoperation with librdkafka in both directions."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from kafkautil import Recorder, create_topic, produce_all, producer, read_partitions, unique_topic

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
TIMEOUT_MS = 30_000


def kp_producer(broker, **config) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS,
                         **config)


def kp_read(broker, topic: str, partitions: int, expected: int, timeout: float = 60.0):
    """All records of the topic's partitions from the beginning, with assign() (no group)."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=TIMEOUT_MS + 5000)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        records = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=10_000).values():
                records.extend(batch)
        # Anything beyond `expected` would be a duplicate: look a little longer.
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", CODECS, ids=[c or "none" for c in CODECS])
def test_produce_and_consume_with_codec(broker, codec):
    topic = unique_topic(f"kp-{codec or 'none'}")
    create_topic(broker.bootstrap, topic, partitions=3)
    prod = kp_producer(broker, compression_type=codec, acks="all", linger_ms=20)
    messages = [(f"key-{i % 10}".encode(), (f"value-{i} " * (i % 40)).encode()) for i in range(3000)]
    futures = [prod.send(topic, key=k, value=v, headers=[("n", b"%d" % i)])
               for i, (k, v) in enumerate(messages)]
    prod.flush(timeout=60)
    metadata = [f.get(timeout=60) for f in futures]
    prod.close()

    # Same key, same partition; offsets increase in send order within a partition.
    partition_of = {}
    last = {}
    for (key, _), meta in zip(messages, metadata):
        assert partition_of.setdefault(key, meta.partition) == meta.partition
        assert meta.offset > last.get(meta.partition, -1)
        last[meta.partition] = meta.offset

    records = kp_read(broker, topic, 3, expected=len(messages))
    assert len(records) == len(messages)
    got = {(r.partition, r.offset): (r.key, r.value, r.headers) for r in records}
    for i, ((key, value), meta) in enumerate(zip(messages, metadata)):
        assert got[(meta.partition, meta.offset)] == (key, value, [("n", b"%d" % i)])


def test_idempotent_producer(broker):
    topic = unique_topic("kp-idempotent")
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = kp_producer(broker, enable_idempotence=True, acks="all", compression_type="lz4")
    futures = [prod.send(topic, key=b"k%d" % (i % 4), value=b"%d" % i) for i in range(2000)]
    prod.flush(timeout=60)
    for future in futures:
        future.get(timeout=60)
    prod.close()
    records = kp_read(broker, topic, 2, expected=2000)
    assert sorted(int(r.value) for r in records) == list(range(2000))
    for partition in (0, 1):
        values = [int(r.value) for r in records if r.partition == partition]
        assert values == sorted(values)


def test_admin_client(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        one, two = unique_topic("kp-admin-a"), unique_topic("kp-admin-b")
        admin.create_topics([
            NewTopic(one, num_partitions=2, replication_factor=1,
                     topic_configs={"retention.ms": "123456789"}),
            NewTopic(two, num_partitions=5, replication_factor=1),
        ], timeout_ms=TIMEOUT_MS)
        assert {one, two} <= set(admin.list_topics())

        described = {t["topic"]: t for t in admin.describe_topics([one, two])}
        assert len(described[one]["partitions"]) == 2
        assert len(described[two]["partitions"]) == 5
        assert all(t["error_code"] == 0 for t in described.values())

        (response,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, one)])
        (resource,) = response.resources
        configs = {entry[0]: entry[1] for entry in resource[4]}
        assert configs["retention.ms"] == "123456789"

        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(one, num_partitions=1, replication_factor=1)],
                                timeout_ms=TIMEOUT_MS)

        admin.create_partitions({one: NewPartitions(total_count=4)}, timeout_ms=TIMEOUT_MS)
        (topic,) = admin.describe_topics([one])
        assert len(topic["partitions"]) == 4

        admin.delete_topics([two], timeout_ms=TIMEOUT_MS)
        topics = set(admin.list_topics())
        assert one in topics and two not in topics

        cluster = admin.describe_cluster()
        assert len(cluster["brokers"]) == 1
        assert f'{cluster["brokers"][0]["host"]}:{cluster["brokers"][0]["port"]}' == broker.bootstrap
    finally:
        admin.close()


def test_librdkafka_to_kafka_python(broker):
    topic = unique_topic("rd-to-kp")
    create_topic(broker.bootstrap, topic, partitions=2)
    recorder = Recorder()
    messages = [(b"k%d" % (i % 5), b"from librdkafka %d" % i) for i in range(1000)]
    produce_all(producer(broker.bootstrap, **{"compression.type": "zstd",
                                              "enable.idempotence": True}),
                topic, messages, recorder)
    recorder.assert_all_delivered(1000)
    records = kp_read(broker, topic, 2, expected=1000)
    assert sorted((r.key, r.value) for r in records) == sorted(messages)


def test_kafka_python_to_librdkafka(broker):
    topic = unique_topic("kp-to-rd")
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = kp_producer(broker, compression_type="snappy", acks="all")
    messages = [(b"k%d" % (i % 5), b"from kafka-python %d" % i) for i in range(1000)]
    for key, value in messages:
        prod.send(topic, key=key, value=value)
    prod.flush(timeout=60)
    prod.close()
    records = read_partitions(broker.bootstrap, topic, 2, expected=1000)
    assert sorted((m.key(), m.value()) for m in records) == sorted(messages)


def test_delete_records(broker):
    from kafka.admin import KafkaAdminClient as Admin

    topic = unique_topic("kp-delete-records")
    create_topic(broker.bootstrap, topic, partitions=1)
    prod = kp_producer(broker, acks="all", linger_ms=0, batch_size=1)
    metadata = [prod.send(topic, value=b"%d" % i).get(timeout=30) for i in range(20)]
    prod.close()
    cut = metadata[10].offset
    admin = Admin(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        admin.delete_records({TopicPartition(topic, 0): cut}, timeout_ms=TIMEOUT_MS)
    finally:
        admin.close()
    records = kp_read(broker, topic, 1, expected=10)
    assert [int(r.value) for r in records] == list(range(10, 20))
    assert records[0].offset == cut


@pytest.mark.parametrize("api_version", [(0, 11), (1, 0), (2, 0)],
                         ids=["kafka-0.11", "kafka-1.0", "kafka-2.0"])
def test_older_clients(broker, api_version):
    """kafka-python told it talks to an older Kafka uses that release's request versions
    (Produce v3, Fetch v4/v5, Metadata v1–v5, ...): the low ends Cairn advertises."""
    topic = unique_topic(f"kp-old-{api_version[0]}-{api_version[1]}")
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = kp_producer(broker, api_version=api_version, acks="all", compression_type="gzip",
                       max_in_flight_requests_per_connection=1)
    futures = [prod.send(topic, key=b"k%d" % (i % 3), value=b"%d" % i) for i in range(300)]
    prod.flush(timeout=60)
    for future in futures:
        future.get(timeout=60)
    prod.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                             group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=TIMEOUT_MS + 5000)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(2)])
        consumer.seek_to_beginning()
        records = []
        deadline = time.monotonic() + 60
        while len(records) < 300 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert sorted(int(r.value) for r in records) == list(range(300))
    for partition in range(2):
        values = [int(r.value) for r in records if r.partition == partition]
        assert values == sorted(values)
