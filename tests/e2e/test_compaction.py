"""Log compaction end to end: `cleanup.policy=compact` topics cleaned by the broker's log
cleaner while real clients produce and consume.

- A change-data-capture table: confluent-kafka produces updates and deletes (tombstones)
  over a key space, lz4-compressed as many pipelines do; once the cleaner has caught up, a
  fresh consumer rebuilds exactly the reference table, the log shrinks to under twice the
  size of the latest values, and every offset is where it was.
  `CAIRN_CDC_UPDATES` sets the size (default 200,000 updates of 1 KiB over 2,000 keys; the
  issue's full run is `CAIRN_CDC_UPDATES=1000000`, 10,000 keys).
- An idempotent producer's retry of a batch that the cleaner emptied is still recognised as
  a duplicate (before and after a restart): the cleaner keeps every batch header.
- `__consumer_offsets` is compacted, and a group's committed offsets survive a restart
  that replays the cleaned log.
"""

from __future__ import annotations

import os
import random
import re
import struct
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

import wire
from conftest import Broker, wait_until
from httputil import Http
from test_metrics import scrape, value
from kafkautil import (
    Recorder,
    admin,
    consumer,
    create_topic,
    produce_all,
    producer,
    read_partitions,
    unique_topic,
)

# The cleaner checks each compacted log every 200 ms instead of Kafka's 15 s.
FAST_CLEANER = {"CAIRN_BROKER_LOG_CLEANER_BACKOFF_MS": "200"}
COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0",
    "delete.retention.ms": "0",
}
CLEANED = re.compile(r"log cleaned .*partition=(\S+) .*cleaned_until=(\d+)")


def segment_files(broker: Broker, partition: str) -> list[Path]:
    return sorted((broker.data_dir / partition).glob("*.log"))


def log_bytes(broker: Broker, partition: str) -> int:
    return sum(p.stat().st_size for p in segment_files(broker, partition))


def wait_cleaned(broker: Broker, partition: str, timeout: float = 120.0) -> int:
    """Waits until the cleaner reached the active segment of `partition` (everything
    sealed is clean); returns where the clean section ends."""

    def reached() -> int | None:
        bases = [int(p.stem) for p in segment_files(broker, partition)]
        if len(bases) < 2:
            return None
        active = max(bases)
        done = [int(m.group(2)) for m in CLEANED.finditer(broker.process.stderr)
                if m.group(1) == partition]
        return max(done) if done and max(done) >= active else None

    deadline = time.monotonic() + timeout
    while (end := reached()) is None:
        if time.monotonic() > deadline:
            lines = [line for line in broker.process.stderr.splitlines()
                     if partition in line and ("clean" in line or "WARN" in line)]
            pytest.fail(
                f"the cleaner did not reach the active segment of {partition} in {timeout}s; "
                f"segments: {[p.name for p in segment_files(broker, partition)]}; "
                f"cleaner lines: {lines[-5:]}"
            )
        time.sleep(0.1)
    return end


@pytest.mark.timeout(600)
def test_a_cdc_table_is_rebuilt_exactly_from_a_compacted_topic(start_broker):
    updates = int(os.environ.get("CAIRN_CDC_UPDATES", "200000"))
    keys = max(updates // 100, 10)
    broker = start_broker(env=FAST_CLEANER)
    topic = unique_topic("cdc")
    create_topic(broker.bootstrap, topic, config={**COMPACTED, "segment.bytes": str(1 << 20)})

    # Updates cycle over the keys in a shuffled order; every 20th change deletes its key.
    table: dict[bytes, bytes] = {}
    changes = []
    rng = random.Random(13)
    for n in range(updates):
        key = b"row-%06d" % ((n * 7919) % keys)
        if n % 20 == 19:
            table.pop(key, None)
            changes.append((key, None))
        else:
            value = b"%010d:" % n + rng.randbytes(1013)  # 1 KiB, incompressible
            table[key] = value
            changes.append((key, value))
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"compression.type": "lz4", "linger.ms": 20})
    produce_all(prod, topic, changes, recorder, flush_timeout=300)
    recorder.assert_all_delivered(updates)
    offset_of = {d.offset: (d.key, d.value) for d in recorder.reports}
    assert sorted(offset_of) == list(range(updates))
    produced = sum(len(k) + len(v or b"") for k, v in changes)

    started = time.monotonic()
    wait_cleaned(broker, f"{topic}-0", timeout=300)
    waited = time.monotonic() - started

    records = read_partitions(broker.bootstrap, topic, 1, timeout=120)
    rebuilt: dict[bytes, bytes] = {}
    last = -1
    for msg in records:
        assert msg.offset() > last, "offsets must increase"
        last = msg.offset()
        # Every kept record is the one produced at its offset, byte for byte.
        assert offset_of[msg.offset()] == (msg.key(), msg.value()), msg.offset()
        if msg.value() is None:
            rebuilt.pop(msg.key(), None)
        else:
            rebuilt[msg.key()] = msg.value()
    assert rebuilt == table
    assert len(records) < updates / 4, f"{len(records)} of {updates} records remain"

    latest = sum(len(k) + len(v) for k, v in table.items())
    after = log_bytes(broker, f"{topic}-0")
    print(f"\ncdc: {updates} updates, {keys} keys: {produced} bytes produced, log {after} "
          f"bytes after cleaning (latest values {latest}), cleaner caught up {waited:.1f}s "
          "after the last ack")
    assert after < 2 * latest, f"log of {after} bytes for {latest} bytes of latest values"

    # The end offset did not move, and a restart serves the same records.
    broker.restart()
    again = read_partitions(broker.bootstrap, topic, 1, timeout=120)
    assert [(m.offset(), m.key(), m.value()) for m in again] == \
        [(m.offset(), m.key(), m.value()) for m in records]
    cons = consumer(broker.bootstrap)
    try:
        _, high = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        cons.close()
    assert high == updates


def init_producer_id(bootstrap: str) -> tuple[int, int]:
    """InitProducerId v0 without a transactional id: (producer id, epoch)."""
    body = wire.string(None) + struct.pack(">i", 60_000)
    payload = wire.roundtrip(bootstrap, wire.frame(wire.header_v1(22, 0, 7) + body))
    _corr, _throttle, error, producer_id, epoch = struct.unpack(">iihqh", payload[:20])
    assert error == 0, f"InitProducerId error {error}"
    return producer_id, epoch


def idempotent_batch(key: bytes, value: bytes, producer_id: int, epoch: int, sequence: int) -> bytes:
    """An uncompressed one-record batch of an idempotent producer."""
    encoded = wire.record(0, 0, key, value)
    now = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, 0, now, now, producer_id, epoch, sequence, 1) + encoded
    after_length = struct.pack(">ibI", 0, 2, wire.crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce(bootstrap: str, topic: str, batch: bytes) -> tuple[int, int]:
    payload = wire.roundtrip(bootstrap, wire.produce_request_v3(1, topic, 0, batch))
    _corr, results = wire.parse_produce_v3(payload)
    [(_, _, error, base_offset)] = results
    return error, base_offset


@pytest.mark.timeout(120)
def test_an_idempotent_retry_is_still_a_duplicate_after_its_batch_was_cleaned(start_broker):
    broker = start_broker(env=FAST_CLEANER)
    topic = unique_topic("idem-compact")
    create_topic(broker.bootstrap, topic, config={**COMPACTED, "segment.bytes": "1024"})
    producer_id, epoch = init_producer_id(broker.bootstrap)
    batches = [idempotent_batch(b"k", b"v%03d" % n * 60, producer_id, epoch, n) for n in range(12)]
    offsets = []
    for batch in batches:
        error, base = produce(broker.bootstrap, topic, batch)
        assert error == 0
        offsets.append(base)
    assert offsets == list(range(12))
    cleaned_until = wait_cleaned(broker, f"{topic}-0")
    # The cleaner's state, in the metrics and the HTTP API.
    samples = scrape(broker)
    labels = {"topic": topic, "partition": 0}
    assert value(samples, "kafka_log_logcleaner_cleaned_offset", **labels) == cleaned_until
    assert value(samples, "kafka_log_logcleaner_last_clean_bytes", kind="read", **labels) > 0
    assert value(samples, "kafka_log_logcleaner_dirty_ratio", **labels) is not None
    status = Http(broker.http).get("/v1/status").json()
    [mine] = [t for t in status["topics"] if t["name"] == topic]
    assert mine["partitions"][0]["cleaner"]["cleaned_until"] == cleaned_until
    # Every record of key k but the newest cleanable one is gone...
    kept = [m.offset() for m in read_partitions(broker.bootstrap, topic, 1)]
    assert 11 in kept and 0 not in kept and len(kept) < 12, kept
    # ...yet retries of the producer's last batches are answered as the duplicates they are,
    # at their original offsets, and append nothing: before and after a restart.
    for run in range(2):
        for n in (9, 10, 11):
            assert produce(broker.bootstrap, topic, batches[n]) == (0, n), (run, n)
        cons = consumer(broker.bootstrap)
        try:
            assert cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] == 12
        finally:
            cons.close()
        if run == 0:
            broker.restart()
    # The next sequence number still appends.
    error, base = produce(broker.bootstrap, topic, idempotent_batch(b"k", b"new", producer_id, epoch, 12))
    assert (error, base) == (0, 12)


@pytest.mark.timeout(180)
def test_group_offsets_survive_a_restart_after_the_offsets_topic_was_cleaned(start_broker):
    broker = start_broker(env={
        **FAST_CLEANER,
        "CAIRN_BROKER_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "CAIRN_BROKER_OFFSETS_TOPIC_SEGMENT_BYTES": "4096",
        "CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    })
    topic = unique_topic("offsets-compact")
    create_topic(broker.bootstrap, topic, partitions=3)
    recorder = Recorder()
    produce_all(producer(broker.bootstrap), topic,
                [(None, b"%d" % n) for n in range(300)], recorder, partition=0)
    group = unique_topic("group")
    cons = consumer(broker.bootstrap, **{"group.id": group})
    try:
        # Many commits of the same three partitions: the offsets log fills with superseded
        # records for the cleaner.
        for n in range(1, 301):
            cons.commit(offsets=[TopicPartition(topic, p, n + p) for p in range(3)],
                        asynchronous=False)
    finally:
        cons.close()
    # Kafka's default min.cleanable.dirty.ratio (0.5) may leave the last segments dirty;
    # with a lower one the cleaner reaches the active segment.
    client = admin(broker.bootstrap)  # must outlive its futures
    futures = client.incremental_alter_configs([ConfigResource(
        ResourceType.TOPIC, "__consumer_offsets",
        incremental_configs=[ConfigEntry("min.cleanable.dirty.ratio", "0.01",
                                         incremental_operation=AlterConfigOpType.SET)])])
    for future in futures.values():
        future.result(timeout=30)
    end = wait_cleaned(broker, "__consumer_offsets-0")
    assert end > 0
    size = log_bytes(broker, "__consumer_offsets-0")
    broker.restart()
    cons = consumer(broker.bootstrap, **{"group.id": group})
    try:
        committed = cons.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    finally:
        cons.close()
    assert [tp.offset for tp in committed] == [300, 301, 302]
    # 900 commits of ~100 bytes each would be ~100 KB uncleaned.
    assert size < 40_000, f"__consumer_offsets-0 holds {size} bytes after cleaning"


def segment_records(partition_dir: Path) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record in a partition directory's segment files, read straight from disk
    (uncompressed v2 batches; control and marker batches skipped): (offset, key, value)."""

    def varint(buf: bytes, at: int) -> tuple[int, int]:
        shift = z = 0
        while True:
            b = buf[at]
            at += 1
            z |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return (z >> 1) ^ -(z & 1), at

    out = []
    for path in sorted(partition_dir.glob("*.log")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            batch = data[pos:pos + 12 + length]
            pos += 12 + length
            attributes, _delta = struct.unpack_from(">hi", batch, 21)
            (count,) = struct.unpack_from(">i", batch, 57)
            assert attributes & 0x07 == 0, "compressed batch"
            if attributes & 0x20:
                continue
            at = 61
            for _ in range(count):
                size, at = varint(batch, at)
                end = at + size
                at += 1  # attributes
                _ts, at = varint(batch, at)
                delta, at = varint(batch, at)
                fields = []
                for _ in range(2):
                    n, at = varint(batch, at)
                    fields.append(None if n < 0 else batch[at:at + n])
                    at += max(n, 0)
                out.append((base + delta, fields[0], fields[1]))
                at = end
    return out


@pytest.mark.timeout(300)
def test_a_follower_catches_up_across_a_cleaned_range(start_broker):
    from test_cluster import (bootstrap, create_topic as create_cluster_topic, leaders,
                              start_cluster, wait_for_controller, wait_for_leaders)

    brokers = start_cluster(start_broker, env=FAST_CLEANER)
    wait_for_controller(brokers)
    topic = unique_topic("cluster-compact")
    create_cluster_topic(brokers, topic, partitions=1,
                         configs={**COMPACTED, "segment.bytes": str(1 << 20)})
    wait_for_leaders(brokers, topic, 1)
    leader = leaders(brokers[0], topic)[0]
    follower = next(b for n, b in enumerate(brokers, start=1) if n != leader)
    follower.kill9()

    # While the follower is down: updates and deletes over 200 keys, cleaned by the others.
    table: dict[bytes, bytes] = {}
    changes = []
    for n in range(20_000):
        key = b"key-%03d" % (n % 200)
        value = None if n % 25 == 24 else b"%06d" % n + b"." * 500
        changes.append((key, value))
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    recorder = Recorder()
    produce_all(producer(bootstrap(brokers), **{"acks": "all", "enable.idempotence": True}),
                topic, changes, recorder)
    recorder.assert_all_delivered(len(changes))
    offset_of = {d.offset: (d.key, d.value) for d in recorder.reports}
    partition = f"{topic}-0"
    wait_cleaned(brokers[leader - 1], partition)

    # The follower comes back and catches up from the leader's cleaned log.
    follower.start()

    def caught_up() -> bool:
        ends = []
        for b in brokers:
            status = Http(b.http).get("/v1/status").json()
            [mine] = [t for t in status["topics"] if t["name"] == topic]
            ends.append(mine["partitions"][0]["log_end_offset"])
        return ends == [len(changes)] * len(brokers)

    wait_until(caught_up, timeout=60, what="every replica's log end at the last offset")
    # The follower's own cleaner settles first (it rewrites and merges files).
    wait_cleaned(follower, partition)
    on_disk = segment_records(follower.data_dir / partition)
    assert len(on_disk) < len(changes) / 4, "the follower received the cleaned range"
    rebuilt: dict[bytes, bytes] = {}
    for offset, key, value in on_disk:
        assert offset_of[offset] == (key, value), offset
        if value is None:
            rebuilt.pop(key, None)
        else:
            rebuilt[key] = value
    assert rebuilt == table

    # And with the first leader gone, the topic still reads back as the table.
    brokers[leader - 1].kill9()
    wait_for_leaders(brokers, topic, 1)
    records = read_partitions(bootstrap(brokers), topic, 1, timeout=60)
    served: dict[bytes, bytes] = {}
    for msg in records:
        assert offset_of[msg.offset()] == (msg.key(), msg.value())
        if msg.value() is None:
            served.pop(msg.key(), None)
        else:
            served[msg.key()] = msg.value()
    assert served == table
