"""Power cuts during acks=all production, three times over, under both durability policies:
the default (raft counts an entry persisted only once its shard's group commit fsynced it)
and Kafka's `flush.messages=1` (every append fsynced as it is written).

The broker's data directory lives on `powercut` (tests/powercut), a FUSE file system that,
at a cut, keeps only what POSIX promises survives a power loss: file contents as of their
last fsync, directory entries as of their directory's last fsync. A librdkafka producer
(acks=all, the library's defaults otherwise: not idempotent, retries on) writes numbered
values from a thread; three times the broker is SIGKILLed, the power cut, the file system
mounted again and the broker restarted, and production goes on; segments are small, so
rolls happen throughout. Afterwards:
- the topic still exists, with all its partitions (checked after every restart too);
- every acknowledged value is in the log at the partition and offset it was acknowledged at;
- no offset is served twice, and a value appears at a second offset only as the producer's
  retry of a request whose answer a kill cut off (a copy at a lower offset than the acked
  one, which at-least-once delivery allows).
"""

from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from kafkautil import NOT_ACKED, SequenceProducer, admin, consumer, create_topic, unique_topic

CUTS = 3
PARTITIONS = 4
# Values without a delivery report at once: keeps each cycle's queue short (the broker fsyncs
# every append through FUSE) so the test stays well under two minutes.
MAX_OUTSTANDING = 2000
# Values acknowledged between two cuts: ~20 bytes each on disk, so ~1 MiB per partition and
# about one roll of each partition's 1 MiB segment per cycle.
VALUES_PER_CYCLE = 200_000


def assert_topic_intact(bootstrap: str, topic: str, after: str) -> None:
    metadata = admin(bootstrap).list_topics(topic=topic, timeout=10)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        pytest.fail(f"{after}: topic {topic!r} is gone "
                    f"({getattr(found, 'error', 'not in metadata')})", pytrace=False)
    if len(found.partitions) != PARTITIONS:
        pytest.fail(f"{after}: topic {topic!r} has {len(found.partitions)} partitions, "
                    f"not {PARTITIONS}", pytrace=False)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("policy", ["group-commit", "flush.messages=1"])
def test_power_cuts_lose_no_acknowledged_record_and_no_topic(powercut_fs, start_broker, policy):
    flush = {"CAIRN_LOG_FLUSH_MESSAGES": "1"} if policy == "flush.messages=1" else {}
    broker = start_broker(
        env={
            **flush,
            # Small segments, so every cycle rolls some: a segment a roll creates must have
            # its name fsynced before an append into it counts as flushed. (librdkafka's
            # batches stay under 1 MB, batch.size.)
            "CAIRN_LOG_SEGMENT_BYTES": str(1 << 20),
            # A lost topic must show as lost, not come back empty from a producer's Metadata.
            "CAIRN_BROKER_AUTO_CREATE_TOPICS_ENABLE": "false",
        },
        data_dir=powercut_fs.mountpoint / "data",
    )
    topic = unique_topic("power-cut")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    rng = random.Random(10)
    seq = SequenceProducer(broker.bootstrap, topic, {"acks": "all"},
                           max_outstanding=MAX_OUTSTANDING)
    seq.start()
    kept = []
    try:
        seq.wait_for_ack_of_value_at_least(VALUES_PER_CYCLE, 60, "the first acknowledgements")
        for cut in range(1, CUTS + 1):
            time.sleep(rng.uniform(0.0, 0.5))
            acked_before = seq.acked
            broker.kill9()
            kept.append(powercut_fs.cut())
            powercut_fs.mount()
            broker.start()
            assert_topic_intact(broker.bootstrap, topic,
                                f"after power cut {cut} ({acked_before} values acknowledged)")
            # Values produced from now on can only be acknowledged by the new process.
            first_new = seq.produced
            seq.wait_for_ack_of_value_at_least(
                first_new + VALUES_PER_CYCLE, 60,
                f"acknowledgements from the broker restarted after power cut {cut} "
                f"(values >= {first_new + VALUES_PER_CYCLE})")
    finally:
        seq.stop()
    remaining = seq.producer.flush(60)
    assert remaining == 0, f"{remaining} values never got a delivery report"
    produced = seq.produced
    assert seq.acked + seq.failed == produced, (seq.acked, seq.failed, produced)
    assert_topic_intact(broker.bootstrap, topic, "at the end")

    # Read everything back: where each value is, and that no offset comes twice.
    # Checked as records arrive (a million of them): where each value is, that no offset comes
    # twice, and that a second copy of an acknowledged value is one a retry explains.
    at_acked_place = bytearray(produced)
    anywhere = bytearray(produced)
    last_offset = [-1] * PARTITIONS
    repeated_offsets, bad_copies = [], []
    retried = total = 0
    cons = consumer(broker.bootstrap, **{"fetch.max.bytes": 16 * 1024 * 1024})
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(PARTITIONS)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < PARTITIONS:
            if time.monotonic() > deadline:
                pytest.fail(f"reading back took over 60s; {total} records read, "
                            f"partitions at end: {sorted(at_end)}")
            for msg in cons.consume(num_messages=20_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    pytest.fail(f"consumer error: {err!r}")
                partition, offset = msg.partition(), msg.offset()
                at_end.discard(partition)
                total += 1
                if offset <= last_offset[partition]:
                    repeated_offsets.append((partition, offset))
                last_offset[partition] = offset
                value = int(msg.value())
                assert 0 <= value < produced, f"value {value} was never produced"
                anywhere[value] = 1
                acked_offset = seq.offsets[value]
                if acked_offset == NOT_ACKED:
                    continue
                acked_partition = seq.partitions[value]
                if (partition, offset) == (acked_partition, acked_offset):
                    at_acked_place[value] = 1
                elif partition == acked_partition and offset < acked_offset:
                    # A request the broker wrote but was killed before answering, sent again
                    # by the producer: the first copy sits below the acknowledged one.
                    retried += 1
                else:
                    bad_copies.append((value, (acked_partition, acked_offset),
                                       (partition, offset)))
    finally:
        cons.close()

    acked = [v for v in range(produced) if seq.offsets[v] != NOT_ACKED]
    lost = [v for v in acked if not anywhere[v]]
    misplaced = [(v, seq.partitions[v], seq.offsets[v]) for v in acked
                 if anywhere[v] and not at_acked_place[v]]
    summary = (
        f"{produced} values produced, {seq.acked} acknowledged, {seq.failed} failed, "
        f"{total} read back, {retried} extra copies of acknowledged values from retried "
        f"requests; cuts kept: {kept}; first producer errors: {seq.errors[:5]}"
    )
    assert not repeated_offsets, f"offsets served twice: {repeated_offsets[:5]}; {summary}"
    assert not lost, f"{len(lost)} acknowledged values lost, first {lost[:10]}; {summary}"
    assert not misplaced, (
        f"{len(misplaced)} acknowledged values not at their acknowledged offset "
        f"(value, acked partition, acked offset): {misplaced[:5]}; {summary}"
    )
    assert not bad_copies, (
        f"{len(bad_copies)} copies of acknowledged values where no retry could put them "
        f"(value, acked at, found at): {bad_copies[:5]}; {summary}"
    )
    print(summary)
