"""Helpers for driving a broker with confluent-kafka (librdkafka): admin calls, producing with
delivery reports, and reading partitions back with assign() (no consumer groups)."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from array import array
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until

ADMIN_TIMEOUT_S = 30.0
# SequenceProducer's offset of a value that was not acknowledged (yet).
NOT_ACKED = -1
# librdkafka's own log lines go through Python logging, so pytest shows them with a failing
# test instead of printing them (from clients of earlier tests) into the run's output.
LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")


def unique_topic(prefix: str) -> str:
    """A topic name no other test uses: the prefix made legal, plus a random suffix."""
    legal = re.sub(r"[^a-zA-Z0-9._-]", "-", prefix)[:80]
    return f"{legal}-{uuid.uuid4().hex[:8]}"


def admin(bootstrap: str, **config) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA_LOGGER, **config})


def create_topic(bootstrap: str, name: str, partitions: int = 1,
                 config: dict[str, str] | None = None) -> None:
    """Creates a topic and waits until metadata shows all its partitions with a leader."""
    client = admin(bootstrap)
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=ADMIN_TIMEOUT_S,
        request_timeout=ADMIN_TIMEOUT_S,
    )
    futures[name].result(timeout=ADMIN_TIMEOUT_S)
    wait_for_partitions(client, name, partitions)


def wait_for_partitions(client: AdminClient, name: str, partitions: int,
                        timeout: float = ADMIN_TIMEOUT_S):
    """Waits until metadata lists `partitions` partitions of `name`, each with a leader."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        metadata = client.list_topics(topic=name, timeout=10)
        topic = metadata.topics.get(name)
        last = topic
        if (topic is not None and topic.error is None and len(topic.partitions) == partitions
                and all(p.leader >= 0 and p.error is None for p in topic.partitions.values())):
            return topic
        if time.monotonic() > deadline:
            pytest.fail(
                f"metadata never showed {partitions} led partitions of {name!r}; last: "
                f"error={getattr(last, 'error', None)} partitions="
                f"{ {k: (v.leader, v.error) for k, v in getattr(last, 'partitions', {}).items()} }"
            )
        time.sleep(0.1)


@dataclass
class Delivery:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    error: KafkaError | None
    timestamp: tuple[int, int] | None = None


class Recorder:
    """A delivery-report callback that keeps every report in order of arrival."""

    def __init__(self):
        self.reports: list[Delivery] = []

    def __call__(self, err, msg):
        self.reports.append(Delivery(
            key=msg.key(), value=msg.value(), partition=msg.partition(), offset=msg.offset(),
            error=err, timestamp=msg.timestamp(),
        ))

    def errors(self) -> list[Delivery]:
        return [d for d in self.reports if d.error is not None]

    def assert_all_delivered(self, expected: int) -> None:
        errors = self.errors()
        assert not errors, (
            f"{len(errors)} of {len(self.reports)} deliveries failed; first: "
            f"{errors[0].error!r}"
        )
        assert len(self.reports) == expected, (
            f"{len(self.reports)} delivery reports for {expected} messages"
        )


def producer(bootstrap: str, **config) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA_LOGGER, **config})


def produce_all(prod: Producer, topic: str, items, recorder: Recorder, flush_timeout=60.0,
                **kwargs) -> None:
    """Produces `(key, value)` pairs in order (retrying on a full local queue) and flushes."""
    for key, value in items:
        while True:
            try:
                prod.produce(topic, key=key, value=value, on_delivery=recorder, **kwargs)
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    remaining = prod.flush(flush_timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {flush_timeout}s"


class SequenceProducer:
    """Produces b"%010d" % n for n = 0, 1, 2, … in a thread until stopped, recording which
    values were acknowledged, where. `config` is the librdkafka producer configuration;
    `max_outstanding` (if set) paces the thread: it waits while that many values have no
    delivery report yet, so a slow broker is not handed a queue it takes minutes to drain."""

    def __init__(self, bootstrap: str, topic: str, config: dict,
                 max_outstanding: int | None = None, rate: float | None = None):
        self.topic = topic
        # Values per second at most (None: as fast as the producer goes).
        self.rate = rate
        self.max_outstanding = max_outstanding
        self.fatal: list[KafkaError] = []
        self.errors: list[str] = []
        self.failed = 0
        self.acked = 0
        self.max_acked = -1
        # Indexed by value: offset (or NOT_ACKED) and partition.
        self.offsets = array("q")
        self.partitions = bytearray()
        self.produced = 0
        # Silences of more than 100 ms between two acknowledgements on one partition, as
        # (start, end, partition) in time.monotonic().
        self.gaps: list[tuple[float, float, int]] = []
        self._last_ack: dict[int, float] = {}
        self._stop = threading.Event()
        self.producer = producer(bootstrap, **config, error_cb=self._on_error)
        self._thread = threading.Thread(target=self._run, name="sequence-producer", daemon=True)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal.append(err)
        self.errors.append(repr(err))

    def _on_delivery(self, err, msg) -> None:
        value = int(msg.value())
        if err is not None:
            self.failed += 1
            if len(self.errors) < 1000:
                self.errors.append(f"delivery of {value}: {err!r}")
            return
        self.offsets[value] = msg.offset()
        self.partitions[value] = msg.partition()
        now = time.monotonic()
        last = self._last_ack.get(msg.partition())
        if last is not None and now - last > 0.1:
            self.gaps.append((last, now, msg.partition()))
        self._last_ack[msg.partition()] = now
        self.acked += 1
        if value > self.max_acked:
            self.max_acked = value

    def _run(self) -> None:
        prod = self.producer
        n = 0
        started = time.monotonic()
        while not self._stop.is_set() and not self.fatal:
            if self.rate is not None and n > self.rate * (time.monotonic() - started):
                prod.poll(0.005)
                continue
            if (self.max_outstanding is not None
                    and n - self.acked - self.failed >= self.max_outstanding):
                prod.poll(0.01)
                continue
            self.offsets.append(NOT_ACKED)
            self.partitions.append(0)
            while True:
                try:
                    prod.produce(self.topic, value=b"%010d" % n, on_delivery=self._on_delivery)
                    break
                except BufferError:
                    prod.poll(0.01)
                    if self._stop.is_set():
                        self.offsets.pop()
                        self.partitions.pop()
                        self.produced = n
                        return
            n += 1
            self.produced = n
            if n % 500 == 0:
                prod.poll(0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the producer thread did not stop"

    def wait_for_ack_of_value_at_least(self, value: int, timeout: float, what: str) -> None:
        def acked_enough():
            if self.fatal:
                pytest.fail(f"the producer hit a fatal error: {self.fatal}")
            return self.max_acked >= value

        wait_until(acked_enough, timeout, what)


def consumer(bootstrap: str, **config) -> Consumer:
    """A consumer for assign()-style reading. librdkafka insists on a group.id, but nothing
    here joins a group or commits offsets: partitions are assigned with explicit offsets."""
    settings = {
        "bootstrap.servers": bootstrap,
        "logger": LIBRDKAFKA_LOGGER,
        "group.id": f"unused-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    settings.update(config)
    return Consumer(settings)


def read_partitions(bootstrap: str, topic: str, partitions, expected: int | None = None,
                    timeout: float = 60.0, **config) -> list:
    """Every record of the given partitions from the beginning, as confluent Messages.

    Reads until each partition reports end-of-partition (and, if `expected` is given, at least
    that many records arrived), then keeps reading briefly so extra records would show.
    """
    if isinstance(partitions, int):
        partitions = range(partitions)
    partitions = list(partitions)
    cons = consumer(bootstrap, **config)
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in partitions])  # OFFSET_BEGINNING
        records = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        settle_until = None
        while True:
            now = time.monotonic()
            done = len(at_end) == len(partitions) and (expected is None or len(records) >= expected)
            if done and settle_until is None:
                settle_until = now + 0.5
            if settle_until is not None and now >= settle_until:
                return records
            if now > deadline:
                pytest.fail(
                    f"read {len(records)} records of {topic!r} (expected {expected}) in "
                    f"{timeout}s; partitions at end: {sorted(at_end)} of {partitions}"
                )
            for msg in cons.consume(num_messages=10_000, timeout=0.2):
                err = msg.error()
                if err is None:
                    records.append(msg)
                    at_end.discard(msg.partition())
                elif err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                else:
                    pytest.fail(f"consumer error on {topic!r}: {err!r}")
    finally:
        cons.close()


def kafka_error(exc: BaseException) -> KafkaError:
    assert isinstance(exc, KafkaException), f"expected a KafkaException, got {exc!r}"
    return exc.args[0]
