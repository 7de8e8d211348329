"""`cairn group list|describe|reset-offsets|delete` against a real broker, with consumer groups
formed by real clients (librdkafka through confluent-kafka): what the CLI shows must match
what the consumers did, and what it changes must be what the next consumer of the group
reads.

Offsets are never assumed: Cairn's partition logs also hold Raft control batches, so a record's
offset comes from its delivery report and a log's bounds from librdkafka's watermarks."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import clean_env, wait_until
from kafkautil import LIBRDKAFKA_LOGGER, Recorder, create_topic, produce_all, producer, unique_topic

CLI_TIMEOUT_S = 60
GROUP_TIMEOUT_S = 30.0
FAST = {
    "CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "CAIRN_BROKER_OFFSETS_TOPIC_NUM_PARTITIONS": "5",
}


@pytest.fixture
def fast_broker(start_broker):
    return start_broker(env=FAST)


def unique_group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cli(cairn_bin, broker, *args: str, ok: bool = True):
    """Runs `cairn ARGS --bootstrap-server B`; asserts success (or, with ok=False, failure with
    exactly one `error:` line) and returns the CompletedProcess."""
    argv = [str(cairn_bin), *args, "--bootstrap-server", broker.bootstrap]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                                env=clean_env())
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)} hung for {CLI_TIMEOUT_S}s; stderr:\n{exc.stderr}")
    if ok:
        assert result.returncode == 0, (
            f"{' '.join(argv)} exited with {result.returncode}; stderr:\n{result.stderr}"
        )
    else:
        assert result.returncode != 0, f"{' '.join(argv)} succeeded; stdout:\n{result.stdout}"
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, f"expected one error line; stderr:\n{result.stderr}"
    return result


def tables(text: str) -> list[list[dict[str, str]]]:
    """The CLI's tables (separated by blank lines) as lists of {column: cell}; columns are
    separated by two or more spaces."""
    found = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.splitlines()
        header = re.split(r"\s{2,}", lines[0].strip())
        found.append([dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]])
    return found


def describe(cairn_bin, broker, group: str):
    """`group describe`: (the group row, member rows, {(topic, partition): partition row})."""
    out = cli(cairn_bin, broker, "group", "describe", group).stdout
    info, members, partitions = tables(out)
    assert len(info) == 1, out
    return info[0], members, {(r["TOPIC"], int(r["PARTITION"])): r for r in partitions}


def listed(cairn_bin, broker, *states: str) -> dict[str, dict[str, str]]:
    args = [arg for state in states for arg in ("--state", state)]
    out = cli(cairn_bin, broker, "group", "list", *args).stdout
    [rows] = tables(out)
    return {row["GROUP"]: row for row in rows}


def group_consumer(broker, group: str, **config) -> Consumer:
    settings = {
        "bootstrap.servers": broker.bootstrap,
        "logger": LIBRDKAFKA_LOGGER,
        "group.id": group,
        "client.id": "group-cli-test",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    settings.update(config)
    return Consumer(settings)


def consume(cons: Consumer, count: int, timeout: float = GROUP_TIMEOUT_S) -> list:
    """`count` records (failing on any error or on a shortfall), then a short wait in which no
    more may arrive."""
    records = []
    deadline = time.monotonic() + timeout
    while len(records) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"consumed {len(records)} of {count} records in {timeout}s")
        for msg in cons.consume(num_messages=count - len(records), timeout=0.2):
            assert msg.error() is None, msg.error()
            records.append(msg)
    extra = [m for m in cons.consume(num_messages=100, timeout=1.0) if m.error() is None]
    assert not extra, f"{len(extra)} records beyond the expected {count}"
    return records


def committed(broker, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets as librdkafka reads them (-1001: none)."""
    reader = group_consumer(broker, group)
    try:
        found = reader.committed([TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=GROUP_TIMEOUT_S)
        return {tp.partition: tp.offset for tp in found}
    finally:
        reader.close()


def produce_to(broker, topic: str, partition: int, values: list[bytes],
               timestamps: list[int] | None = None) -> list[int]:
    """Produces `values` to one partition; returns their offsets."""
    recorder = Recorder()
    prod = producer(broker.bootstrap)
    for i, value in enumerate(values):
        extra = {"timestamp": timestamps[i]} if timestamps else {}
        prod.produce(topic, value=value, partition=partition, on_delivery=recorder, **extra)
    assert prod.flush(30) == 0
    recorder.assert_all_delivered(len(values))
    return [d.offset for d in recorder.reports]


def watermarks(broker, topic: str, partition: int) -> tuple[int, int]:
    """(log start, high watermark) as librdkafka reads them."""
    reader = group_consumer(broker, unique_group("watermarks"))
    try:
        return reader.get_watermark_offsets(TopicPartition(topic, partition),
                                            timeout=GROUP_TIMEOUT_S)
    finally:
        reader.close()


def wait_for_state(cairn_bin, broker, group: str, state: str) -> None:
    wait_until(lambda: describe(cairn_bin, broker, group)[0]["STATE"] == state, GROUP_TIMEOUT_S,
               f"group {group} to become {state}", interval=0.2)


def test_help_lists_the_group_commands(cairn_bin):
    result = subprocess.run([str(cairn_bin), "group", "--help"], capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    for command in ("list", "describe", "reset-offsets", "delete"):
        assert command in result.stdout, result.stdout


def test_list_and_describe_show_members_commits_and_lag(cairn_bin, fast_broker):
    broker = fast_broker
    topic = unique_topic("gcli-describe")
    group = unique_group("gcli-describe")
    create_topic(broker.bootstrap, topic, partitions=2)
    end0 = produce_to(broker, topic, 0, [b"a%d" % i for i in range(10)])[-1] + 1
    end1 = produce_to(broker, topic, 1, [b"b%d" % i for i in range(6)])[-1] + 1

    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        consume(cons, 16)
        cons.commit(asynchronous=False)
        member_id = cons.memberid()
        # Four more records on partition 0: a lag of 4 there, none on partition 1.
        late_end = produce_to(broker, topic, 0, [b"late%d" % i for i in range(4)])[-1] + 1
        assert late_end == end0 + 4

        groups = listed(cairn_bin, broker)
        assert groups[group]["STATE"] == "Stable", groups[group]
        assert groups[group]["PROTOCOL-TYPE"] == "consumer", groups[group]
        assert group in listed(cairn_bin, broker, "stable")
        assert group not in listed(cairn_bin, broker, "Empty", "Dead")

        info, members, partitions = describe(cairn_bin, broker, group)
        assert (info["GROUP"], info["STATE"], info["PROTOCOL-TYPE"], info["MEMBERS"]) == (
            group, "Stable", "consumer", "1"), info
        assert info["PROTOCOL"] in ("range", "roundrobin", "cooperative-sticky"), info
        assert len(members) == 1, members
        member = members[0]
        assert member["MEMBER-ID"] == member_id, (member, member_id)
        assert member["CLIENT-ID"] == "group-cli-test", member
        assert member["INSTANCE-ID"] == "-", member
        assert "127.0.0.1" in member["HOST"], member
        assert member["ASSIGNMENT"] == f"{topic}(0,1)", member
        assert set(partitions) == {(topic, 0), (topic, 1)}, partitions
        row0, row1 = partitions[(topic, 0)], partitions[(topic, 1)]
        assert (row0["COMMITTED-OFFSET"], row0["LOG-END-OFFSET"], row0["LAG"]) == (
            str(end0), str(late_end), "4"), row0
        assert (row1["COMMITTED-OFFSET"], row1["LOG-END-OFFSET"], row1["LAG"]) == (
            str(end1), str(end1), "0"), row1
        assert row0["MEMBER-ID"] == row1["MEMBER-ID"] == member_id

        # While a consumer is active its offsets cannot be reset (not even as a dry run).
        result = cli(cairn_bin, broker, "group", "reset-offsets", group, "--topic", topic,
                     "--to-earliest", "--execute", ok=False)
        assert "Stable" in result.stderr and "inactive" in result.stderr, result.stderr
        result = cli(cairn_bin, broker, "group", "reset-offsets", group, "--topic", topic,
                     "--to-earliest", ok=False)
        assert "inactive" in result.stderr, result.stderr
        assert committed(broker, group, topic, 2) == {0: end0, 1: end1}
    finally:
        cons.close()

    wait_for_state(cairn_bin, broker, group, "Empty")
    info, members, partitions = describe(cairn_bin, broker, group)
    assert info["MEMBERS"] == "0" and members == [], (info, members)
    assert partitions[(topic, 0)]["COMMITTED-OFFSET"] == str(end0)
    assert partitions[(topic, 0)]["LAG"] == "4"
    assert partitions[(topic, 0)]["MEMBER-ID"] == "-"
    assert group in listed(cairn_bin, broker, "Empty")

    # A group nobody knows.
    result = cli(cairn_bin, broker, "group", "describe", unique_group("nobody"), ok=False)
    assert "GROUP_ID_NOT_FOUND" in result.stderr, result.stderr


def test_reset_offsets(cairn_bin, fast_broker):
    broker = fast_broker
    topic = unique_topic("gcli-reset")
    group = unique_group("gcli-reset")
    create_topic(broker.bootstrap, topic, partitions=2)
    # Two batches per partition, 60 s apart, with explicit timestamps an hour ago.
    base = (int(time.time()) - 3600) * 1000
    first = [base + i for i in range(5)]
    second = [base + 60_000 + i for i in range(5)]
    late: dict[int, list[int]] = {}
    for p in (0, 1):
        produce_to(broker, topic, p, [b"p%d-early%d" % (p, i) for i in range(5)], first)
        late[p] = produce_to(broker, topic, p, [b"p%d-late%d" % (p, i) for i in range(5)],
                             second)
    start = {p: watermarks(broker, topic, p)[0] for p in (0, 1)}
    end = {p: watermarks(broker, topic, p)[1] for p in (0, 1)}
    assert end == {p: late[p][-1] + 1 for p in (0, 1)}

    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        consume(cons, 20)
        cons.commit(asynchronous=False)
    finally:
        cons.close()
    wait_for_state(cairn_bin, broker, group, "Empty")
    assert committed(broker, group, topic, 2) == end

    def reset(*args: str, ok: bool = True):
        return cli(cairn_bin, broker, "group", "reset-offsets", group, "--topic", topic, *args,
                   ok=ok)

    def plan(result) -> dict[int, tuple[int | None, int]]:
        """{partition: (current, new)} from reset-offsets' table."""
        [rows] = tables(result.stdout)
        assert all(r["TOPIC"] == topic for r in rows), rows
        return {
            int(r["PARTITION"]): (
                None if r["CURRENT-OFFSET"] == "-" else int(r["CURRENT-OFFSET"]),
                int(r["NEW-OFFSET"]),
            )
            for r in rows
        }

    def both(current: dict[int, int], new: dict[int, int]) -> dict[int, tuple[int, int]]:
        return {p: (current[p], new[p]) for p in (0, 1)}

    first_late = {p: late[p][0] for p in (0, 1)}

    # A dry run shows the plan and changes nothing. The time lies between the two batches.
    between = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base + 30_000) / 1000))
    result = reset("--to-datetime", between)
    assert plan(result) == both(end, first_late), result.stdout
    assert "dry run: nothing changed; add --execute to apply" in result.stderr, result.stderr
    assert committed(broker, group, topic, 2) == end
    # Epoch milliseconds work too: the first record stamped at or after the time.
    assert plan(reset("--to-datetime", str(second[0]))) == both(end, first_late)
    assert plan(reset("--to-datetime", str(second[0] + 1))) == both(
        end, {p: late[p][1] for p in (0, 1)})
    # After the last record: the end.
    assert plan(reset("--to-datetime", str(second[-1] + 1))) == both(end, end)

    result = reset("--to-datetime", between, "--execute")
    assert plan(result) == both(end, first_late), result.stdout
    assert "dry run" not in result.stderr, result.stderr
    assert committed(broker, group, topic, 2) == first_late

    # The group's next consumer replays exactly the second batch.
    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        records = consume(cons, 10)
    finally:
        cons.close()
    by_partition = {p: [m.value() for m in records if m.partition() == p] for p in (0, 1)}
    assert by_partition == {p: [b"p%d-late%d" % (p, i) for i in range(5)] for p in (0, 1)}
    wait_for_state(cairn_bin, broker, group, "Empty")
    assert committed(broker, group, topic, 2) == first_late, "that consumer committed nothing"

    # --shift-by, one partition; clamped to the log.
    shifted = first_late[0] - 3
    result = reset("--shift-by", "-3", "--partition", "0", "--execute")
    assert plan(result) == {0: (first_late[0], shifted)}, result.stdout
    current = {0: shifted, 1: first_late[1]}
    assert committed(broker, group, topic, 2) == current
    assert plan(reset("--shift-by", "-30")) == both(current, start)
    assert plan(reset("--shift-by", "100")) == both(current, end)
    assert plan(reset("--to-offset", str(late[1][2]), "--partition", "1")) == {
        1: (current[1], late[1][2])}
    assert plan(reset("--to-offset", "999")) == both(current, end)
    assert plan(reset("--to-latest")) == both(current, end)

    result = reset("--to-earliest", "--execute")
    assert plan(result) == both(current, start), result.stdout
    assert committed(broker, group, topic, 2) == start
    _, _, partitions = describe(cairn_bin, broker, group)
    assert partitions[(topic, 1)]["COMMITTED-OFFSET"] == str(start[1])
    assert partitions[(topic, 1)]["LAG"] == str(end[1] - start[1])

    # The group's next consumer reads everything again.
    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        assert len(consume(cons, 20)) == 20
    finally:
        cons.close()

    # Errors: a partition the topic does not have, a topic that does not exist.
    result = reset("--to-earliest", "--partition", "7", ok=False)
    assert "partition 7" in result.stderr, result.stderr
    result = cli(cairn_bin, broker, "group", "reset-offsets", group, "--topic",
                 unique_topic("gcli-missing"), "--to-earliest", ok=False)
    assert "UNKNOWN_TOPIC_OR_PARTITION" in result.stderr, result.stderr


def test_shift_by_needs_a_committed_offset(cairn_bin, fast_broker):
    broker = fast_broker
    topic = unique_topic("gcli-fresh")
    group = unique_group("gcli-fresh")
    create_topic(broker.bootstrap, topic, partitions=1)
    offsets = produce_to(broker, topic, 0, [b"x%d" % i for i in range(4)])
    # A group that does not exist yet (Dead) may be given offsets: that creates it.
    result = cli(cairn_bin, broker, "group", "reset-offsets", group, "--topic", topic,
                 "--shift-by", "1", ok=False)
    assert "no committed offset" in result.stderr, result.stderr
    cli(cairn_bin, broker, "group", "reset-offsets", group, "--topic", topic,
        "--to-offset", str(offsets[3]), "--execute")
    assert committed(broker, group, topic, 1) == {0: offsets[3]}
    assert describe(cairn_bin, broker, group)[0]["STATE"] == "Empty"
    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        assert [m.value() for m in consume(cons, 1)] == [b"x3"]
    finally:
        cons.close()


def test_delete(cairn_bin, fast_broker):
    broker = fast_broker
    topic = unique_topic("gcli-delete")
    group = unique_group("gcli-delete")
    create_topic(broker.bootstrap, topic, partitions=1)
    produce_to(broker, topic, 0, [b"v%d" % i for i in range(3)])

    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        consume(cons, 3)
        cons.commit(asynchronous=False)
        result = cli(cairn_bin, broker, "group", "delete", group, ok=False)
        assert "NON_EMPTY_GROUP" in result.stderr, result.stderr
        assert describe(cairn_bin, broker, group)[0]["STATE"] == "Stable"
    finally:
        cons.close()

    wait_for_state(cairn_bin, broker, group, "Empty")
    result = cli(cairn_bin, broker, "group", "delete", group)
    assert f"deleted group {group}" in result.stderr, result.stderr
    assert group not in listed(cairn_bin, broker)
    result = cli(cairn_bin, broker, "group", "describe", group, ok=False)
    assert "GROUP_ID_NOT_FOUND" in result.stderr, result.stderr
    assert committed(broker, group, topic, 1) == {0: -1001}, "its offsets went with it"
    result = cli(cairn_bin, broker, "group", "delete", group, ok=False)
    assert "GROUP_ID_NOT_FOUND" in result.stderr, result.stderr


# --- `cairn consume --group` ----------------------------------------------------------------


def group_consume(cairn_bin, broker, topic: str, group: str, *args: str) -> list[str]:
    out = cli(cairn_bin, broker, "consume", topic, "--group", group, "--format", "%p:%v\\n",
              *args).stdout
    return out.splitlines()


def test_consume_as_a_group_member_commits_and_resumes(cairn_bin, fast_broker):
    broker = fast_broker
    topic = unique_topic("cli-member")
    create_topic(broker.bootstrap, topic, partitions=3)
    first = {p: produce_to(broker, topic, p, [b"a%d" % p, b"b%d" % p]) for p in range(3)}
    group = unique_group("cli-member")

    lines = group_consume(cairn_bin, broker, topic, group)
    assert sorted(lines) == sorted(f"{p}:{v}{p}" for p in range(3) for v in "ab"), lines
    # What it read is committed (next offset to read), and the member left: Empty.
    assert committed(broker, group, topic, 3) == {p: first[p][-1] + 1 for p in range(3)}
    assert describe(cairn_bin, broker, group)[0]["STATE"] == "Empty"

    # The next run starts at the commits: only what came since.
    assert group_consume(cairn_bin, broker, topic, group) == []
    later = produce_to(broker, topic, 1, [b"c1"])
    assert group_consume(cairn_bin, broker, topic, group) == ["1:c1"]
    assert committed(broker, group, topic, 3)[1] == later[0] + 1
    # --count stops early and commits only what it printed.
    produce_to(broker, topic, 2, [b"d2", b"e2", b"f2"])
    assert group_consume(cairn_bin, broker, topic, group, "-c", "2") == ["2:d2", "2:e2"]
    assert group_consume(cairn_bin, broker, topic, group) == ["2:f2"]


def test_consume_shares_a_group_with_a_librdkafka_consumer(cairn_bin, fast_broker):
    broker = fast_broker
    topic = unique_topic("cli-share")
    create_topic(broker.bootstrap, topic, partitions=4)
    group = unique_group("cli-share")
    argv = [str(cairn_bin), "consume", topic, "-g", group, "-f", "--format", "%p:%v\\n",
            "--bootstrap-server", broker.bootstrap]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    other = group_consumer(broker, group, **{"partition.assignment.strategy": "range"})
    try:
        # The CLI member needs a moment to start and join: the group exists once it has.
        wait_until(lambda: group in listed(cairn_bin, broker), GROUP_TIMEOUT_S,
                   f"group {group} to exist", interval=0.2)
        wait_for_state(cairn_bin, broker, group, "Stable")
        other.subscribe([topic])
        # Both members hold two partitions each once the rebalance settles.
        def both_assigned():
            other.poll(0.1)
            # librdkafka's own view must have settled too (it applies an assignment in poll).
            if len(other.assignment()) != 2:
                return False
            _, members, _ = describe(cairn_bin, broker, group)
            return len(members) == 2 and all(m["ASSIGNMENT"] not in ("", "-") for m in members)
        wait_until(both_assigned, GROUP_TIMEOUT_S, "two members with assignments", interval=0.3)
        mine = set(range(4)) - {tp.partition for tp in other.assignment()}
        assert len(mine) == 2, other.assignment()
        for p in range(4):
            produce_to(broker, topic, p, [b"v%d-%d" % (p, i) for i in range(5)])
        theirs = consume(other, 10)
        assert {m.partition() for m in theirs}.isdisjoint(mine)
        seen = []
        deadline = time.monotonic() + GROUP_TIMEOUT_S
        while len(seen) < 10 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
        assert sorted(seen) == sorted(f"{p}:v{p}-{i}" for p in mine for i in range(5)), seen
        # Ctrl-C: the CLI commits what it printed and leaves; librdkafka takes over all four.
        proc.send_signal(signal.SIGINT)
        assert proc.wait(CLI_TIMEOUT_S) == 0, proc.stderr.read()
        offsets = committed(broker, group, topic, 4)
        for p in mine:
            assert offsets[p] == watermarks(broker, topic, p)[1], (p, offsets)
        wait_until(lambda: (other.poll(0.1), len(other.assignment()) == 4)[1], GROUP_TIMEOUT_S,
                   "librdkafka to get all four partitions", interval=0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        other.close()


# --- `--output json` ------------------------------------------------------------------------


def cli_json(cairn_bin, broker, *args: str):
    result = cli(cairn_bin, broker, *args, "--output", "json")
    return json.loads(result.stdout)


def test_list_and_describe_as_json(cairn_bin, fast_broker):
    """`group list|describe --output json` against a librdkafka consumer group with commits
    on three partitions: one read and committed to its end, one committed part way, one
    committed to its end before more records arrived. Each partition's lag is what the group
    has not committed, and the JSON says what the table says."""
    broker = fast_broker
    topic = unique_topic("gcli-json")
    group = unique_group("gcli-json")
    create_topic(broker.bootstrap, topic, partitions=3)
    counts = {0: 6, 1: 4, 2: 5}
    offsets = {p: produce_to(broker, topic, p, [b"%d-%d" % (p, i) for i in range(n)])
               for p, n in counts.items()}
    ends = {p: offsets[p][-1] + 1 for p in counts}

    cons = group_consumer(broker, group)
    try:
        cons.subscribe([topic])
        consume(cons, sum(counts.values()))
        # Partition 1 committed at its second record: three of its records are uncommitted.
        commits = {0: ends[0], 1: offsets[1][1], 2: ends[2]}
        cons.commit(offsets=[TopicPartition(topic, p, o) for p, o in commits.items()],
                    asynchronous=False)
        member_id = cons.memberid()
        # Four records after partition 2's commit: a lag of four there.
        late_end = produce_to(broker, topic, 2, [b"late%d" % i for i in range(4)])[-1] + 1
        assert late_end == ends[2] + 4
        log_ends = {0: ends[0], 1: ends[1], 2: late_end}
        lags = {p: log_ends[p] - commits[p] for p in counts}
        assert lags[0] == 0 and lags[2] == 4, lags
        assert lags[1] == ends[1] - offsets[1][1] >= 3, lags

        groups = {g["group"]: g for g in cli_json(cairn_bin, broker, "group", "list")}
        assert groups[group] == {"group": group, "state": "Stable",
                                 "protocol_type": "consumer"}, groups[group]
        stable = cli_json(cairn_bin, broker, "group", "list", "--state", "Stable")
        assert group in {g["group"] for g in stable}, stable
        assert cli_json(cairn_bin, broker, "group", "list", "--state", "Dead") == []

        described = cli_json(cairn_bin, broker, "group", "describe", group)
        assert (described["group"], described["state"], described["protocol_type"]) == (
            group, "Stable", "consumer"), described
        assert described["protocol"] in ("range", "roundrobin", "cooperative-sticky"), described
        assert isinstance(described["coordinator"]["node_id"], int), described
        assert described["coordinator"]["address"].rsplit(":", 1)[1].isdigit(), described
        [member] = described["members"]
        assert member["member_id"] == member_id, (member, member_id)
        assert member["client_id"] == "group-cli-test", member
        assert member["instance_id"] is None, member
        assert "127.0.0.1" in member["host"], member
        assert member["assignment"] == [{"topic": topic, "partitions": [0, 1, 2]}], member
        assert member["assignment_error"] is None, member
        rows = {(r["topic"], r["partition"]): r for r in described["partitions"]}
        assert set(rows) == {(topic, p) for p in counts}, rows
        for p in counts:
            assert rows[(topic, p)] == {
                "topic": topic, "partition": p, "committed_offset": commits[p],
                "log_end_offset": log_ends[p], "lag": lags[p], "member_id": member_id,
            }, rows[(topic, p)]
        assert described["total_lag"] == sum(lags.values()), described

        # The table says the same.
        _, _, table = describe(cairn_bin, broker, group)
        for (t, p), row in rows.items():
            assert (table[(t, p)]["COMMITTED-OFFSET"], table[(t, p)]["LAG"]) == (
                str(row["committed_offset"]), str(row["lag"])), (table[(t, p)], row)
    finally:
        cons.close()

    # Without members: no owners, the same commits and lags.
    wait_for_state(cairn_bin, broker, group, "Empty")
    described = cli_json(cairn_bin, broker, "group", "describe", group)
    assert (described["state"], described["members"]) == ("Empty", []), described
    for row in described["partitions"]:
        assert row["member_id"] is None, row
        assert row["lag"] == lags[row["partition"]], row
    groups = {g["group"]: g for g in cli_json(cairn_bin, broker, "group", "list")}
    assert groups[group]["state"] == "Empty", groups[group]

    # A group nobody knows: the usual error, nothing on stdout.
    result = cli(cairn_bin, broker, "group", "describe", unique_group("nobody"), "--output",
                 "json", ok=False)
    assert "GROUP_ID_NOT_FOUND" in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
