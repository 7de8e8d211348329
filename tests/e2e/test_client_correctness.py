"""Regression tests for bugs real clients found, driven the way those clients behave: library
defaults (timestamps left to the library, auto-commit, asynchronous commits), several
requests in flight, restarts between steps.

- Timestamps: a client that leaves the timestamp to the library must not have its records
  deleted by the next retention pass, and ListOffsets by time must find them (the broker
  computes a batch's max timestamp from its records, as Kafka does).
- Commits: the last commit of a consumer using auto-commit or asynchronous commits is the
  committed offset (pipelined commits used to apply out of order).
- Fetch: a librdkafka consumer with a small fetch.max.bytes reads partitions of 1 MiB
  batches without a stall (answers used to exceed receive.message.max.bytes).
- Offsets: raft's own entries take no Kafka offset, so offsets stay dense across restarts.
"""

from __future__ import annotations

import time

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    TopicPartition,
)
from kafka import KafkaProducer

from conftest import wait_until
from kafkautil import (
    LIBRDKAFKA_LOGGER,
    Recorder,
    consumer,
    create_topic,
    produce_all,
    producer,
    read_partitions,
    unique_topic,
)

# Retention checks every second, so a test sees several passes in a few seconds.
FAST_RETENTION = {"CAIRN_LOG_RETENTION_CHECK_INTERVAL_MS": "1000"}


def watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def offset_for_time(bootstrap: str, topic: str, timestamp_ms: int) -> int:
    c = consumer(bootstrap)
    try:
        [tp] = c.offsets_for_times([TopicPartition(topic, 0, timestamp_ms)], timeout=10)
        assert tp.error is None, tp.error
        return tp.offset
    finally:
        c.close()


def produce_with_every_timestamp_option(bootstrap: str, topic: str) -> int:
    """10 records each from librdkafka with the timestamp left to the library and set to
    now, and from kafka-python likewise; returns how many were produced."""
    rec = Recorder()
    p = producer(bootstrap, **{"linger.ms": 5})
    produce_all(p, topic, [(None, f"lib-default-{i}".encode()) for i in range(10)], rec)
    now = int(time.time() * 1000)
    produce_all(p, topic, [(None, f"lib-now-{i}".encode()) for i in range(10)], rec,
                timestamp=now)
    rec.assert_all_delivered(20)
    kp = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futures = [kp.send(topic, f"kp-default-{i}".encode()) for i in range(10)]
        futures += [kp.send(topic, f"kp-now-{i}".encode(), timestamp_ms=int(time.time() * 1000))
                    for i in range(10)]
        kp.flush(30)
        for f in futures:
            f.get(timeout=30)
    finally:
        kp.close()
    return 40


def test_records_with_library_timestamps_survive_retention_until_they_age(start_broker):
    broker = start_broker(env=FAST_RETENTION)
    keep = unique_topic("ts-default-retention")
    short = unique_topic("ts-short-retention")
    create_topic(broker.bootstrap, keep)
    # 12 s of retention; a segment per second, so retention can delete by segment.
    create_topic(broker.bootstrap, short,
                 config={"retention.ms": "12000", "segment.ms": "1000"})
    before = int(time.time() * 1000) - 1000
    n = produce_with_every_timestamp_option(broker.bootstrap, keep)
    produce_with_every_timestamp_option(broker.bootstrap, short)
    produced_at = time.monotonic()
    # Several retention passes later nothing is gone: the records are seconds old.
    time.sleep(5)
    for topic in (keep, short):
        assert watermarks(broker.bootstrap, topic) == (0, n), topic
        assert offset_for_time(broker.bootstrap, topic, before) == 0, topic
        values = [m.value() for m in read_partitions(broker.bootstrap, topic, [0], expected=n)]
        assert len(values) == n
        assert all(m is not None for m in values)
    # Once their real age passes retention.ms, the short topic's records go; the others stay.
    wait_until(lambda: watermarks(broker.bootstrap, short)[0] == n,
               timeout=40, what="retention to delete the short topic's records")
    assert time.monotonic() - produced_at >= 11, "deleted before retention.ms had passed"
    assert watermarks(broker.bootstrap, keep) == (0, n)
    # The broker keeps serving the emptied topic: new records continue the offsets.
    rec = Recorder()
    produce_all(producer(broker.bootstrap), short, [(None, b"after")], rec)
    rec.assert_all_delivered(1)
    assert watermarks(broker.bootstrap, short) == (n, n + 1)
    # A crash right after retention removed whole segments: the restarted broker serves the
    # same log start (deletions are raft entries, and the log start is durable), and raft
    # restarts over a log whose first entries are gone (it used to refuse to start when the
    # commit index it last wrote was below the log's first entry).
    broker.kill9()
    broker.start()
    assert watermarks(broker.bootstrap, short) == (n, n + 1)
    assert watermarks(broker.bootstrap, keep) == (0, n)
    values = [m.value() for m in read_partitions(broker.bootstrap, short, [0], expected=1)]
    assert values == [b"after"]


def test_log_append_time_topic_and_timestamp_bounds(broker):
    stamped = unique_topic("log-append-time")
    create_topic(broker.bootstrap, stamped, config={"message.timestamp.type": "LogAppendTime"})
    rec = Recorder()
    # A producer's own timestamp (a day ago) is replaced by the broker's append time.
    day_ago = int(time.time() * 1000) - 86_400_000
    before = int(time.time() * 1000)
    produce_all(producer(broker.bootstrap), stamped,
                [(b"k", f"v{i}".encode()) for i in range(5)], rec, timestamp=day_ago)
    after = int(time.time() * 1000)
    rec.assert_all_delivered(5)
    for m in read_partitions(broker.bootstrap, stamped, [0], expected=5):
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)
    assert offset_for_time(broker.bootstrap, stamped, before - 1000) == 0

    bounded = unique_topic("timestamp-bounds")
    create_topic(broker.bootstrap, bounded,
                 config={"message.timestamp.before.max.ms": "60000"})
    rec = Recorder()
    p = producer(broker.bootstrap, **{"message.send.max.retries": 0})
    produce_all(p, bounded, [(None, b"too old")], rec,
                timestamp=int(time.time() * 1000) - 3_600_000)
    produce_all(p, bounded, [(None, b"recent")], rec)
    errors = [d.error for d in rec.reports if d.error is not None]
    assert [e.code() for e in errors] == [KafkaError.INVALID_TIMESTAMP], errors
    [m] = read_partitions(broker.bootstrap, bounded, [0], expected=1)
    assert m.value() == b"recent"
    assert m.timestamp()[0] == TIMESTAMP_CREATE_TIME


def test_keyless_records_are_refused_on_a_compacted_topic(broker):
    topic = unique_topic("compacted-keys")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    rec = Recorder()
    p = producer(broker.bootstrap, **{"message.send.max.retries": 0})
    produce_all(p, topic, [(b"key", b"kept")], rec)
    produce_all(p, topic, [(None, b"no key")], rec)
    errors = [d.error.code() for d in rec.reports if d.error is not None]
    assert errors == [KafkaError.INVALID_RECORD], rec.reports
    assert [m.value() for m in read_partitions(broker.bootstrap, topic, [0], expected=1)] == [
        b"kept"]


def consume_and_commit(bootstrap: str, topic: str, group: str, count: int, mode: str) -> None:
    settings = {
        "bootstrap.servers": bootstrap,
        "logger": LIBRDKAFKA_LOGGER,
        "group.id": group,
        "auto.offset.reset": "earliest",
    }
    if mode == "async":
        settings["enable.auto.commit"] = False
    c = Consumer(settings)
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < count:
        assert time.monotonic() < deadline, f"consumed only {seen} of {count}"
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen += 1
        if mode == "async":
            # One asynchronous commit per record, as fast as they come: many in flight.
            c.commit(message=m, asynchronous=True)
    # close() commits the final position with auto-commit, and waits for outstanding
    # asynchronous commits.
    c.close()


def committed(bootstrap: str, topic: str, group: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "logger": LIBRDKAFKA_LOGGER})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=10)
        return tp.offset
    finally:
        c.close()


def test_auto_and_asynchronous_commits_end_at_the_last_position(start_broker):
    broker = start_broker(env={"CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"})
    topic = unique_topic("commit-order")
    create_topic(broker.bootstrap, topic)
    rec = Recorder()
    produce_all(producer(broker.bootstrap), topic,
                [(None, f"v{i}".encode()) for i in range(300)], rec)
    rec.assert_all_delivered(300)
    for round_ in range(3):
        for mode in ("auto", "async"):
            group = f"{mode}-{round_}-{unique_topic('g')}"
            consume_and_commit(broker.bootstrap, topic, group, 300, mode)
            assert committed(broker.bootstrap, topic, group) == 300, (mode, round_)
    # And after a restart.
    broker.restart()
    assert committed(broker.bootstrap, topic, group) == 300


def test_small_fetch_max_bytes_reads_partitions_of_1mib_batches(broker):
    topic = unique_topic("big-batches")
    partitions = 8
    create_topic(broker.bootstrap, topic, partitions=partitions)
    # ~1 MB batches: ten 100 kB records per partition per batch.
    p = producer(broker.bootstrap, **{"batch.size": 1_000_000, "linger.ms": 200})
    rec = Recorder()
    value = b"x" * 99_000
    per_partition = 40
    for i in range(per_partition):
        for part in range(partitions):
            while True:
                try:
                    p.produce(topic, value=value, partition=part, on_delivery=rec)
                    break
                except BufferError:
                    p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0
    rec.assert_all_delivered(per_partition * partitions)
    c = consumer(broker.bootstrap, **{
        "fetch.max.bytes": 1_048_576,
        "receive.message.max.bytes": 1_049_088,
    })
    c.assign([TopicPartition(topic, part, 0) for part in range(partitions)])
    got = {part: 0 for part in range(partitions)}
    deadline = time.monotonic() + 120
    try:
        while sum(got.values()) < per_partition * partitions:
            assert time.monotonic() < deadline, f"stalled at {got}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            assert len(m.value()) == len(value)
            assert m.offset() == got[m.partition()], "offsets are dense and in order"
            got[m.partition()] += 1
    finally:
        c.close()
    assert all(n == per_partition for n in got.values()), got


def test_offsets_stay_dense_across_restarts(broker):
    topic = unique_topic("dense")
    create_topic(broker.bootstrap, topic)
    rec = Recorder()
    produce_all(producer(broker.bootstrap), topic,
                [(None, f"v{i}".encode()) for i in range(100)], rec)
    rec.assert_all_delivered(100)
    for _ in range(5):
        broker.restart()
    assert watermarks(broker.bootstrap, topic) == (0, 100)
    offsets = [m.offset() for m in read_partitions(broker.bootstrap, topic, [0], expected=100)]
    assert offsets == list(range(100))
    # The next record follows without a gap, and a consumer at the end has no lag.
    rec = Recorder()
    produce_all(producer(broker.bootstrap), topic, [(None, b"next")], rec)
    rec.assert_all_delivered(1)
    assert rec.reports[0].offset == 100
    broker.restart()
    assert watermarks(broker.bootstrap, topic) == (0, 101)
