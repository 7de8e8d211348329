"""Running the non-Python test clients (tests/e2e/go/*, tests/e2e/js/client.js) and the
checks every client family shares.

Each client is a small CLI with the same commands (create-topic, describe-topic,
describe-config, produce, consume, group-consume, offsets-for-time) that prints JSON lines on
stdout. Produced record i always has key `key-{i % 7}`, value `"{prefix}-{i} "` repeated
`1 + i % 20` times and (where the client supports headers) the header `n` = i.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState

from kafkautil import admin, create_topic, unique_topic

E2E_DIR = Path(__file__).resolve().parent
GO_DIR = E2E_DIR / "go"
JS_DIR = E2E_DIR / "js"
# Debian installs the Go libraries' sources here; builds use them offline, without modules.
GOPATH = "/usr/share/gocode"

CLIENT_TIMEOUT_S = 90.0


def build_go_client(name: str, out_dir: Path) -> Path:
    """Compiles tests/e2e/go/NAME into OUT_DIR/NAME with Debian's Go and libraries."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not installed (Debian package golang-go; scripts/test installs it)",
                    pytrace=False)
    binary = out_dir / name
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOFLAGS": ""}
    result = subprocess.run([go, "build", "-o", str(binary), f"./{name}"], cwd=GO_DIR, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"go build ./{name} failed (exit {result.returncode}):\n{result.stderr}",
                    pytrace=False)
    return binary


def kafkajs_argv() -> list[str]:
    """`node client.js`, after checking that KafkaJS is installed in tests/e2e/js."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test installs Debian's nodejs)", pytrace=False)
    if not (JS_DIR / "node_modules" / "kafkajs" / "package.json").is_file():
        pytest.fail(f"KafkaJS is not installed in {JS_DIR}/node_modules: run scripts/test "
                    "(it runs `npm ci` there)", pytrace=False)
    return [node, str(JS_DIR / "client.js")]


class ClientProcess:
    """One client command running in the background; its stdout JSON lines are collected as
    they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._events: list[dict] = []
        self._stderr: list[str] = []
        self._bad: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self):
        for line in self.proc.stdout:
            with self._changed:
                try:
                    self._events.append(json.loads(line))
                except json.JSONDecodeError:
                    self._bad.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self._changed:
                self._stderr.append(line.rstrip("\n"))

    @property
    def events(self) -> list[dict]:
        with self._changed:
            return list(self._events)

    def stderr_tail(self, lines: int = 60) -> str:
        with self._changed:
            return "\n".join(self._stderr[-lines:])

    def describe(self) -> str:
        return (f"{' '.join(self.argv[-12:])}\n--- stderr (last lines) ---\n{self.stderr_tail()}"
                + (f"\n--- non-JSON stdout ---\n{self._bad[:10]}" if self._bad else ""))

    def wait_for(self, predicate, timeout: float, what: str):
        """Waits until `predicate(events)` is truthy and returns it; fails if the process
        exits first or the time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate(list(self._events))
                if value:
                    return value
                if self.proc.poll() is not None and not self._readers[0].is_alive():
                    pytest.fail(f"client exited with {self.proc.returncode} before {what}:\n"
                                f"{self.describe()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{self.describe()}")
                self._changed.wait(min(remaining, 0.2))

    def finish(self, timeout: float = CLIENT_TIMEOUT_S) -> list[dict]:
        """Waits for the process to exit with status 0 and returns its JSON lines."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"client did not finish within {timeout}s:\n{self.describe()}")
        for reader in self._readers:
            reader.join(10)
        if self.proc.returncode != 0:
            pytest.fail(f"client failed with exit {self.proc.returncode}:\n{self.describe()}")
        assert not self._bad, f"client printed non-JSON lines:\n{self.describe()}"
        return self.events

    def stop(self, timeout: float = 30.0) -> list[dict]:
        """SIGTERM (the client leaves its group cleanly and commits), then `finish`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Client:
    """One client family's CLI: how to call it and what the library can do."""

    name: str
    argv: list[str]
    flag: str  # "-" for Go's flag package, "--" for client.js
    codecs: list[str]
    headers: bool = True  # records carry headers (message format v2)
    keyed: bool = True  # the default partitioner puts equal keys in one partition
    # One produce command keeps its records in order within a partition. KafkaJS does not
    # across concurrent send() calls (it may write a later call's request first), only
    # within each call: check_reported_offsets checks that.
    ordered: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    running: list[ClientProcess] = field(default_factory=list)

    def command(self, broker, command: str, **options) -> list[str]:
        argv = [*self.argv, f"{self.flag}bootstrap", broker.bootstrap, command]
        for name, value in options.items():
            flag = f"{self.flag}{name.replace('_', '-')}"
            if name == "config":
                for key, setting in value.items():
                    argv += [flag, f"{key}={setting}"]
            elif value is not None:
                argv += [flag, str(value)]
        return argv

    def start(self, broker, command: str, **options) -> ClientProcess:
        env = {**os.environ, **self.extra_env}
        process = ClientProcess(self.command(broker, command, **options), env)
        self.running.append(process)
        return process

    def run(self, broker, command: str, timeout: float = CLIENT_TIMEOUT_S, **options) -> list[dict]:
        return self.start(broker, command, **options).finish(timeout)

    def kill_all(self):
        for process in self.running:
            process.kill()
        self.running.clear()

    # The commands, with their results unpacked.

    def create_topic(self, broker, topic: str, partitions: int, config: dict[str, str]):
        (line,) = self.run(broker, "create-topic", topic=topic, partitions=partitions,
                           config=config)
        assert line == {"created": topic}

    def describe_topic(self, broker, topic: str) -> dict:
        (line,) = self.run(broker, "describe-topic", topic=topic)
        return line

    def describe_config(self, broker, topic: str) -> dict[str, str]:
        (line,) = self.run(broker, "describe-config", topic=topic)
        return line["configs"]

    def produce(self, broker, topic: str, count: int, codec: str = "none",
                prefix: str = "value") -> list[dict]:
        return self.run(broker, "produce", topic=topic, count=count, codec=codec, prefix=prefix)

    def consume(self, broker, topic: str, count: int, linger_ms: int = 1500,
                wait_for_all: bool = True) -> list[dict]:
        """Every record of `topic` from the beginning (`count` of them, then `linger_ms` more
        to catch extras). With `wait_for_all=False`, what arrived within 20 s if fewer."""
        if wait_for_all:
            return records(self.run(broker, "consume", topic=topic, count=count,
                                     linger_ms=linger_ms))
        process = self.start(broker, "consume", topic=topic, count=count, linger_ms=linger_ms,
                             timeout_ms=20_000)
        try:
            process.proc.wait(CLIENT_TIMEOUT_S)
        finally:
            process.kill()
        for reader in process._readers:
            reader.join(10)
        return records(process.events)

    def offsets_for_time(self, broker, topic: str, timestamp: int) -> dict[int, int]:
        (line,) = self.run(broker, "offsets-for-time", topic=topic, timestamp=timestamp)
        return {int(p): offset for p, offset in line["offsets"].items()}


def records(events: list[dict]) -> list[dict]:
    """The record lines among a client's output (group-consume also prints events)."""
    return [e for e in events if "offset" in e and e.get("event", "record") == "record"]


def record_index(record: dict, prefix: str = "value") -> int:
    """The i of a produced record, from its value."""
    first = record["value"].split(" ", 1)[0]
    assert first.startswith(f"{prefix}-"), f"unexpected value {record['value'][:60]!r}"
    return int(first[len(prefix) + 1:])


def expected(client: Client, i: int, prefix: str = "value") -> tuple:
    """(key, value, headers) of produced record i."""
    return (f"key-{i % 7}", f"{prefix}-{i} " * (1 + i % 20),
            {"n": str(i)} if client.headers else {})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_records(client: Client, got: list[dict], count: int, prefix: str = "value",
                  produced_between: tuple[int, int] | None = None) -> dict[int, list[dict]]:
    """Checks that `got` holds produced records 0..count-1 exactly once each (key, value,
    headers), in produce order within each partition (if the client keeps it) at distinct
    offsets, equal keys in one partition, and (if given) timestamps within the produce interval. Returns the records
    by partition in offset order."""
    by_index: dict[int, list[dict]] = {}
    for record in got:
        by_index.setdefault(record_index(record, prefix), []).append(record)
    missing = sorted(set(range(count)) - set(by_index))
    duplicated = sorted(i for i, found in by_index.items() if len(found) > 1)
    extra = sorted(set(by_index) - set(range(count)))
    assert not (missing or duplicated or extra), (
        f"{len(got)} records for {count} produced: missing {missing[:20]} "
        f"({len(missing)}), duplicated {duplicated[:20]} ({len(duplicated)}), "
        f"unexpected {extra[:20]}"
    )
    for i, (record,) in sorted(by_index.items()):
        assert (record["key"], record["value"], record.get("headers", {})) == \
            expected(client, i, prefix), f"record {i} came back as {record}"

    partitions: dict[int, list[dict]] = {}
    for record in sorted(got, key=lambda r: (r["partition"], r["offset"])):
        partitions.setdefault(record["partition"], []).append(record)
    for partition, found in partitions.items():
        offsets = [r["offset"] for r in found]
        assert len(set(offsets)) == len(offsets), f"partition {partition}: an offset came twice"
        order = [record_index(r, prefix) for r in found]
        assert order == sorted(order) or not client.ordered, (
            f"partition {partition}: records out of produce order: {order[:50]}"
        )
    if client.keyed:
        partition_of: dict[str, set[int]] = {}
        for record in got:
            partition_of.setdefault(record["key"], set()).add(record["partition"])
        split = {key: parts for key, parts in partition_of.items() if len(parts) > 1}
        assert not split, f"equal keys landed in several partitions: {split}"
    if produced_between is not None:
        low, high = produced_between
        wrong = [(record_index(r, prefix), r["timestamp"]) for r in got
                 if not low <= r["timestamp"] <= high]
        assert not wrong, (
            f"{len(wrong)} records are not stamped within the produce interval [{low}, {high}] "
            f"(the client's default CreateTime): (i, timestamp) {wrong[:10]}"
        )
    return partitions


def group_members(bootstrap: str, group: str) -> dict[str, set[int]] | None:
    """A Stable group's members and their assigned partitions (DescribeGroups through
    librdkafka), or None while the group is not Stable."""
    client = admin(bootstrap)  # kept alive until the answer arrives
    futures = client.describe_consumer_groups([group], request_timeout=10)
    description = futures[group].result(timeout=15)
    if description.state != ConsumerGroupState.STABLE:
        return None
    return {
        m.member_id: {tp.partition for tp in m.assignment.topic_partitions}
        for m in description.members
    }


def wait_for_split(bootstrap: str, group: str, partitions: int, members: list[ClientProcess],
                   timeout: float = 60.0) -> dict[str, set[int]]:
    """Waits until `group` is Stable with one member per process, every member owning some
    partitions and together all of `partitions`; returns the assignment."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for member in members:
            if member.proc.poll() is not None:
                pytest.fail(f"a group member exited with {member.proc.returncode}:\n"
                            f"{member.describe()}")
        last = group_members(bootstrap, group)
        if last and len(last) == len(members) and all(last.values()):
            owned = sorted(p for parts in last.values() for p in parts)
            if owned == list(range(partitions)):
                return last
        if time.monotonic() > deadline:
            details = "\n".join(m.describe() for m in members)
            pytest.fail(f"group {group} never split {partitions} partitions between "
                        f"{len(members)} members; last: {last}\n{details}")
        time.sleep(0.5)


# --- Scenarios every client family runs ------------------------------------------------------

# The brokers of the retention tests check retention every second
# (FAST_RETENTION_ENV); waiting this long after a restart lets several passes see the records.
FAST_RETENTION_ENV = {"CAIRN_LOG_RETENTION_CHECK_INTERVAL_MS": "1000"}
RETENTION_PASS_WAIT_S = 4.0


def check_reported_offsets(produced: list[dict], got: list[dict]) -> None:
    """Checks the producer's own reports against what was read back: Sarama reports each
    record's partition and offset (`i`), KafkaJS each send's base offset per partition."""
    at = {(r["partition"], r["offset"]): record_index(r) for r in got}
    for line in produced:
        if "i" in line:
            found = at.get((line["partition"], line["offset"]))
            assert found == line["i"], (
                f"record {line['i']} was acknowledged at {line['partition']}/{line['offset']}, "
                f"which holds record {found}"
            )
        elif "base_offset" in line:
            mine = sorted((r for r in got if r["partition"] == line["partition"]
                           and line["first"] <= record_index(r) <= line["last"]),
                          key=lambda r: r["offset"])
            offsets = [r["offset"] for r in mine]
            order = [record_index(r) for r in mine]
            base = line["base_offset"]
            assert offsets == list(range(base, base + len(mine))) and mine, (
                f"records {line['first']}..{line['last']} acknowledged in partition "
                f"{line['partition']} from offset {base} were read at {offsets}"
            )
            assert order == sorted(order), (
                f"partition {line['partition']}: one send's records out of order: {order}"
            )


def produce_and_consume(broker, client: Client, codec: str, count: int = 600) -> None:
    topic = unique_topic(f"{client.name}-{codec}")
    create_topic(broker.bootstrap, topic, partitions=3)
    low = now_ms()
    produced = client.produce(broker, topic, count, codec=codec)
    high = now_ms()
    got = client.consume(broker, topic, count)
    check_records(client, got, count, produced_between=(low, high))
    check_reported_offsets(produced, got)


def wait_for_all(members: list[ClientProcess], count: int, timeout: float = 60.0) -> None:
    """Waits until the members together printed records 0..count-1."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {record_index(r) for m in members for r in records(m.events)}
        if seen >= set(range(count)):
            return
        for member in members:
            if member.proc.poll() is not None:
                pytest.fail(f"a group member exited with {member.proc.returncode}:\n"
                            f"{member.describe()}")
        if time.monotonic() > deadline:
            details = "\n".join(m.describe() for m in members)
            pytest.fail(f"the group consumed {len(seen)} of {count} records in {timeout}s\n"
                        f"{details}")
        time.sleep(0.2)


def group_splits_partitions(broker, client: Client, count: int = 400) -> None:
    """Two members of one group share a topic's partitions; every record reaches exactly one
    of them, the one that owns its partition."""
    topic = unique_topic(f"{client.name}-split")
    group = unique_topic(f"{client.name}-split-group")
    create_topic(broker.bootstrap, topic, partitions=4)
    members = [client.start(broker, "group-consume", topic=topic, group=group) for _ in range(2)]
    split = wait_for_split(broker.bootstrap, group, 4, members)
    client.produce(broker, topic, count)
    wait_for_all(members, count)
    time.sleep(1.0)  # a record delivered twice would show up by now
    outputs = [m.stop() for m in members]
    got = [records(events) for events in outputs]
    assert all(got), f"a member got no records: {[len(g) for g in got]} (assignment {split})"
    check_records(client, got[0] + got[1], count)
    owned = [{r["partition"] for r in g} for g in got]
    assert not owned[0] & owned[1], (
        f"both members read partitions {sorted(owned[0] & owned[1])} (assignment {split})"
    )
    assert sorted(owned[0] | owned[1]) == sorted(p for ps in split.values() for p in ps)


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (OffsetFetch through librdkafka); -1001 = none."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p)
                                                   for p in range(partitions)])
    client = admin(bootstrap)  # kept alive until the answer arrives
    result = client.list_consumer_group_offsets([request], request_timeout=15)
    answer = result[group].result(timeout=20)
    return {tp.partition: tp.offset for tp in answer.topic_partitions}


def commit_and_resume(broker, client: Client, count: int = 300, first_part: int = 100) -> None:
    """A group member consumes part of a topic and stops (committing with the library's
    defaults); after a broker restart a new member of the group resumes exactly there."""
    topic = unique_topic(f"{client.name}-resume")
    group = unique_topic(f"{client.name}-resume-group")
    create_topic(broker.bootstrap, topic, partitions=3)
    client.produce(broker, topic, count)

    first = records(client.run(broker, "group-consume", topic=topic, group=group,
                               count=first_part))
    assert len(first) == first_part, f"the first member consumed {len(first)} records"
    consumed_to = {}
    for r in first:
        consumed_to[r["partition"]] = max(consumed_to.get(r["partition"], -1), r["offset"] + 1)
    committed = committed_offsets(broker.bootstrap, group, topic, 3)
    assert {p: committed[p] for p in consumed_to} == consumed_to, (
        f"committed {committed}, but the first member consumed up to {consumed_to}"
    )

    broker.restart()
    second = records(client.run(broker, "group-consume", topic=topic, group=group,
                                count=count - first_part, linger_ms=2000))
    for partition, end in consumed_to.items():
        resumed = [r["offset"] for r in second if r["partition"] == partition]
        assert not resumed or min(resumed) >= end, (
            f"partition {partition}: committed {end}, the second member read from {min(resumed)}"
        )
    check_records(client, first + second, count)


def offsets_by_time_survive_retention(broker, client: Client, not_found: str,
                                      count: int = 200) -> None:
    """ListOffsets by time finds records stamped with the library's default timestamps, and
    a topic with retention.ms = 2 minutes keeps every record through a retention pass (after
    a broker restart, with the records' segment rolled): log start stays 0 and everything
    reads back.

    `not_found` is what the client reports for a time after every record: "-1" (Kafka's
    answer) or "end" (KafkaJS substitutes the high watermark)."""
    topic = unique_topic(f"{client.name}-bytime")
    # segment.ms = 2 s rolls the segment holding the records before the retention pass, so
    # retention judges it as a sealed segment, by its newest timestamp.
    create_topic(broker.bootstrap, topic, partitions=2,
                 config={"retention.ms": "120000", "segment.ms": "2000"})
    low = now_ms()
    produced = client.produce(broker, topic, count)
    high = now_ms()
    got = client.consume(broker, topic, count)
    partitions = check_records(client, got, count, produced_between=(low, high))
    check_reported_offsets(produced, got)
    assert sorted(partitions) == [0, 1], f"records landed only in {sorted(partitions)}"

    # The lookups and the retention check are both reported, whichever fails first.
    problems = []

    def lookup(what: str, timestamp: int, want: dict[int, int]) -> None:
        answer = client.offsets_for_time(broker, topic, timestamp)
        if answer != want:
            problems.append(f"offsets for {what} ({timestamp}): got {answer}, want {want}")

    first = {p: recs[0]["offset"] for p, recs in partitions.items()}
    lookup("the time before producing", low, first)
    middle = min(max(r["timestamp"] for r in recs) for recs in partitions.values())
    at_middle = {p: min(r["offset"] for r in recs if r["timestamp"] >= middle)
                 for p, recs in partitions.items()}
    lookup("a record's timestamp", middle, at_middle)
    ends = {p: recs[-1]["offset"] + 1 for p, recs in partitions.items()}
    lookup("a time after every record", high + 3_600_000,
           {p: -1 for p in partitions} if not_found == "-1" else ends)

    broker.restart()
    restarted = time.monotonic()
    time.sleep(max(0.0, restarted + RETENTION_PASS_WAIT_S - time.monotonic()))
    log_start = client.offsets_for_time(broker, topic, -2)
    if log_start != {0: 0, 1: 0}:
        problems.append(f"after a retention pass the log starts at {log_start}, want 0: "
                        "retention deleted records younger than retention.ms")
    again = client.consume(broker, topic, count, wait_for_all=False)
    kept = {(r["partition"], r["offset"]) for r in again}
    lost = sorted(set((r["partition"], r["offset"]) for r in got) - kept)
    if lost or len(again) != count:
        problems.append(f"after a retention pass {len(again)} of {count} records read back; "
                        f"lost (partition, offset): {lost[:10]} ({len(lost)})")
    else:
        check_records(client, again, count)
    lookup("the time before producing, after the restart", low, first)
    assert not problems, "\n".join(problems)
