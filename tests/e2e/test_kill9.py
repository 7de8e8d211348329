"""kill -9 in the middle of idempotent production, five times over.

An idempotent librdkafka producer (acks=all) writes sequentially numbered values as fast as it
can while the broker is SIGKILLed and restarted under it; librdkafka reconnects and retries
what was in flight with the same producer id and sequence numbers. Afterwards:
- every acknowledged value is in the log exactly once, at the offset it was acknowledged at;
- no value is in the log twice, acknowledged or not (the broker deduplicated the retries);
- within each partition, values appear in the order they were produced.
"""

from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from kafkautil import NOT_ACKED, SequenceProducer, consumer, create_topic, unique_topic

CYCLES = 5
PARTITIONS = 3


@pytest.mark.timeout(240)
def test_kill9_during_idempotent_production(broker):
    topic = unique_topic("kill9")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    rng = random.Random(9)
    seq = SequenceProducer(broker.bootstrap, topic, {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 100_000,
        "message.timeout.ms": 120_000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 500,
    })
    seq.start()
    try:
        # Warm up: acknowledgements are flowing before the first kill.
        seq.wait_for_ack_of_value_at_least(2000, 60, "the first acknowledgements")
        for cycle in range(CYCLES):
            time.sleep(rng.uniform(0.0, 0.3))
            in_flight_from = seq.max_acked
            broker.kill9()
            time.sleep(rng.uniform(0.0, 0.3))
            broker.start()
            # Values produced from now on can only be acknowledged by the new process.
            first_new = seq.produced
            seq.wait_for_ack_of_value_at_least(
                first_new, 60,
                f"acknowledgements from the broker restarted after kill {cycle + 1} "
                f"(values >= {first_new}; acked up to {in_flight_from} before the kill)")
    finally:
        seq.stop()
    remaining = seq.producer.flush(120)
    assert remaining == 0, f"{remaining} values never got a delivery report"
    assert not seq.fatal, f"fatal producer errors: {seq.fatal}"
    produced = seq.produced
    assert seq.acked + seq.failed == produced, (seq.acked, seq.failed, produced)
    assert seq.acked > 0

    # Read everything back, checking as we go (the log holds millions of small records).
    seen = bytearray(produced)
    last_value = [-1] * PARTITIONS
    last_offset = [-1] * PARTITIONS
    duplicates, misplaced, out_of_order = [], [], []
    total = 0
    cons = consumer(broker.bootstrap, **{"fetch.max.bytes": 16 * 1024 * 1024})
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(PARTITIONS)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 120
        while len(at_end) < PARTITIONS:
            if time.monotonic() > deadline:
                pytest.fail(f"reading back took over 120s; {total} records read, "
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
                value = int(msg.value())
                total += 1
                assert 0 <= value < produced, f"value {value} was never produced"
                assert offset > last_offset[partition]
                last_offset[partition] = offset
                if seen[value]:
                    duplicates.append((value, partition, offset))
                seen[value] = 1
                if value <= last_value[partition]:
                    out_of_order.append((partition, offset, last_value[partition], value))
                last_value[partition] = value
                acked_offset = seq.offsets[value]
                if acked_offset != NOT_ACKED and (
                        acked_offset != offset or seq.partitions[value] != partition):
                    misplaced.append((value, seq.partitions[value], acked_offset,
                                      partition, offset))
    finally:
        cons.close()

    lost = [v for v in range(produced) if seq.offsets[v] != NOT_ACKED and not seen[v]]
    summary = (
        f"{produced} values produced, {seq.acked} acknowledged, {seq.failed} failed, "
        f"{total} read back; first errors: {seq.errors[:5]}"
    )
    assert not duplicates, f"{len(duplicates)} duplicated values, first {duplicates[:5]}; {summary}"
    assert not lost, f"{len(lost)} acknowledged values lost, first {lost[:10]}; {summary}"
    assert not misplaced, (
        f"{len(misplaced)} acknowledged values not where acknowledged "
        f"(value, acked partition, acked offset, found partition, found offset): "
        f"{misplaced[:5]}; {summary}"
    )
    assert not out_of_order, (
        f"{len(out_of_order)} values out of produce order (partition, offset, previous, value): "
        f"{out_of_order[:5]}; {summary}"
    )
    print(summary)
