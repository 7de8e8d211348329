"""Power cuts during acks=all production with `flush.messages=1`, three times over.

The broker's data directory lives on `powercut` (tests/powercut), a FUSE file system that,
at a cut, keeps only what POSIX promises survives a power loss: file contents as of their
last fsync, directory entries as of their directory's last fsync. A librdkafka producer
(acks=all, the library's defaults otherwise: not idempotent, retries on) writes numbered
values from a thread; three times the broker is SIGKILLed, the power cut, the file system
mounted again and the broker restarted, and production goes on. Afterwards:
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
def test_power_cuts_lose_no_acknowledged_record_and_no_topic(powercut_fs, start_broker):
    broker = start_broker(
        env={
            "CAIRN_LOG_FLUSH_MESSAGES": "1",
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
        seq.wait_for_ack_of_value_at_least(1000, 60, "the first acknowledgements")
        for cut in range(1, CUTS + 1):
            time.sleep(rng.uniform(0.0, 0.5))
            acked_before = seq.acked
            broker.kill9()
            kept.append(powercut_fs.cut())
            powercut_fs.mount()
            broker.start()
            assert_topic_intact(broker.bootstrap, topic,
                                f"after power cut {cut} ({acked_before} values acknowledged)")
            first_new = seq.produced
            seq.wait_for_ack_of_value_at_least(
                first_new, 60,
                f"acknowledgements from the broker restarted after power cut {cut} "
                f"(values >= {first_new})")
    finally:
        seq.stop()
    remaining = seq.producer.flush(60)
    assert remaining == 0, f"{remaining} values never got a delivery report"
    produced = seq.produced
    assert seq.acked + seq.failed == produced, (seq.acked, seq.failed, produced)
    assert_topic_intact(broker.bootstrap, topic, "at the end")

    # Read everything back: where each value is, and that no offset comes twice.
    found_at: dict[int, list[tuple[int, int]]] = {}
    last_offset = [-1] * PARTITIONS
    repeated_offsets = []
    total = 0
    cons = consumer(broker.bootstrap)
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(PARTITIONS)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < PARTITIONS:
            if time.monotonic() > deadline:
                pytest.fail(f"reading back took over 60s; {total} records read, "
                            f"partitions at end: {sorted(at_end)}")
            for msg in cons.consume(num_messages=10_000, timeout=0.5):
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
                found_at.setdefault(value, []).append((partition, offset))
    finally:
        cons.close()

    lost, misplaced, bad_copies, retried = [], [], [], 0
    for value in range(produced):
        acked_offset = seq.offsets[value]
        places = found_at.get(value, [])
        if acked_offset == NOT_ACKED:
            continue
        acked_at = (seq.partitions[value], acked_offset)
        if not places:
            lost.append(value)
        elif acked_at not in places:
            misplaced.append((value, acked_at, places))
        elif len(places) > 1:
            # A retry of a request the broker had written when it was killed: the earlier
            # copy sits below the acknowledged one, in the same partition.
            others = [p for p in places if p != acked_at]
            if any(p[0] != acked_at[0] or p[1] > acked_at[1] for p in others) or \
                    len(others) != len(places) - 1:
                bad_copies.append((value, acked_at, places))
            else:
                retried += 1
    summary = (
        f"{produced} values produced, {seq.acked} acknowledged, {seq.failed} failed, "
        f"{total} read back, {retried} acknowledged values also present from a retried "
        f"request; cuts kept: {kept}; first producer errors: {seq.errors[:5]}"
    )
    assert not repeated_offsets, f"offsets served twice: {repeated_offsets[:5]}; {summary}"
    assert not lost, f"{len(lost)} acknowledged values lost, first {lost[:10]}; {summary}"
    assert not misplaced, (
        f"{len(misplaced)} acknowledged values not at their acknowledged offset "
        f"(value, (partition, offset) acked, places found): {misplaced[:5]}; {summary}"
    )
    assert not bad_copies, (
        f"{len(bad_copies)} acknowledged values served at other offsets than a retry could "
        f"explain: {bad_copies[:5]}; {summary}"
    )
    print(summary)
