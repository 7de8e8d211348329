"""A clean restart (SIGTERM) loses nothing and duplicates nothing; offsets keep increasing.

Each broker start appends one internal raft control batch per partition: it takes an offset
but is never shown to clients, so offsets are checked to increase, not to be contiguous."""

from __future__ import annotations

from kafkautil import Recorder, create_topic, produce_all, producer, read_partitions, unique_topic


def produce_round(broker, topic: str, round_number: int, count: int, **config) -> Recorder:
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"acks": "all", "linger.ms": 5, **config})
    produce_all(prod, topic, [(b"k%d" % (i % 8), b"r%d-%05d" % (round_number, i))
                              for i in range(count)], recorder)
    recorder.assert_all_delivered(count)
    return recorder


def check_log(broker, topic: str, partitions: int, recorders: list[Recorder]) -> None:
    reports = [r for rec in recorders for r in rec.reports]
    records = read_partitions(broker.bootstrap, topic, partitions, expected=len(reports))
    assert len(records) == len(reports), f"{len(records)} records read, {len(reports)} produced"
    stored = {(m.partition(), m.offset()): (m.key(), m.value()) for m in records}
    assert len(stored) == len(records), "an offset was returned twice"
    for report in reports:
        assert stored.get((report.partition, report.offset)) == (report.key, report.value), (
            f"{report.partition}/{report.offset} should hold {report.value!r}"
        )
    for partition in range(partitions):
        values = [m.value() for m in records if m.partition() == partition]
        assert values == sorted(values), f"partition {partition} out of produce order"
        offsets = [m.offset() for m in records if m.partition() == partition]
        assert offsets == sorted(set(offsets))


def test_produce_restart_produce_consume(broker):
    topic = unique_topic("restart")
    create_topic(broker.bootstrap, topic, partitions=3)
    first = produce_round(broker, topic, 0, 3000)
    last_before = {}
    for report in first.reports:
        last_before[report.partition] = max(report.offset, last_before.get(report.partition, -1))

    broker.restart()
    second = produce_round(broker, topic, 1, 3000)
    for report in second.reports:
        assert report.offset > last_before.get(report.partition, -1), (
            f"offset {report.offset} in partition {report.partition} reused after a restart"
        )
    check_log(broker, topic, 3, [first, second])


def test_several_restarts_with_idempotent_producers(broker):
    topic = unique_topic("restarts")
    create_topic(broker.bootstrap, topic, partitions=2)
    recorders = []
    for round_number in range(4):
        recorders.append(produce_round(broker, topic, round_number, 1000,
                                       **{"enable.idempotence": True,
                                          "compression.type": "lz4"}))
        broker.restart()
    check_log(broker, topic, 2, recorders)


def test_one_producer_across_a_restart(broker):
    """The same producer instance (same idempotent producer id) keeps going after the broker
    restarts under it."""
    topic = unique_topic("same-producer")
    create_topic(broker.bootstrap, topic, partitions=1)
    prod = producer(broker.bootstrap, **{"enable.idempotence": True, "acks": "all",
                                         "reconnect.backoff.max.ms": 500})
    first = Recorder()
    produce_all(prod, topic, [(None, b"a%04d" % i) for i in range(500)], first)
    first.assert_all_delivered(500)
    broker.restart()
    second = Recorder()
    produce_all(prod, topic, [(None, b"b%04d" % i) for i in range(500)], second)
    second.assert_all_delivered(500)
    check_log(broker, topic, 1, [first, second])


def test_restart_with_nothing_produced_and_an_empty_topic(broker):
    topic = unique_topic("empty")
    create_topic(broker.bootstrap, topic, partitions=2)
    broker.restart()
    broker.restart()
    assert read_partitions(broker.bootstrap, topic, 2, expected=0) == []
    rec = produce_round(broker, topic, 0, 10)
    check_log(broker, topic, 2, [rec])
