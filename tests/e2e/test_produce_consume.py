"""Producing and consuming with librdkafka (confluent-kafka): an idempotent keyed bulk load,
every compression codec, timestamp lookups, and fetch long-polling. No consumer groups:
partitions are read with assign()."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from kafkautil import (
    Recorder,
    consumer,
    create_topic,
    produce_all,
    producer,
    read_partitions,
    unique_topic,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.timeout(300)
def test_idempotent_zstd_keyed_bulk_roundtrip(broker):
    topic = unique_topic("bulk")
    partitions, keys, total = 6, 1000, 100_000
    create_topic(broker.bootstrap, topic, partitions=partitions)

    # Values carry the key and that key's sequence number: key-7 gets "key-7:0", "key-7:1", …
    messages = []
    for n in range(total):
        key = f"key-{n % keys}"
        messages.append((key.encode(), f"{key}:{n // keys}".encode()))

    recorder = Recorder()
    prod = producer(broker.bootstrap, **{
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 5,
        "queue.buffering.max.messages": 200_000,
    })
    produce_all(prod, topic, messages, recorder, flush_timeout=120)
    recorder.assert_all_delivered(total)

    # Delivery reports: one partition per key, offsets increasing per partition in produce
    # order (the producer preserves order per partition).
    partition_of: dict[bytes, int] = {}
    delivered_at: dict[tuple[int, int], bytes] = {}
    for report in recorder.reports:
        assert partition_of.setdefault(report.key, report.partition) == report.partition
        assert 0 <= report.partition < partitions
        assert (report.partition, report.offset) not in delivered_at
        delivered_at[(report.partition, report.offset)] = report.value
    by_partition = defaultdict(list)
    for report in recorder.reports:
        by_partition[report.partition].append(report)
    for partition, reports in by_partition.items():
        # Reports for one partition arrive in offset order.
        offsets = [r.offset for r in reports]
        assert offsets == sorted(offsets), f"partition {partition}: reports out of order"
    assert len(by_partition) > 1, "every key landed in one partition"

    records = read_partitions(broker.bootstrap, topic, partitions, expected=total, timeout=180)
    assert len(records) == total, f"read {len(records)} records, produced {total}"

    seen_offsets: dict[int, int] = {}
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for msg in records:
        partition, offset = msg.partition(), msg.offset()
        assert offset > seen_offsets.get(partition, -1), (
            f"partition {partition}: offset {offset} after {seen_offsets.get(partition)}"
        )
        seen_offsets[partition] = offset
        assert partition_of[msg.key()] == partition, f"key {msg.key()!r} in two partitions"
        assert delivered_at.get((partition, offset)) == msg.value(), (
            f"{partition}/{offset} holds {msg.value()!r}, the delivery report said "
            f"{delivered_at.get((partition, offset))!r}"
        )
        key, sequence = msg.value().decode().rsplit(":", 1)
        assert key.encode() == msg.key()
        per_key[msg.key()].append(int(sequence))

    assert len(per_key) == keys
    for key, sequences in per_key.items():
        assert sequences == list(range(total // keys)), f"{key!r}: {sequences[:20]}…"


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, codec):
    topic = unique_topic(f"codec-{codec}")
    create_topic(broker.bootstrap, topic, partitions=2)
    # Compressible and incompressible values, a null value, an empty key, and headers.
    messages = [(f"k{i % 7}".encode(), (f"value {i} " * (i % 50)).encode()) for i in range(2000)]
    messages += [(b"", b"\x00\xff" * 300), (b"null", None)]
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 20})
    produce_all(prod, topic, messages, recorder, headers=[("h", b"header-value")])
    recorder.assert_all_delivered(len(messages))

    records = read_partitions(broker.bootstrap, topic, 2, expected=len(messages))
    def shown(key, value):
        return key, b"<null>" if value is None else b"=" + value

    assert sorted(shown(m.key(), m.value()) for m in records) == sorted(
        shown(k, v) for k, v in messages)
    assert all(m.headers() == [("h", b"header-value")] for m in records)
    null_values = [m for m in records if m.key() == b"null"]
    assert len(null_values) == 1 and null_values[0].value() is None


def test_offsets_for_times(broker):
    topic = unique_topic("times")
    create_topic(broker.bootstrap, topic, partitions=1)
    base = int(time.time() * 1000) - 3_600_000
    timestamps = [base + i * 1000 for i in range(10)]

    # All ten in one batch (linger), so the broker must look inside the batch.
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"linger.ms": 200, "batch.num.messages": 100})
    for i, ts in enumerate(timestamps):
        prod.produce(topic, value=f"t{i}".encode(), timestamp=ts, on_delivery=recorder)
    assert prod.flush(30) == 0
    recorder.assert_all_delivered(10)
    offset_of = {r.value: r.offset for r in recorder.reports}
    assert [r.timestamp[1] for r in recorder.reports] == timestamps

    cons = consumer(broker.bootstrap)
    try:
        def lookup(ts: int) -> int:
            (result,) = cons.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert result.error is None, result.error
            return result.offset

        assert lookup(base - 5000) == offset_of[b"t0"]          # before everything
        assert lookup(base) == offset_of[b"t0"]                  # exactly the first
        assert lookup(base + 2500) == offset_of[b"t3"]          # between t2 and t3
        assert lookup(base + 3000) == offset_of[b"t3"]          # exactly t3
        assert lookup(base + 9000) == offset_of[b"t9"]          # the last
        assert lookup(base + 9001) == OFFSET_END                 # after everything: -1

        low, high = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert high == offset_of[b"t9"] + 1
        assert low <= offset_of[b"t0"]
    finally:
        cons.close()

    # A second batch later in time: lookups land in the right batch.
    recorder = Recorder()
    prod.produce(topic, value=b"late", timestamp=base + 60_000, on_delivery=recorder)
    assert prod.flush(30) == 0
    recorder.assert_all_delivered(1)
    cons = consumer(broker.bootstrap)
    try:
        (result,) = cons.offsets_for_times([TopicPartition(topic, 0, base + 9500)], timeout=10)
        assert result.offset == recorder.reports[0].offset
    finally:
        cons.close()


def test_fetch_long_poll_returns_as_soon_as_data_arrives(broker):
    topic = unique_topic("longpoll")
    create_topic(broker.bootstrap, topic, partitions=1)
    stats: list[dict] = []
    cons = consumer(broker.bootstrap, **{
        "fetch.wait.max.ms": 5000,
        "enable.partition.eof": False,
        "statistics.interval.ms": 500,
        "stats_cb": lambda s: stats.append(json.loads(s)),
    })
    prod = producer(broker.bootstrap, **{"linger.ms": 0})
    # Connect the producer before the clock starts.
    assert prod.list_topics(topic, timeout=10).topics[topic].error is None

    produced_at: list[float] = []

    def produce_later():
        time.sleep(1.0)
        produced_at.append(time.monotonic())
        prod.produce(topic, value=b"wake up")
        prod.flush(10)

    try:
        cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        # Let the consumer reach the (empty) log end and park a fetch on the broker.
        assert cons.poll(0.5) is None
        thread = threading.Thread(target=produce_later)
        thread.start()
        msg = None
        deadline = time.monotonic() + 10
        while msg is None and time.monotonic() < deadline:
            msg = cons.poll(0.05)
        received_at = time.monotonic()
        thread.join()
        assert msg is not None, "the record never arrived"
        assert msg.error() is None, msg.error()
        assert msg.value() == b"wake up"
        latency = received_at - produced_at[0]
        assert latency < 1.0, (
            f"the record took {latency:.2f}s to arrive although the fetch waits up to 5s for "
            "data: the broker did not answer the parked fetch when data came"
        )
        # And the fetch was parked, not answered at once and re-sent in a busy loop.
        time.sleep(0.6)
        cons.poll(0)
    finally:
        cons.close()
    assert stats, "no librdkafka statistics arrived"
    fetches = max(
        sum(b.get("req", {}).get("Fetch", 0) for b in s["brokers"].values()) for s in stats
    )
    assert 0 < fetches <= 10, (
        f"{fetches} Fetch requests in ~2.5s with fetch.wait.max.ms=5000: the broker does not "
        "hold fetches until data or the wait time"
    )


def test_fetch_from_an_offset_in_the_middle(broker):
    topic = unique_topic("seek")
    create_topic(broker.bootstrap, topic, partitions=1)
    recorder = Recorder()
    produce_all(producer(broker.bootstrap, **{"linger.ms": 50}), topic,
                [(None, b"m%d" % i) for i in range(500)], recorder)
    recorder.assert_all_delivered(500)
    offsets = [r.offset for r in recorder.reports]
    start = offsets[321]
    cons = consumer(broker.bootstrap)
    try:
        cons.assign([TopicPartition(topic, 0, start)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 500 - 321 and time.monotonic() < deadline:
            for msg in cons.consume(1000, timeout=0.5):
                if msg.error() is None:
                    got.append((msg.offset(), msg.value()))
                elif msg.error().code() != KafkaError._PARTITION_EOF:
                    pytest.fail(repr(msg.error()))
    finally:
        cons.close()
    assert got == [(offsets[i], b"m%d" % i) for i in range(321, 500)]


def test_produce_to_an_unknown_topic_is_auto_created(broker):
    topic = unique_topic("auto")
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), topic, [(b"k", b"v")], recorder, flush_timeout=30)
    recorder.assert_all_delivered(1)
    records = read_partitions(broker.bootstrap, topic, 1, expected=1)
    assert [(m.key(), m.value()) for m in records] == [(b"k", b"v")]


def test_auto_create_disabled(start_broker):
    """With auto-creation off, a topic nobody created does not exist: Metadata (which would
    create it) and Produce answer UNKNOWN_TOPIC_OR_PARTITION at once, librdkafka fails the
    message with that (not with a timeout), and the topic is not created by any of it."""
    import wire

    broker = start_broker(env={"CAIRN_BROKER_AUTO_CREATE_TOPICS_ENABLE": "false"})
    topic = unique_topic("no-auto")
    # Metadata v1 naming the topic: a request that creates it when auto-creation is on.
    started = time.monotonic()
    payload = wire.roundtrip(broker.bootstrap, wire.metadata_request(1, 41, [topic]))
    correlation_id, brokers, topics = wire.parse_metadata_v1(payload)
    assert correlation_id == 41
    assert brokers, "the broker lists itself"
    assert topics == {topic: (wire.ERROR_UNKNOWN_TOPIC_OR_PARTITION, [])}, topics
    # Produce to it, by hand: the same error for the partition, nothing appended.
    batch = wire.record_batch([(b"k", b"v")], int(time.time() * 1000))
    payload = wire.roundtrip(broker.bootstrap, wire.produce_request_v3(42, topic, 0, batch))
    assert wire.parse_produce_v3(payload) == (
        42, [(topic, 0, wire.ERROR_UNKNOWN_TOPIC_OR_PARTITION, -1)])
    assert time.monotonic() - started < 5, "the errors were not immediate"

    # librdkafka: the message fails with the broker's answer as soon as the topic has been
    # missing from metadata for topic.metadata.propagation.max.ms (1 s here), long before
    # its message.timeout.ms (60 s): a broker that does not answer would show as a timeout.
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"message.timeout.ms": 60_000,
                                         "topic.metadata.propagation.max.ms": 1000})
    started = time.monotonic()
    prod.produce(topic, value=b"v", on_delivery=recorder)
    prod.flush(30)
    elapsed = time.monotonic() - started
    assert len(recorder.reports) == 1, "no delivery report within 30 s"
    error = recorder.reports[0].error
    assert error is not None, "produced to a topic that should not exist"
    assert error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), error
    assert elapsed < 15, f"the produce failed only after {elapsed:.1f} s"

    # None of it created the topic.
    metadata = producer(broker.bootstrap).list_topics(timeout=10)
    assert topic not in metadata.topics, metadata.topics.get(topic)
    on_disk = [p for p in broker.data_dir.rglob("*") if topic in p.name]
    assert not on_disk, on_disk


def test_num_partitions_default_applies_to_auto_created_topics(start_broker):
    broker = start_broker(env={"CAIRN_BROKER_NUM_PARTITIONS": "4"})
    topic = unique_topic("auto4")
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), topic, [(b"k%d" % i, b"v") for i in range(40)],
                recorder, flush_timeout=30)
    recorder.assert_all_delivered(40)
    metadata = producer(broker.bootstrap).list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 4
    assert {r.partition for r in recorder.reports} == {0, 1, 2, 3}


def test_pipelined_produce_requests_are_appended_in_order(broker):
    """Kafka handles one connection's requests strictly in order: a client with several
    produce requests in flight (kafka-python's and Java's default of 5, without idempotence)
    relies on it for per-partition order. Sent by hand, without waiting for responses."""
    import wire

    topic = unique_topic("pipelined")
    create_topic(broker.bootstrap, topic, partitions=1)
    count = 200
    now = int(time.time() * 1000)
    requests = b"".join(
        # Sizes vary, so a broker that handles requests concurrently would finish them out of
        # order.
        wire.produce_request_v3(n, topic, 0, wire.record_batch(
            [(b"k", b"%d:" % n + b"x" * ((n % 7) * 3000))], now))
        for n in range(count)
    )
    with wire.connect(broker.bootstrap) as sock:
        sock.sendall(requests)
        responses = [wire.parse_produce_v3(wire.recv_frame(sock)) for _ in range(count)]
    assert [correlation_id for correlation_id, _ in responses] == list(range(count))
    assert all(results[0][2] == wire.ERROR_NONE for _, results in responses), responses[:3]
    offsets = [results[0][3] for _, results in responses]
    inversions = [(n, offsets[n - 1], offsets[n]) for n in range(1, count)
                  if offsets[n] <= offsets[n - 1]]
    assert not inversions, (
        f"{len(inversions)} requests appended before an earlier one on the same connection "
        f"(request, previous base offset, its base offset): {inversions[:5]}"
    )
    records = read_partitions(broker.bootstrap, topic, 1, expected=count)
    assert [int(m.value().split(b":")[0]) for m in records] == list(range(count))


def test_concurrent_producers_to_the_same_partitions(broker):
    topic = unique_topic("concurrent")
    create_topic(broker.bootstrap, topic, partitions=3)
    producers, per_producer = 4, 10_000
    recorders = [Recorder() for _ in range(producers)]

    def run(n: int) -> None:
        prod = producer(broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 2,
                                             "compression.type": "snappy"})
        produce_all(prod, topic, [(b"p%d-k%d" % (n, i % 30), b"p%d:%06d" % (n, i))
                                  for i in range(per_producer)], recorders[n])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for recorder in recorders:
        recorder.assert_all_delivered(per_producer)

    total = producers * per_producer
    records = read_partitions(broker.bootstrap, topic, 3, expected=total)
    assert len(records) == total
    assert len({(m.partition(), m.offset()) for m in records}) == total
    assert sorted(m.value() for m in records) == sorted(
        b"p%d:%06d" % (n, i) for n in range(producers) for i in range(per_producer))
    # Each producer's records keep their order within a partition.
    for partition in range(3):
        for n in range(producers):
            mine = [m.value() for m in records
                    if m.partition() == partition and m.value().startswith(b"p%d:" % n)]
            assert mine == sorted(mine), f"producer {n} out of order in partition {partition}"
