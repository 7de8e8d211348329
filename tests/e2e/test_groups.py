"""Consumer groups end to end: real clients (librdkafka through confluent-kafka, and
kafka-python) against the real broker.

Consumers that must be SIGKILLed run as separate OS processes (the WORKER script below): each
reports what happens to it (rebalance callbacks, its current assignment and member id, the
records it consumed, its commits) as JSON lines on stdout, which the test reads.

Brokers here mostly run with a 0 ms initial rebalance delay, a 5-partition
`__consumer_offsets` and a 1 s minimum session timeout, so groups form and fail over quickly;
test_offsets_topic_is_internal_with_the_defaults keeps the built-in defaults.
"""

from __future__ import annotations

import json
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

import wire
from kafkautil import (
    ADMIN_TIMEOUT_S,
    LIBRDKAFKA_LOGGER,
    Recorder,
    admin,
    create_topic,
    produce_all,
    producer,
    unique_topic,
)

OFFSETS_TOPIC = "__consumer_offsets"
OFFSET_INVALID = -1001  # librdkafka: no committed offset

FAST = {
    "CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "CAIRN_BROKER_OFFSETS_TOPIC_NUM_PARTITIONS": "5",
    "CAIRN_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
}


@pytest.fixture
def fast_broker(start_broker):
    return start_broker(env=FAST)


def unique_group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- consumer processes ---------------------------------------------------------------------

WORKER = r'''
import json, os, signal, sys, threading, time
from confluent_kafka import Consumer, TopicPartition, KafkaException

spec = json.loads(sys.argv[1])
topic = spec["topic"]
lock = threading.Lock()

def emit(ev, **fields):
    fields["ev"] = ev
    fields["t"] = time.time()
    with lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

def err_fields(err):
    return {"code": err.code(), "name": err.name(), "str": err.str()}

def parts(tps):
    return sorted(tp.partition for tp in tps)

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
config = dict(spec["config"])
config["error_cb"] = lambda err: emit("error", **err_fields(err))
consumer = Consumer(config)
consumer.subscribe(
    [topic],
    on_assign=lambda c, tps: emit("on_assign", partitions=parts(tps)),
    on_revoke=lambda c, tps: emit("on_revoke", partitions=parts(tps)),
    on_lost=lambda c, tps: emit("on_lost", partitions=parts(tps)),
)
emit("started", pid=os.getpid())
commit_at = spec.get("commit_at")
stop_at = spec.get("stop_at")
emit_records = spec.get("emit_records", True)
consumed = 0
processed = {}
stopped = False
last_assignment = None
last_member = None
while not stop.is_set():
    for msg in consumer.consume(num_messages=100, timeout=0.1):
        err = msg.error()
        if err is not None:
            emit("consume_error", **err_fields(err))
            continue
        if stopped:
            continue
        if emit_records:
            key = msg.key()
            emit("msg", p=msg.partition(), o=msg.offset(),
                 k=None if key is None else key.decode(errors="replace"))
        processed[msg.partition()] = msg.offset() + 1
        consumed += 1
        if commit_at is not None and consumed == commit_at:
            offsets = [TopicPartition(topic, p, o) for p, o in sorted(processed.items())]
            try:
                result = consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                emit("commit_failed", **err_fields(exc.args[0]))
            else:
                emit("committed", offsets={str(tp.partition): tp.offset for tp in result},
                     errors=[str(tp.error) for tp in result if tp.error is not None])
        if stop_at is not None and consumed >= stop_at:
            stopped = True
            emit("stopped", consumed=consumed)
    assignment = parts(consumer.assignment())
    if assignment != last_assignment:
        last_assignment = assignment
        emit("assignment", partitions=assignment)
    member = consumer.memberid()
    if member != last_member:
        last_member = member
        emit("member", id=member)
consumer.close()
emit("closed")
'''


class Worker:
    """One consumer process running WORKER, with its reported events."""

    def __init__(self, name: str, spec: dict, log_dir: Path):
        self.name = name
        self.stderr_path = log_dir / f"worker-{name}-{uuid.uuid4().hex[:6]}.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(spec)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        self.events: list[dict] = []
        self.eof = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"ev": "garbage", "line": line.rstrip("\n")}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def snapshot(self) -> list[dict]:
        with self._cond:
            return list(self.events)

    def count(self) -> int:
        with self._cond:
            return len(self.events)

    def of(self, kind: str, since: int = 0) -> list[dict]:
        return [e for e in self.snapshot()[since:] if e["ev"] == kind]

    def assignment(self) -> list[int] | None:
        found = self.of("assignment")
        return found[-1]["partitions"] if found else None

    def member_id(self) -> str | None:
        found = [e for e in self.of("member") if e["id"]]
        return found[-1]["id"] if found else None

    def records(self) -> list[tuple[int, int]]:
        return [(e["p"], e["o"]) for e in self.of("msg")]

    def callbacks(self, since: int = 0) -> list[dict]:
        return [e for e in self.snapshot()[since:]
                if e["ev"] in ("on_assign", "on_revoke", "on_lost")]

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.name} did not exit within {timeout}s of SIGTERM\n"
                        f"{self.describe()}")

    def describe(self) -> str:
        events = self.snapshot()
        interesting = [e for e in events if e["ev"] != "msg"]
        try:
            stderr = self.stderr_path.read_text()[-3000:]
        except OSError:
            stderr = ""
        return (f"worker {self.name} (pid {self.proc.pid}, exit {self.proc.poll()}): "
                f"{len(events)} events, {len(events) - len(interesting)} records; "
                f"last non-record events: {interesting[-15:]}\nstderr tail: {stderr}")

    def cleanup(self) -> None:
        if self.running():
            self.kill9()
        self._reader.join(5)
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path):
    """`spawn(name, bootstrap, topic, group, config={...}, **options)` starts a consumer
    process; all are SIGKILLed at teardown."""
    started: list[Worker] = []

    def start(name: str, bootstrap: str, topic: str, group: str, config: dict | None = None,
              **options) -> Worker:
        settings = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": f"worker-{name}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "reconnect.backoff.max.ms": 500,
        }
        settings.update(config or {})
        worker = Worker(name, {"topic": topic, "config": settings, **options}, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.cleanup()


def wait_for(predicate, timeout: float, what: str, workers=(), interval: float = 0.05):
    """Polls `predicate` until truthy (returned); on timeout fails naming `what` and showing
    the workers' recent events."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            details = "\n".join(w.describe() for w in workers)
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{details}")
        time.sleep(interval)


def wait_settled(workers, partitions: int, timeout: float, hold: float = 1.5):
    """Waits until the workers' current assignments are non-empty, disjoint and together cover
    partitions 0..partitions-1, unchanged for `hold` seconds; returns them."""
    state = {"value": None, "since": 0.0}

    def settled():
        assignments = tuple(tuple(w.assignment() or ()) for w in workers)
        flat = sorted(p for a in assignments for p in a)
        if any(not a for a in assignments) or flat != list(range(partitions)):
            state["value"] = None
            return None
        now = time.monotonic()
        if assignments != state["value"]:
            state["value"], state["since"] = assignments, now
            return None
        return [list(a) for a in assignments] if now - state["since"] >= hold else None

    return wait_for(settled, timeout,
                    f"{len(workers)} consumers to settle on a disjoint, complete assignment of "
                    f"{partitions} partitions", workers)


# --- admin helpers -------------------------------------------------------------------------

def describe_group(client, group: str):
    futures = client.describe_consumer_groups([group], request_timeout=ADMIN_TIMEOUT_S)
    return futures[group].result(timeout=ADMIN_TIMEOUT_S)


def wait_group_state(client, group: str, state, members: int, timeout: float = 30.0):
    last = {}

    def check():
        description = describe_group(client, group)
        last["d"] = (description.state, len(description.members))
        return description if last["d"] == (state, members) else None

    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"group {group} never reached {state} with {members} members; "
                        f"last (state, members): {last.get('d')}")
        time.sleep(0.2)


def committed_offsets(client, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (OffsetFetch through the AdminClient); -1001: none."""
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)])
    futures = client.list_consumer_group_offsets([request], request_timeout=ADMIN_TIMEOUT_S)
    result = futures[group].result(timeout=ADMIN_TIMEOUT_S)
    errors = [(tp.partition, tp.error) for tp in result.topic_partitions if tp.error]
    assert not errors, f"OffsetFetch for {group}: partition errors {errors}"
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def listed_groups(client, states=None) -> dict[str, object]:
    kwargs = {"request_timeout": ADMIN_TIMEOUT_S}
    if states is not None:
        kwargs["states"] = set(states)
    result = client.list_consumer_groups(**kwargs).result(timeout=ADMIN_TIMEOUT_S)
    assert not result.errors, f"ListGroups errors: {result.errors}"
    return {g.group_id: g for g in result.valid}


def produce_keyed(bootstrap: str, topic: str, count: int, prefix: str = "k",
                  batch_bytes: int = 1_000_000) -> Recorder:
    """`count` keyed records (keys prefix0, prefix1, ...). Small `batch_bytes` make small
    batches, so a consumer's fetches interleave partitions."""
    recorder = Recorder()
    produce_all(producer(bootstrap, **{"linger.ms": 5, "batch.size": batch_bytes}), topic,
                [(f"{prefix}{i}".encode(), f"v{i}".encode()) for i in range(count)], recorder)
    recorder.assert_all_delivered(count)
    return recorder


def group_consumer(bootstrap: str, group: str, **config) -> Consumer:
    settings = {
        "bootstrap.servers": bootstrap,
        "logger": LIBRDKAFKA_LOGGER,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "reconnect.backoff.max.ms": 500,
    }
    settings.update(config)
    return Consumer(settings)


def poll_until_assigned(cons: Consumer, partitions: int, timeout: float = 30.0) -> list:
    """Polls (keeping any records) until the consumer holds `partitions` partitions."""
    records = []
    deadline = time.monotonic() + timeout
    while len(cons.assignment()) != partitions:
        if time.monotonic() > deadline:
            pytest.fail(f"the consumer was not assigned {partitions} partitions in {timeout}s; "
                        f"it holds {cons.assignment()}")
        msg = cons.poll(0.1)
        if msg is not None and msg.error() is None:
            records.append(msg)
    return records


def consume_first_offsets(cons: Consumer, partitions, timeout: float = 30.0) -> dict[int, int]:
    """The offset of the first record the (subscribed) consumer receives in each partition."""
    first: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while set(first) != set(partitions):
        if time.monotonic() > deadline:
            pytest.fail(f"records arrived only from partitions {sorted(first)} of "
                        f"{sorted(partitions)} in {timeout}s")
        for msg in cons.consume(num_messages=500, timeout=0.2):
            if msg.error() is None:
                first.setdefault(msg.partition(), msg.offset())
    return first


# --- the wire protocol, for what the clients do not expose ---------------------------------

API_OFFSET_COMMIT = 8
API_JOIN_GROUP = 11
API_SYNC_GROUP = 14
API_OFFSET_DELETE = 47

ERROR_INVALID_TOPIC_EXCEPTION = 17
ERROR_ILLEGAL_GENERATION = 22
ERROR_UNKNOWN_MEMBER_ID = 25
ERROR_REBALANCE_IN_PROGRESS = 27
ERROR_GROUP_ID_NOT_FOUND = 69
ERROR_GROUP_SUBSCRIBED_TO_TOPIC = 86


def _bytes(data: bytes | None) -> bytes:
    if data is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(data)) + data


def _array(items: list[bytes]) -> bytes:
    return struct.pack(">i", len(items)) + b"".join(items)


def _read_bytes(reader: wire.Reader) -> bytes | None:
    length = reader.take(">i")
    if length < 0:
        return None
    data = reader.data[reader.pos:reader.pos + length]
    reader.pos += length
    return data


def subscription_v0(topic: str) -> bytes:
    """ConsumerProtocolSubscription v0: the `consumer` protocol's member metadata."""
    return struct.pack(">h", 0) + _array([wire.string(topic)]) + _bytes(None)


def assignment_v0(topic: str, partitions: list[int]) -> bytes:
    """ConsumerProtocolAssignment v0."""
    return (struct.pack(">h", 0)
            + _array([wire.string(topic) + _array([struct.pack(">i", p) for p in partitions])])
            + _bytes(None))


def join_group_v1(correlation_id: int, group: str, member_id: str, topic: str,
                  session_ms: int = 10_000, rebalance_ms: int = 10_000) -> bytes:
    body = (wire.string(group) + struct.pack(">ii", session_ms, rebalance_ms)
            + wire.string(member_id) + wire.string("consumer")
            + _array([wire.string("range") + _bytes(subscription_v0(topic))]))
    return wire.frame(wire.header_v1(API_JOIN_GROUP, 1, correlation_id) + body)


def parse_join_group_v1(payload: bytes) -> dict:
    reader = wire.Reader(payload)
    reader.take(">i")  # correlation id
    error, generation = reader.take(">hi")
    protocol = reader.string()
    leader = reader.string()
    member_id = reader.string()
    members = [(reader.string(), _read_bytes(reader)) for _ in range(reader.take(">i"))]
    return {"error": error, "generation": generation, "protocol": protocol, "leader": leader,
            "member_id": member_id, "members": members}


def sync_group_v0(correlation_id: int, group: str, generation: int, member_id: str,
                  assignments: dict[str, bytes]) -> bytes:
    body = (wire.string(group) + struct.pack(">i", generation) + wire.string(member_id)
            + _array([wire.string(m) + _bytes(a) for m, a in assignments.items()]))
    return wire.frame(wire.header_v1(API_SYNC_GROUP, 0, correlation_id) + body)


def parse_sync_group_v0(payload: bytes) -> tuple[int, bytes | None]:
    reader = wire.Reader(payload)
    reader.take(">i")
    error = reader.take(">h")
    return error, _read_bytes(reader)


def offset_commit_v2(correlation_id: int, group: str, generation: int, member_id: str,
                     topic: str, offsets: dict[int, int]) -> bytes:
    body = (wire.string(group) + struct.pack(">i", generation) + wire.string(member_id)
            + struct.pack(">q", -1)  # retention: the broker's default
            + _array([wire.string(topic) + _array(
                [struct.pack(">iq", p, o) + wire.string(None) for p, o in offsets.items()])]))
    return wire.frame(wire.header_v1(API_OFFSET_COMMIT, 2, correlation_id) + body)


def parse_offset_commit_v2(payload: bytes) -> dict[int, int]:
    """{partition: error code} (one topic)."""
    reader = wire.Reader(payload)
    reader.take(">i")
    errors = {}
    for _ in range(reader.take(">i")):
        reader.string()
        for _ in range(reader.take(">i")):
            partition, error = reader.take(">ih")
            errors[partition] = error
    return errors


def offset_delete_v0(correlation_id: int, group: str, topic: str, partitions: list[int]) -> bytes:
    body = wire.string(group) + _array(
        [wire.string(topic) + _array([struct.pack(">i", p) for p in partitions])])
    return wire.frame(wire.header_v1(API_OFFSET_DELETE, 0, correlation_id) + body)


def offset_delete(bootstrap: str, group: str, topic: str, partitions: list[int]):
    """OffsetDelete v0 (KIP-496), which neither client exposes: (top-level error,
    {partition: error})."""
    payload = wire.roundtrip(bootstrap, offset_delete_v0(1, group, topic, partitions))
    reader = wire.Reader(payload)
    reader.take(">i")
    error = reader.take(">h")
    reader.take(">i")  # throttle_time_ms
    results = {}
    for _ in range(reader.take(">i")):
        reader.string()
        for _ in range(reader.take(">i")):
            partition, partition_error = reader.take(">ih")
            results[partition] = partition_error
    return error, results


def raw_commit(sock, correlation_id: int, group: str, generation: int, member_id: str,
               topic: str, offsets: dict[int, int]) -> dict[int, int]:
    sock.sendall(offset_commit_v2(correlation_id, group, generation, member_id, topic, offsets))
    return parse_offset_commit_v2(wire.recv_frame(sock))


# --- 1. eager rebalancing, failover after SIGKILL, DescribeGroups ---------------------------

@pytest.mark.timeout(120)
def test_three_consumers_split_partitions_and_fail_over_after_sigkill(fast_broker, spawn):
    topic, group = unique_topic("split"), unique_group("split")
    create_topic(fast_broker.bootstrap, topic, partitions=6)
    session_ms = 4000
    config = {"session.timeout.ms": session_ms}
    workers = [spawn(f"c{n}", fast_broker.bootstrap, topic, group, config) for n in range(3)]
    assignments = wait_settled(workers, 6, timeout=45)
    assert all(len(a) == 2 for a in assignments), (
        f"6 partitions over 3 consumers with the range assignor: {assignments}")

    client = admin(fast_broker.bootstrap)
    description = wait_group_state(client, group, ConsumerGroupState.STABLE, 3)
    assert not description.is_simple_consumer_group
    assert description.partition_assignor == "range"
    by_member = {m.member_id: m for m in description.members}
    ids = [wait_for(w.member_id, 10, f"{w.name}'s member id", [w]) for w in workers]
    assert set(by_member) == set(ids), (by_member.keys(), ids)
    for worker, member_id, assignment in zip(workers, ids, assignments):
        member = by_member[member_id]
        assert member.client_id == f"worker-{worker.name}"
        assert member.host, f"no client host for {member_id}"
        described = sorted(tp.partition for tp in member.assignment.topic_partitions
                           if tp.topic == topic)
        assert described == assignment, (
            f"DescribeGroups shows {member_id} with {described}, the consumer holds "
            f"{assignment}")

    victim, survivors = workers[1], [workers[0], workers[2]]
    lost = assignments[1]
    victim.kill9()
    killed_at = time.monotonic()
    after = wait_settled(survivors, 6, timeout=session_ms / 1000 + 15)
    took = time.monotonic() - killed_at
    assert sorted(after[0] + after[1]) == list(range(6))
    assert set(lost) <= set(after[0]) | set(after[1])
    assert all(len(a) == 3 for a in after), after
    description = wait_group_state(client, group, ConsumerGroupState.STABLE, 2)
    assert {m.member_id for m in description.members} == {ids[0], ids[2]}
    for worker, assignment in zip(survivors, after):
        member = next(m for m in description.members if m.member_id == worker.member_id())
        assert sorted(tp.partition for tp in member.assignment.topic_partitions) == assignment
    print(f"failover after SIGKILL took {took:.1f}s (session timeout {session_ms} ms)")

    for worker in survivors:
        assert worker.terminate() == 0, worker.describe()
    # Both left with LeaveGroup: the group is empty at once, not after a session timeout.
    wait_group_state(client, group, ConsumerGroupState.EMPTY, 0, timeout=10)


# --- 2. commit, SIGKILL, resume: at least once, redelivering exactly the uncommitted tail ----

@pytest.mark.timeout(120)
def test_commit_sigkill_resume_redelivers_exactly_the_uncommitted_tail(fast_broker, spawn):
    topic, group = unique_topic("resume"), unique_group("resume")
    partitions, total, commit_at, stop_at = 3, 300, 120, 200
    create_topic(fast_broker.bootstrap, topic, partitions=partitions)
    recorder = produce_keyed(fast_broker.bootstrap, topic, total, batch_bytes=500)
    produced = {(r.partition, r.offset): r.key.decode() for r in recorder.reports}
    ends = {p: 1 + max(o for q, o in produced if q == p) for p in range(partitions)}

    config = {"session.timeout.ms": 3000, "max.partition.fetch.bytes": 2048}
    first = spawn("first", fast_broker.bootstrap, topic, group, config,
                  commit_at=commit_at, stop_at=stop_at)
    wait_for(lambda: first.of("stopped"), 45, "the first consumer to process 200 records",
             [first])
    assert not first.of("commit_failed"), first.describe()
    (commit,) = first.of("committed")
    assert commit["errors"] == [], commit
    committed = {int(p): o for p, o in commit["offsets"].items()}
    first_records = first.records()
    assert len(first_records) == stop_at
    before_commit = first_records[:commit_at]
    # The commit names, per partition, the offset after the last record processed before it.
    expected_commit = {}
    for p, o in before_commit:
        expected_commit[p] = o + 1
    assert committed == expected_commit, (committed, expected_commit)
    first.kill9()

    client = admin(fast_broker.bootstrap)
    stored = committed_offsets(client, group, topic, partitions)
    assert stored == {p: committed.get(p, OFFSET_INVALID) for p in range(partitions)}, (
        f"OffsetFetch after the consumer was killed: {stored}, acknowledged commit: {committed}")
    probe = group_consumer(fast_broker.bootstrap, group)
    try:
        seen = probe.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        assert {tp.partition: tp.offset for tp in seen} == stored
    finally:
        probe.close()

    second = spawn("second", fast_broker.bootstrap, topic, group, config)
    # Without a commit, a partition is read from its first record (not necessarily offset 0:
    # a log may start with a control batch).
    firsts = {p: min(o for q, o in produced if q == p) for p in range(partitions)}
    starts = {p: committed.get(p, firsts[p]) for p in range(partitions)}
    remaining = sum(ends[p] - starts[p] for p in range(partitions))
    # Waits for the records after the commit (the checks below say what is missing, if any),
    # then a little longer: anything extra (duplicates, records before the commit) shows.
    deadline = time.monotonic() + 30
    while len(second.records()) < remaining and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    second_records = second.records()
    for p in range(partitions):
        mine = [o for q, o in second_records if q == p]
        assert mine == list(range(starts[p], ends[p])), (
            f"partition {p}: the second consumer got offsets {mine[:5]}…{mine[-5:]} "
            f"({len(mine)}); expected {starts[p]}..{ends[p] - 1} (committed {committed.get(p)})")

    everything = set(first_records) | set(second_records)
    assert everything == set(produced), (
        f"never delivered: {sorted(set(produced) - everything)[:10]}")
    redelivered = set(first_records) & set(second_records)
    tail = {(p, o) for p, o in first_records[commit_at:]}
    assert redelivered == tail, (
        f"redelivered {len(redelivered)} records, the uncommitted tail has {len(tail)}: "
        f"extra {sorted(redelivered - tail)[:5]}, missing {sorted(tail - redelivered)[:5]}")
    assert len(redelivered) == stop_at - commit_at


# --- 3. kafka-python groups -----------------------------------------------------------------

def kp_group_consumer(bootstrap: str, group: str, *topics: str) -> KafkaConsumer:
    return KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=6000, heartbeat_interval_ms=500)


@pytest.mark.timeout(120)
def test_kafka_python_commit_resume_and_partition_split(fast_broker):
    bootstrap = fast_broker.bootstrap
    topic, group = unique_topic("kp-group"), unique_group("kp-group")
    create_topic(bootstrap, topic, partitions=2)
    recorder = produce_keyed(bootstrap, topic, 100)
    produced = {(r.partition, r.offset) for r in recorder.reports}

    first = kp_group_consumer(bootstrap, group, topic)
    processed: list[tuple[int, int]] = []
    deadline = time.monotonic() + 45
    while len(processed) < 60:
        assert time.monotonic() < deadline, f"kafka-python consumed {len(processed)} of 60"
        for batch in first.poll(timeout_ms=200).values():
            for record in batch:
                if len(processed) < 60:
                    processed.append((record.partition, record.offset))
    assignment = first.assignment()
    assert assignment == {KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)}
    commit = {}
    for p, o in processed:
        commit[p] = o + 1
    first.commit({KpTopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                  for p, o in commit.items()}, timeout_ms=30_000)
    first.close(autocommit=False)

    second = kp_group_consumer(bootstrap, group, topic)
    try:
        got: list[tuple[int, int]] = []
        deadline = time.monotonic() + 45
        while len(got) < 40 and time.monotonic() < deadline:
            for batch in second.poll(timeout_ms=200).values():
                got.extend((r.partition, r.offset) for r in batch)
        for batch in second.poll(timeout_ms=1000).values():
            got.extend((r.partition, r.offset) for r in batch)
        for p in (0, 1):
            assert second.committed(KpTopicPartition(topic, p)) == commit.get(p), (
                f"kafka-python committed() for partition {p}")
            mine = [o for q, o in got if q == p]
            first_offset = min(o for q, o in produced if q == p)
            end = 1 + max(o for q, o in produced if q == p)
            assert mine == list(range(commit.get(p, first_offset), end)), (
                f"partition {p}: resumed at {mine[:3]}, committed {commit.get(p)}")
        assert set(got) | set(processed) == produced
        assert not set(got) & set(processed), "records before the commit were redelivered"
    finally:
        second.close(autocommit=False)

    # Two kafka-python consumers in one group split a 4-partition topic.
    topic2, group2 = unique_topic("kp-split"), unique_group("kp-split")
    create_topic(bootstrap, topic2, partitions=4)
    stop = threading.Event()
    states = [{"assignment": set(), "records": [], "error": None} for _ in range(2)]

    def run(state):
        cons = kp_group_consumer(bootstrap, group2, topic2)
        try:
            while not stop.is_set():
                for batch in cons.poll(timeout_ms=100).values():
                    state["records"].extend((r.partition, r.offset) for r in batch)
                state["assignment"] = {tp.partition for tp in cons.assignment()}
        except Exception as exc:  # reported by the test thread
            state["error"] = repr(exc)
        finally:
            cons.close(autocommit=False)

    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in states]
    for thread in threads:
        thread.start()
    try:
        hold = {"value": None, "since": 0.0}

        def split():
            assert not any(s["error"] for s in states), [s["error"] for s in states]
            a, b = (frozenset(s["assignment"]) for s in states)
            ok = a and b and not (a & b) and a | b == {0, 1, 2, 3}
            if not ok or (a, b) != hold["value"]:
                hold["value"], hold["since"] = ((a, b) if ok else None), time.monotonic()
                return None
            return (a, b) if time.monotonic() - hold["since"] > 1.5 else None

        a, b = wait_for(split, 45, "two kafka-python consumers to split 4 partitions")
        assert len(a) == 2 and len(b) == 2, (a, b)
        recorder = produce_keyed(bootstrap, topic2, 80)
        produced2 = {(r.partition, r.offset) for r in recorder.reports}
        wait_for(lambda: {x for s in states for x in s["records"]} >= produced2, 30,
                 "both kafka-python consumers to receive the 80 records")
        for state, owned in zip(states, (a, b)):
            outside = [x for x in state["records"] if x[0] not in owned]
            assert not outside, f"records from partitions not assigned ({owned}): {outside[:5]}"
        assert sum(len(s["records"]) for s in states) == 80
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


# --- 4. static membership ------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_static_member_restart_within_session_timeout_causes_no_rebalance(fast_broker, spawn):
    bootstrap = fast_broker.bootstrap
    topic, group = unique_topic("static"), unique_group("static")
    create_topic(bootstrap, topic, partitions=4)
    instance = f"static-{uuid.uuid4().hex[:6]}"
    session_ms = 10_000
    static_config = {"group.instance.id": instance, "session.timeout.ms": session_ms}

    # The static member joins first, so it is the group leader.
    static = spawn("static", bootstrap, topic, group, static_config)
    wait_settled([static], 4, timeout=30, hold=0.5)
    other = spawn("other", bootstrap, topic, group)
    static_before, other_before = wait_settled([static, other], 4, timeout=45)
    client = admin(bootstrap)
    described = wait_group_state(client, group, ConsumerGroupState.STABLE, 2)
    instances = {m.member_id: m.group_instance_id for m in described.members}
    static_id, other_id = static.member_id(), other.member_id()
    assert instances == {static_id: instance, other_id: None}, instances

    mark = other.count()
    static.kill9()
    killed_at = time.monotonic()
    restarted = spawn("static-again", bootstrap, topic, group, static_config)
    wait_for(lambda: restarted.assignment(), 20, "the restarted static member's assignment",
             [restarted, other])
    assert time.monotonic() - killed_at < session_ms / 1000, "restart took too long to count"
    assert restarted.assignment() == static_before, (
        f"the restarted static member got {restarted.assignment()}, it held {static_before}")
    # Past the old session's expiry: still no rebalance anywhere.
    time.sleep(max(0.0, killed_at + session_ms / 1000 + 3 - time.monotonic()))
    assert other.callbacks(mark) == [], (
        f"the other member saw a rebalance: {other.callbacks(mark)}")
    assert other.assignment() == other_before
    assert [e["partitions"] for e in restarted.callbacks()] == [static_before], (
        f"the restarted member's callbacks: {restarted.callbacks()}")
    assert restarted.assignment() == static_before
    described = wait_group_state(client, group, ConsumerGroupState.STABLE, 2, timeout=5)
    instances = {m.member_id: m.group_instance_id for m in described.members}
    new_id = restarted.member_id()
    assert new_id != static_id, "the rejoined static member kept its old member id"
    assert instances == {new_id: instance, other_id: None}, instances
    assert other.member_id() == other_id


# --- 5. cooperative rebalancing --------------------------------------------------------------

def check_incremental(worker: Worker) -> set[int]:
    """Checks the worker's callbacks are incremental (assign only adds partitions it does not
    own, revoke only removes owned ones, nothing lost) and returns what it owns."""
    owned: set[int] = set()
    for event in worker.callbacks():
        partitions = set(event["partitions"])
        if event["ev"] == "on_assign":
            assert not partitions & owned, (
                f"{worker.name}: on_assign {sorted(partitions)} re-assigned owned "
                f"{sorted(owned)} (eager, not incremental)")
            owned |= partitions
        elif event["ev"] == "on_revoke":
            assert partitions <= owned, f"{worker.name}: revoked {partitions} not owned {owned}"
            owned -= partitions
        else:
            pytest.fail(f"{worker.name}: partitions lost: {event}")
    return owned


@pytest.mark.timeout(150)
def test_cooperative_sticky_rebalances_incrementally(fast_broker, spawn):
    bootstrap = fast_broker.bootstrap
    topic, group = unique_topic("coop"), unique_group("coop")
    create_topic(bootstrap, topic, partitions=6)
    before = produce_keyed(bootstrap, topic, 60, prefix="a")
    config = {"partition.assignment.strategy": "cooperative-sticky"}

    one = spawn("one", bootstrap, topic, group, config)
    wait_settled([one], 6, timeout=30, hold=0.5)
    two = spawn("two", bootstrap, topic, group, config)
    first_split = wait_settled([one, two], 6, timeout=45)
    assert [len(a) for a in first_split] == [3, 3], first_split
    three = spawn("three", bootstrap, topic, group, config)
    final = wait_settled([one, two, three], 6, timeout=45)
    assert [len(a) for a in final] == [2, 2, 2], final
    # Sticky: nobody gave up a partition it keeps.
    assert set(final[0]) <= set(first_split[0]) and set(final[1]) <= set(first_split[1])

    workers = [one, two, three]
    for worker, assignment in zip(workers, final):
        assert check_incremental(worker) == set(assignment), worker.describe()
    revoked_by_one = sum(len(e["partitions"]) for e in one.callbacks() if e["ev"] == "on_revoke")
    assert revoked_by_one == 4, (
        f"the first consumer revoked {revoked_by_one} partitions in two rebalances (6 -> 3 -> 2); "
        f"callbacks {one.callbacks()}")
    added = [e["partitions"] for e in two.callbacks() if e["ev"] == "on_assign" and e["partitions"]]
    assert added == [first_split[1]], f"the second consumer's non-empty assigns: {added}"

    marks = [w.count() for w in workers]
    after = produce_keyed(bootstrap, topic, 60, prefix="b")
    late = {(r.partition, r.offset) for r in after.reports}
    early = {(r.partition, r.offset) for r in before.reports}

    def received():
        return {x for w in workers for x in w.records()}

    wait_for(lambda: received() >= late | early, 30, "all 120 records to be consumed", workers)
    time.sleep(0.5)
    for worker, assignment, mark in zip(workers, final, marks):
        mine = {(e["p"], e["o"]) for e in worker.of("msg", mark)}
        expected = {x for x in late if x[0] in assignment}
        assert mine & late == expected, (
            f"{worker.name} (partitions {assignment}) got {sorted(mine & late)[:6]}, expected "
            f"{sorted(expected)[:6]}")
        assert worker.callbacks(mark) == [], f"{worker.name} rebalanced again"
    for worker in workers:
        assert worker.terminate() == 0, worker.describe()


# --- 6. coordinator crash --------------------------------------------------------------------

class Committer:
    """A group consumer that commits what it consumed, synchronously, in a loop, in its own
    thread; tracks the last acknowledged and the highest attempted offset per partition."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        self.topic = topic
        # Small fetches, so records of every partition are interleaved in the local queue.
        self.consumer = group_consumer(bootstrap, group, **{"max.partition.fetch.bytes": 2048})
        self.consumer.subscribe([topic])
        self.lock = threading.Lock()
        self.acked: dict[int, int] = {}
        self.attempted: dict[int, int] = {}
        self.acks = 0
        self.failures: list[str] = []
        self.pause = threading.Event()
        self.paused = threading.Event()
        self.done = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        consumed: dict[int, int] = {}
        try:
            while not self.done.is_set():
                if self.pause.is_set():
                    self.paused.set()
                    time.sleep(0.02)
                    continue
                self.paused.clear()
                for msg in self.consumer.consume(num_messages=5, timeout=0.05):
                    if msg.error() is None:
                        consumed[msg.partition()] = msg.offset() + 1
                if not consumed:
                    continue
                offsets = dict(consumed)
                with self.lock:
                    for p, o in offsets.items():
                        self.attempted[p] = max(self.attempted.get(p, -1), o)
                try:
                    result = self.consumer.commit(
                        offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()],
                        asynchronous=False)
                except KafkaException as exc:
                    self.failures.append(repr(exc.args[0]))
                    continue
                if any(tp.error is not None for tp in result):
                    self.failures.append(repr([tp.error for tp in result]))
                    continue
                with self.lock:
                    for tp in result:
                        self.acked[tp.partition] = tp.offset
                    self.acks += 1
                time.sleep(0.005)
        except Exception as exc:  # reported by the test thread
            self.error = repr(exc)

    def snapshot(self):
        with self.lock:
            return dict(self.acked), dict(self.attempted), self.acks


@pytest.mark.timeout(240)
def test_committed_offsets_survive_coordinator_sigkill(fast_broker):
    broker = fast_broker
    topic, group = unique_topic("coord-crash"), unique_group("coord-crash")
    partitions = 3
    create_topic(broker.bootstrap, topic, partitions=partitions)
    recorder = produce_keyed(broker.bootstrap, topic, 60_000, batch_bytes=1000)
    firsts = {p: min(r.offset for r in recorder.reports if r.partition == p)
              for p in range(partitions)}
    rng = random.Random(6)

    committer = Committer(broker.bootstrap, topic, group)
    committer.thread.start()
    try:
        def acks_reach(n):
            def check():
                assert committer.error is None, committer.error
                return committer.snapshot()[2] >= n
            return check

        wait_for(acks_reach(20), 45, "the first 20 acknowledged commits")
        wait_for(lambda: len(committer.snapshot()[0]) == partitions, 30,
                 f"acknowledged commits for all {partitions} partitions")
        for cycle in range(1, 6):
            time.sleep(rng.uniform(0.0, 0.3))
            broker.kill9()
            committer.pause.set()
            broker.start()
            wait_for(committer.paused.is_set, 90,
                     f"the committer to pause after restart {cycle}")
            acked, attempted, acks = committer.snapshot()
            assert acked, "nothing was ever acknowledged"
            stored = None
            deadline = time.monotonic() + 30
            while stored is None:
                try:
                    # A new client each time: librdkafka 2.16's re-bootstrap after "all
                    # brokers down" can leave a long-lived admin client's coordinator
                    # requests unsent (seen: OffsetFetch never sent, 30 s timeout).
                    stored = committed_offsets(admin(broker.bootstrap), group, topic,
                                               partitions)
                except (KafkaException, AssertionError) as exc:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"OffsetFetch after restart {cycle}: {exc!r}")
                    time.sleep(0.2)
            for p, offset in acked.items():
                assert offset <= stored[p] <= attempted[p], (
                    f"restart {cycle}, partition {p}: committed offset {stored[p]}, last "
                    f"acknowledged commit {offset}, highest attempted {attempted[p]} "
                    f"(a committed offset went back, or names one never committed)")
            committer.pause.clear()
            wait_for(acks_reach(acks + 20), 60,
                     f"20 more acknowledged commits after restart {cycle} "
                     f"(failures so far: {committer.failures[-5:]})")
    finally:
        committer.done.set()
        committer.thread.join(60)
    assert committer.error is None, committer.error
    committer.consumer.close()

    acked, _, acks = committer.snapshot()
    stored = committed_offsets(admin(broker.bootstrap), group, topic, partitions)
    assert stored == {p: acked.get(p, OFFSET_INVALID) for p in range(partitions)}, (
        f"after the last commit: OffsetFetch {stored}, last acknowledged {acked}")
    resumed = group_consumer(broker.bootstrap, group)
    try:
        resumed.subscribe([topic])
        first = consume_first_offsets(resumed, range(partitions))
        expected = {p: o if o >= 0 else firsts[p] for p, o in stored.items()}
        assert first == expected, f"a new consumer started at {first}, committed {stored}"
        seen = resumed.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        assert {tp.partition: tp.offset for tp in seen} == stored
    finally:
        resumed.close()
    print(f"{acks} commits acknowledged, {len(committer.failures)} failed across 5 kills")


# --- 7. admin APIs ---------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_group_admin_apis(fast_broker):
    bootstrap = fast_broker.bootstrap
    topic, group = unique_topic("admin-groups"), unique_group("admin-groups")
    create_topic(bootstrap, topic, partitions=2)
    produce_keyed(bootstrap, topic, 40)
    client = admin(bootstrap)
    assert group not in listed_groups(client)

    cons = group_consumer(bootstrap, group, **{"client.id": "admin-test-consumer"})
    cons.subscribe([topic])
    poll_until_assigned(cons, 2)
    result = cons.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)],
                         asynchronous=False)
    assert all(tp.error is None for tp in result), result
    try:
        assert listed_groups(client)[group].state == ConsumerGroupState.STABLE
        assert group in listed_groups(client, [ConsumerGroupState.STABLE])
        assert group not in listed_groups(client, [ConsumerGroupState.EMPTY])

        description = wait_group_state(client, group, ConsumerGroupState.STABLE, 1)
        assert description.group_id == group
        assert description.partition_assignor == "range"
        assert description.coordinator.id == 1  # node.id defaults to 1
        assert description.coordinator.port == fast_broker.port
        (member,) = description.members
        assert member.member_id == cons.memberid()
        assert member.client_id == "admin-test-consumer"
        assert sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions) == [
            (topic, 0), (topic, 1)]
        assert committed_offsets(client, group, topic, 2) == {0: 3, 1: 4}

        futures = client.delete_consumer_groups([group], request_timeout=ADMIN_TIMEOUT_S)
        exc = futures[group].exception(timeout=ADMIN_TIMEOUT_S)
        assert isinstance(exc, KafkaException), f"deleting an active group: {exc!r}"
        assert exc.args[0].code() == KafkaError.NON_EMPTY_GROUP, exc

        # A commit from outside the group while it has members: Kafka says UNKNOWN_MEMBER_ID.
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 9)])
        futures = client.alter_consumer_group_offsets([request], request_timeout=ADMIN_TIMEOUT_S)
        exc = futures[group].exception(timeout=ADMIN_TIMEOUT_S)
        if exc is None:
            altered = futures[group].result()
            codes = [tp.error.code() if tp.error else None for tp in altered.topic_partitions]
        else:
            codes = [exc.args[0].code()]
        assert codes == [KafkaError.UNKNOWN_MEMBER_ID], (
            f"altering offsets of an active group from outside: {exc!r} {codes}")

        # OffsetDelete refuses the partitions of a topic the active group subscribes to.
        error, results = offset_delete(bootstrap, group, topic, [0])
        assert (error, results) == (0, {0: ERROR_GROUP_SUBSCRIBED_TO_TOPIC}), (error, results)
        assert committed_offsets(client, group, topic, 2) == {0: 3, 1: 4}
    finally:
        cons.close()

    wait_group_state(client, group, ConsumerGroupState.EMPTY, 0, timeout=10)
    assert group in listed_groups(client, [ConsumerGroupState.EMPTY])
    assert group not in listed_groups(client, [ConsumerGroupState.STABLE])

    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 7)])
    futures = client.alter_consumer_group_offsets([request], request_timeout=ADMIN_TIMEOUT_S)
    altered = futures[group].result(timeout=ADMIN_TIMEOUT_S)
    assert all(tp.error is None for tp in altered.topic_partitions), altered.topic_partitions
    assert committed_offsets(client, group, topic, 2) == {0: 5, 1: 7}
    resumed = group_consumer(bootstrap, group)
    try:
        resumed.subscribe([topic])
        assert consume_first_offsets(resumed, [0, 1]) == {0: 5, 1: 7}
    finally:
        resumed.close()

    error, results = offset_delete(bootstrap, group, topic, [0])
    assert (error, results) == (0, {0: 0}), (error, results)
    assert committed_offsets(client, group, topic, 2) == {0: OFFSET_INVALID, 1: 7}
    error, _ = offset_delete(bootstrap, unique_group("no-such-group"), topic, [0])
    assert error == ERROR_GROUP_ID_NOT_FOUND, error

    futures = client.delete_consumer_groups([group], request_timeout=ADMIN_TIMEOUT_S)
    assert futures[group].result(timeout=ADMIN_TIMEOUT_S) is None
    assert group not in listed_groups(client)
    assert committed_offsets(client, group, topic, 2) == {0: OFFSET_INVALID, 1: OFFSET_INVALID}
    futures = client.delete_consumer_groups([group], request_timeout=ADMIN_TIMEOUT_S)
    exc = futures[group].exception(timeout=ADMIN_TIMEOUT_S)
    assert isinstance(exc, KafkaException), f"deleting a deleted group: {exc!r}"
    assert exc.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, exc


# --- 8. errors -------------------------------------------------------------------------------

def join_errors(bootstrap: str, group: str, topic: str, session_ms: int) -> tuple[set, list]:
    """Subscribes a consumer with `session_ms`; returns the error codes it reported (error
    events and consumer errors) within 15 s of polling, and its assignment then."""
    codes: set[int] = set()
    cons = group_consumer(bootstrap, group, **{
        "session.timeout.ms": session_ms,
        "error_cb": lambda err: codes.add(err.code()),
    })
    try:
        cons.subscribe([topic])
        deadline = time.monotonic() + 15
        while KafkaError.INVALID_SESSION_TIMEOUT not in codes and time.monotonic() < deadline:
            msg = cons.poll(0.2)
            if msg is not None and msg.error() is not None:
                codes.add(msg.error().code())
        return codes, cons.assignment()
    finally:
        cons.close()


@pytest.mark.timeout(120)
def test_group_errors(start_broker):
    broker = start_broker(env={**FAST,
                               "CAIRN_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS": "6000",
                               "CAIRN_BROKER_GROUP_MAX_SESSION_TIMEOUT_MS": "20000"})
    bootstrap = broker.bootstrap
    topic = unique_topic("errors")
    create_topic(bootstrap, topic, partitions=2)

    for session_ms in (3000, 30_000):
        codes, assignment = join_errors(bootstrap, unique_group("bad-session"), topic,
                                        session_ms)
        assert KafkaError.INVALID_SESSION_TIMEOUT in codes, (
            f"session.timeout.ms={session_ms} outside [6000, 20000]: errors {codes}")
        assert assignment == [], f"joined anyway with session {session_ms}: {assignment}"

    # Stale generations, by hand: two members, one rebalance.
    group = unique_group("generations")
    client = admin(bootstrap)
    with wire.connect(bootstrap) as one, wire.connect(bootstrap) as two:
        one.sendall(join_group_v1(1, group, "", topic))
        joined = parse_join_group_v1(wire.recv_frame(one))
        assert joined["error"] == 0, joined
        m1, gen1 = joined["member_id"], joined["generation"]
        assert m1 and joined["leader"] == m1 and [m for m, _ in joined["members"]] == [m1]
        assert joined["protocol"] == "range"
        one.sendall(sync_group_v0(2, group, gen1, m1, {m1: assignment_v0(topic, [0, 1])}))
        assert parse_sync_group_v0(wire.recv_frame(one)) == (0, assignment_v0(topic, [0, 1]))
        assert raw_commit(one, 3, group, gen1, m1, topic, {0: 5, 1: 5}) == {0: 0, 1: 0}

        two.sendall(join_group_v1(1, group, "", topic))
        # The second join starts a rebalance, which waits for the first member to rejoin. Had
        # the first member's rejoin come first, it would have completed a generation of its
        # own, and the second join a third one.
        wait_for(lambda: describe_group(client, group).state
                 == ConsumerGroupState.PREPARING_REBALANCING,
                 10, f"the second join to put {group} in PreparingRebalance")
        one.sendall(join_group_v1(4, group, m1, topic))
        rejoined = parse_join_group_v1(wire.recv_frame(one))
        second = parse_join_group_v1(wire.recv_frame(two))
        assert rejoined["error"] == 0 and second["error"] == 0, (rejoined, second)
        gen2, m2 = rejoined["generation"], second["member_id"]
        assert gen2 == gen1 + 1 and second["generation"] == gen2, (gen1, rejoined, second)
        assert rejoined["member_id"] == m1 and m2 not in ("", m1)
        leader = rejoined["leader"]
        assert leader == second["leader"] and leader in (m1, m2)
        lead, follow = (rejoined, second) if leader == m1 else (second, rejoined)
        assert sorted(m for m, _ in lead["members"]) == sorted([m1, m2])
        assert follow["members"] == []

        # Between JoinGroup and SyncGroup.
        assert raw_commit(one, 5, group, gen1, m1, topic, {0: 999}) == {
            0: ERROR_ILLEGAL_GENERATION}
        assert raw_commit(one, 6, group, gen2, m1, topic, {0: 998}) == {
            0: ERROR_REBALANCE_IN_PROGRESS}

        plan = {m1: assignment_v0(topic, [0]), m2: assignment_v0(topic, [1])}
        lead_sock, follow_sock = (one, two) if leader == m1 else (two, one)
        # The follower's SyncGroup waits for the leader's assignment if it comes first, or is
        # answered at once if it comes second: the same answers either way, so no order is
        # imposed between the two connections.
        follow_sock.sendall(sync_group_v0(7, group, gen2, follow["member_id"], {}))
        lead_sock.sendall(sync_group_v0(8, group, gen2, leader, plan))
        got_lead = parse_sync_group_v0(wire.recv_frame(lead_sock))
        got_follow = parse_sync_group_v0(wire.recv_frame(follow_sock))
        assert got_lead == (0, plan[leader]) and got_follow == (0, plan[follow["member_id"]]), (
            got_lead, got_follow)

        # Stable at gen2: the old generation, an unknown member, or no member are refused.
        assert raw_commit(one, 9, group, gen1, m1, topic, {0: 997}) == {
            0: ERROR_ILLEGAL_GENERATION}
        assert raw_commit(one, 10, group, gen2, "no-such-member", topic, {0: 996}) == {
            0: ERROR_UNKNOWN_MEMBER_ID}
        assert raw_commit(one, 11, group, -1, "", topic, {0: 995}) == {
            0: ERROR_UNKNOWN_MEMBER_ID}
        assert raw_commit(one, 12, group, gen2, m1, topic, {0: 7}) == {0: 0}
    assert committed_offsets(client, group, topic, 2) == {0: 7, 1: 5}

    # Nobody produces to __consumer_offsets.
    offsets_topic = client.list_topics(timeout=10).topics.get(OFFSETS_TOPIC)
    assert offsets_topic is not None and len(offsets_topic.partitions) == 5
    probe = group_consumer(bootstrap, unique_group("watermarks"))
    try:
        marks_before = [probe.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, p), timeout=10)
                        for p in range(5)]
    finally:
        probe.close()
    request = wire.produce_request_v3(
        1, OFFSETS_TOPIC, 0, wire.record_batch([(b"k", b"v")], int(time.time() * 1000)))
    (_, results) = wire.parse_produce_v3(wire.roundtrip(bootstrap, request))
    assert [(t, p, e) for t, p, e, _ in results] == [
        (OFFSETS_TOPIC, 0, ERROR_INVALID_TOPIC_EXCEPTION)], results
    recorder = Recorder()
    prod = producer(bootstrap, **{"message.timeout.ms": 5000})
    prod.produce(OFFSETS_TOPIC, value=b"v", partition=1, on_delivery=recorder)
    assert prod.flush(20) == 0
    (report,) = recorder.reports
    assert report.error is not None and report.error.code() == KafkaError.TOPIC_EXCEPTION, (
        f"librdkafka producing to {OFFSETS_TOPIC}: {report.error!r}")
    probe = group_consumer(bootstrap, unique_group("watermarks"))
    try:
        marks_after = [probe.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, p), timeout=10)
                       for p in range(5)]
    finally:
        probe.close()
    assert marks_after == marks_before, "a client write reached __consumer_offsets"


# --- 9. __consumer_offsets with the default configuration --------------------------------------

@pytest.mark.timeout(120)
def test_offsets_topic_is_internal_with_the_defaults(broker):
    bootstrap = broker.bootstrap
    topic, group = unique_topic("defaults"), unique_group("defaults")
    create_topic(bootstrap, topic, partitions=2)
    produce_keyed(bootstrap, topic, 10)
    client = admin(bootstrap)
    assert OFFSETS_TOPIC not in client.list_topics(timeout=10).topics, (
        "__consumer_offsets exists before any group was used")

    cons = group_consumer(bootstrap, group, **{"session.timeout.ms": 10_000,
                                               "heartbeat.interval.ms": 1000})
    try:
        subscribed_at = time.monotonic()
        cons.subscribe([topic])
        poll_until_assigned(cons, 2, timeout=45)
        took = time.monotonic() - subscribed_at
        # group.initial.rebalance.delay.ms defaults to 3000: the first rebalance of an empty
        # group waits that long for more members.
        assert took >= 2.9, f"the first rebalance completed after {took:.2f}s"
        result = cons.commit(offsets=[TopicPartition(topic, 0, 1), TopicPartition(topic, 1, 2)],
                             asynchronous=False)
        assert all(tp.error is None for tp in result), result
    finally:
        cons.close()

    metadata = client.list_topics(timeout=10)
    offsets_topic = metadata.topics.get(OFFSETS_TOPIC)
    assert offsets_topic is not None and offsets_topic.error is None
    assert sorted(offsets_topic.partitions) == list(range(50)), (
        f"offsets.topic.num.partitions defaults to 50: {len(offsets_topic.partitions)}")
    assert all(p.leader >= 0 for p in offsets_topic.partitions.values())

    futures = client.describe_topics(TopicCollection([OFFSETS_TOPIC, topic]),
                                     request_timeout=ADMIN_TIMEOUT_S)
    internal = {name: f.result(timeout=ADMIN_TIMEOUT_S).is_internal for name, f in futures.items()}
    assert internal == {OFFSETS_TOPIC: True, topic: False}, internal

    kp_admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        described = {t["topic"]: t for t in kp_admin.describe_topics([OFFSETS_TOPIC, topic])}
        assert described[OFFSETS_TOPIC]["is_internal"] is True
        assert described[topic]["is_internal"] is False
        assert len(described[OFFSETS_TOPIC]["partitions"]) == 50
    finally:
        kp_admin.close()

    # The committed offsets survive a clean restart, and the topic keeps its 50 partitions.
    broker.restart()
    assert committed_offsets(admin(bootstrap), group, topic, 2) == {0: 1, 1: 2}
    assert len(admin(bootstrap).list_topics(timeout=10).topics[OFFSETS_TOPIC].partitions) == 50
