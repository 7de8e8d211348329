"""The `cairn` client commands (`cairn topic|produce|consume`) against a real broker, checked
against what librdkafka sees of the same topics."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time

import pytest

from conftest import clean_env
from kafkautil import (
    Recorder,
    admin,
    create_topic,
    produce_all,
    producer,
    read_partitions,
    unique_topic,
)

CLI_TIMEOUT_S = 60


def cli(cairn_bin, broker, *args: str, stdin: str | None = None, ok: bool = True,
        env: dict[str, str] | None = None, bootstrap: bool = True):
    """Runs `cairn ARGS` (with --bootstrap-server unless `bootstrap` is false); asserts it
    succeeds (or, with ok=False, fails) and returns the CompletedProcess."""
    argv = [str(cairn_bin), *args]
    if bootstrap:
        argv += ["--bootstrap-server", broker.bootstrap]
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                timeout=CLI_TIMEOUT_S, env=clean_env(**(env or {})))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)} hung for {CLI_TIMEOUT_S}s; stderr:\n{exc.stderr}")
    if ok:
        assert result.returncode == 0, (
            f"{' '.join(argv)} exited with {result.returncode}; stderr:\n{result.stderr}\n"
            f"broker:\n{broker.logs()}"
        )
    else:
        assert result.returncode != 0, f"{' '.join(argv)} succeeded; stdout:\n{result.stdout}"
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, f"expected one error line; stderr:\n{result.stderr}"
    return result


def test_help_lists_the_client_commands(cairn_bin):
    result = subprocess.run([str(cairn_bin), "--help"], capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0
    for command in ("serve", "topic", "produce", "consume"):
        assert command in result.stdout, result.stdout
    for command in (["topic", "--help"], ["produce", "--help"], ["consume", "--help"]):
        result = subprocess.run([str(cairn_bin), *command], capture_output=True, text=True,
                                timeout=CLI_TIMEOUT_S)
        assert result.returncode == 0, f"cairn {' '.join(command)}: {result.stderr}"


def test_topic_lifecycle(cairn_bin, broker):
    name = unique_topic("cli-topic")
    cli(cairn_bin, broker, "topic", "create", name, "--partitions", "3",
        "--config", "retention.ms=3600000")
    client = admin(broker.bootstrap)
    assert len(client.list_topics(timeout=10).topics[name].partitions) == 3

    listed = cli(cairn_bin, broker, "topic", "list").stdout.splitlines()
    assert name in listed
    assert listed == sorted(listed)

    described = cli(cairn_bin, broker, "topic", "describe", name).stdout
    assert name in described
    assert "retention.ms" in described and "3600000" in described, described

    # An existing topic: an error, unless --if-not-exists.
    result = cli(cairn_bin, broker, "topic", "create", name, ok=False)
    assert "TOPIC_ALREADY_EXISTS" in result.stderr.upper().replace(" ", "_"), result.stderr
    cli(cairn_bin, broker, "topic", "create", name, "--if-not-exists")

    cli(cairn_bin, broker, "topic", "alter", name, "--config", "retention.ms=7200000")
    assert "7200000" in cli(cairn_bin, broker, "topic", "describe", name).stdout
    cli(cairn_bin, broker, "topic", "add-partitions", name, "--partitions", "5")
    assert len(client.list_topics(timeout=10).topics[name].partitions) == 5

    cli(cairn_bin, broker, "topic", "delete", name)
    assert name not in cli(cairn_bin, broker, "topic", "list").stdout.splitlines()
    cli(cairn_bin, broker, "topic", "delete", name, ok=False)
    cli(cairn_bin, broker, "topic", "delete", name, "--if-exists")


def test_several_topics_per_command_and_json_output(cairn_bin, broker):
    a, b = unique_topic("cli-multi-a"), unique_topic("cli-multi-b")
    cli(cairn_bin, broker, "topic", "create", a, "--partitions", "2")
    cli(cairn_bin, broker, "topic", "create", b, "--config", "retention.ms=60000")
    table = cli(cairn_bin, broker, "topic", "describe", a, b).stdout
    assert [line.split("\t")[0] for line in table.splitlines() if line.startswith("Topic:")] \
        == [f"Topic: {a}", f"Topic: {b}"], table
    described = json.loads(cli(cairn_bin, broker, "topic", "describe", a, b,
                               "--output", "json").stdout)
    assert [d["name"] for d in described] == [a, b]
    assert described[0]["partition_count"] == 2 and len(described[0]["partitions"]) == 2
    assert described[1]["configs"] == {"retention.ms": "60000"}, described[1]
    p0 = described[0]["partitions"][0]
    assert p0["leader"] == 1 and p0["replicas"] == [1] and p0["isr"] == [1], p0
    assert p0["log_start_offset"] == 0 and p0["high_watermark"] == 0, p0
    listed = json.loads(cli(cairn_bin, broker, "topic", "list", "--output", "json").stdout)
    assert {"name": a, "partitions": 2, "internal": False} in listed, listed
    # Several at once; a missing one fails the command, the others still go.
    missing = unique_topic("cli-missing")
    result = cli(cairn_bin, broker, "topic", "delete", a, missing, b, ok=False)
    assert missing in result.stderr and "1 of 3" in result.stderr, result.stderr
    remaining = cli(cairn_bin, broker, "topic", "list").stdout.splitlines()
    assert a not in remaining and b not in remaining, remaining


def test_broker_configs_shown_and_changed(cairn_bin, broker):
    def configs(*extra):
        out = cli(cairn_bin, broker, "broker", "configs", "--output", "json", *extra).stdout
        found = json.loads(out)
        assert found["broker"] == 1, found
        return {c["name"]: c for c in found["configs"]}

    every = configs("--all")
    assert every["log.retention.ms"]["source"] == "DEFAULT_CONFIG", every["log.retention.ms"]
    assert "log.retention.ms" not in configs()
    cli(cairn_bin, broker, "broker", "alter-config", "--config", "log.retention.ms=3600000")
    changed = configs()["log.retention.ms"]
    assert (changed["value"], changed["source"]) == ("3600000", "DYNAMIC_BROKER_CONFIG"), changed
    table = cli(cairn_bin, broker, "broker", "configs", "--broker", "1").stdout
    assert any(line.split()[:3] == ["log.retention.ms", "3600000", "DYNAMIC_BROKER_CONFIG"]
               for line in table.splitlines()), table
    cli(cairn_bin, broker, "broker", "alter-config", "--delete-config", "log.retention.ms")
    assert "log.retention.ms" not in configs()
    result = cli(cairn_bin, broker, "broker", "alter-config", "--config", "no.such.config=1",
                 ok=False)
    assert "no.such.config" in result.stderr, result.stderr


def test_a_config_stored_but_not_acted_on_is_warned_about(cairn_bin, broker):
    name = unique_topic("cli-warn")
    result = cli(cairn_bin, broker, "topic", "create", name, "--config", "compression.type=gzip",
                 "--config", "retention.ms=60000", "--config", "cleanup.policy=compact")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "compression.type" in warnings[0], result.stderr
    result = cli(cairn_bin, broker, "topic", "alter", name, "--config", "retention.ms=120000")
    assert "warning:" not in result.stderr, result.stderr
    result = cli(cairn_bin, broker, "topic", "alter", name, "--config", "min.insync.replicas=2")
    assert "warning: min.insync.replicas" in result.stderr, result.stderr


def test_bootstrap_from_the_environment(cairn_bin, broker):
    name = unique_topic("cli-env")
    create_topic(broker.bootstrap, name)
    result = cli(cairn_bin, broker, "topic", "list", bootstrap=False,
                 env={"CAIRN_BOOTSTRAP": broker.bootstrap})
    assert name in result.stdout.splitlines()


def test_produce_with_keys_then_consume(cairn_bin, broker):
    name = unique_topic("cli-produce")
    create_topic(broker.bootstrap, name, partitions=1)
    cli(cairn_bin, broker, "produce", name, "--key-sep", ":", stdin="k1:v1\nk2:v2\n")

    out = cli(cairn_bin, broker, "consume", name, "--from-beginning", "--count", "2").stdout
    assert out.splitlines() == ["v1", "v2"]
    out = cli(cairn_bin, broker, "consume", name, "--from-beginning", "--key-sep", ":").stdout
    assert out.splitlines() == ["k1:v1", "k2:v2"]

    # What librdkafka reads is the same.
    records = read_partitions(broker.bootstrap, name, 1, expected=2)
    assert [(m.key(), m.value()) for m in records] == [(b"k1", b"v1"), (b"k2", b"v2")]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_compressed(cairn_bin, broker, codec):
    name = unique_topic(f"cli-{codec}")
    create_topic(broker.bootstrap, name, partitions=2)
    lines = [f"line {i} " + "abc" * (i % 30) for i in range(1000)]
    cli(cairn_bin, broker, "produce", name, "--compression", codec, stdin="\n".join(lines) + "\n")
    records = read_partitions(broker.bootstrap, name, 2, expected=1000)
    assert sorted(m.value().decode() for m in records) == sorted(lines)
    out = cli(cairn_bin, broker, "consume", name, "--from-beginning").stdout
    assert sorted(out.splitlines()) == sorted(lines)


def test_key_partitioning_matches_kafka(cairn_bin, broker):
    """Keyed records land where Java clients (murmur2) would put them; librdkafka's
    murmur2_random partitioner is that same function."""
    name = unique_topic("cli-murmur")
    create_topic(broker.bootstrap, name, partitions=6)
    keys = [f"key-{i}" for i in range(60)]
    cli(cairn_bin, broker, "produce", name, "--key-sep", "=",
        stdin="".join(f"{k}=cli\n" for k in keys))
    recorder = Recorder()
    produce_all(producer(broker.bootstrap, partitioner="murmur2_random"), name,
                [(k.encode(), b"rdkafka") for k in keys], recorder)
    recorder.assert_all_delivered(len(keys))
    expected = {r.key: r.partition for r in recorder.reports}
    records = read_partitions(broker.bootstrap, name, 6, expected=2 * len(keys))
    for msg in records:
        if msg.value() == b"cli":
            assert msg.partition() == expected[msg.key()], msg.key()


def test_consume_from_offset_partition_and_timestamp(cairn_bin, broker):
    name = unique_topic("cli-consume")
    create_topic(broker.bootstrap, name, partitions=2)
    base = int(time.time() * 1000) - 600_000
    recorder = Recorder()
    prod = producer(broker.bootstrap)
    for i in range(10):
        prod.produce(name, value=b"p1-%d" % i, partition=1, timestamp=base + i * 1000,
                     on_delivery=recorder)
    assert prod.flush(30) == 0
    recorder.assert_all_delivered(10)
    offsets = [r.offset for r in recorder.reports]

    out = cli(cairn_bin, broker, "consume", name, "--partition", "1",
              "--offset", str(offsets[6])).stdout
    assert out.splitlines() == ["p1-6", "p1-7", "p1-8", "p1-9"]
    out = cli(cairn_bin, broker, "consume", name, "--partition", "1",
              "--offset", str(offsets[2]), "--count", "3").stdout
    assert out.splitlines() == ["p1-2", "p1-3", "p1-4"]
    out = cli(cairn_bin, broker, "consume", name, "--partition", "1",
              "--timestamp", str(base + 7500)).stdout
    assert out.splitlines() == ["p1-8", "p1-9"]
    rfc3339 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base + 8000) / 1000))
    out = cli(cairn_bin, broker, "consume", name, "--partition", "1",
              "--timestamp", rfc3339).stdout
    # Whole seconds round down, but to no earlier than p1-7's timestamp + 1 ms.
    assert out.splitlines() == ["p1-8", "p1-9"]
    out = cli(cairn_bin, broker, "consume", name, "--partition", "0", "--from-beginning").stdout
    assert out == ""


def test_short_flags_as_kcat_and_rpk_users_type_them(cairn_bin, broker):
    name = unique_topic("cli-short")
    create_topic(broker.bootstrap, name, partitions=2)
    cli(cairn_bin, broker, "produce", name, "-b", broker.bootstrap, "-p", "1",
        stdin="a\nb\nc\nd\n", bootstrap=False)
    out = cli(cairn_bin, broker, "consume", name, "-b", broker.bootstrap, "-p", "1", "-o", "1",
              "-c", "2", bootstrap=False).stdout
    assert out.splitlines() == ["b", "c"]
    out = cli(cairn_bin, broker, "consume", name, "--bootstrap", broker.bootstrap, "-p", "0",
              "--from-beginning", bootstrap=False).stdout
    assert out == ""


def test_consume_count_waits_for_new_records(cairn_bin, broker):
    name = unique_topic("cli-wait")
    create_topic(broker.bootstrap, name, partitions=1)
    argv = [str(cairn_bin), "consume", name, "--from-beginning", "--count", "3",
            "--bootstrap-server", broker.bootstrap]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    try:
        time.sleep(1.0)
        assert proc.poll() is None, f"consume --count 3 exited early: {proc.communicate()}"
        recorder = Recorder()
        produce_all(producer(broker.bootstrap), name, [(None, b"a"), (None, b"b"), (None, b"c")],
                    recorder)
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert stdout.splitlines() == ["a", "b", "c"]


def test_consume_positions_templates_and_json(cairn_bin, broker):
    name = unique_topic("cli-format")
    create_topic(broker.bootstrap, name, partitions=1)
    now = int(time.time() * 1000)
    recorder = Recorder()
    prod = producer(broker.bootstrap)
    # Two records two hours old, then three fresh ones (one binary, one with headers).
    prod.produce(name, key=b"old", value=b"o1", timestamp=now - 7_200_000, on_delivery=recorder)
    prod.produce(name, key=b"old", value=b"o2", timestamp=now - 7_100_000, on_delivery=recorder)
    prod.produce(name, key=b"k1", value=b"v1", headers=[("trace", b"t-1"), ("n", b"2")],
                 on_delivery=recorder)
    prod.produce(name, key=None, value=b"\xff\x00bin", on_delivery=recorder)
    prod.produce(name, key=b"k3", value=None, on_delivery=recorder)
    assert prod.flush(30) == 0
    recorder.assert_all_delivered(5)

    # -N: the last N records; @-1h: from an hour ago; latest: nothing yet (no --follow).
    out = cli(cairn_bin, broker, "consume", name, "-o", "-2", "--format", "%o\\n").stdout
    assert out.splitlines() == ["3", "4"]
    out = cli(cairn_bin, broker, "consume", name, "-o", "@-1h", "--format", "%o %k\\n").stdout
    assert out.splitlines() == ["2 k1", "3 ", "4 k3"]
    assert cli(cairn_bin, broker, "consume", name, "-o", "latest").stdout == ""
    assert cli(cairn_bin, broker, "consume", name, "-o", "earliest", "-c", "1").stdout == "o1\n"
    # Without a start position: earliest.
    assert len(cli(cairn_bin, broker, "consume", name).stdout.splitlines()) == 5

    # kcat/rpk templates: topic, partition, offset, timestamp, key, value, lengths, headers.
    out = cli(cairn_bin, broker, "consume", name, "-o", "2", "-c", "1", "--format",
              "%t|%p|%o|%k=%v|%K,%V|%h|%T\\n").stdout
    line = out.rstrip("\n").split("|")
    assert line[:6] == [name, "0", "2", "k1=v1", "2,2", "trace=t-1,n=2"], out
    assert abs(int(line[6]) - now) < 600_000, out

    # JSON lines: strings for UTF-8, base64 (flagged) for binary, nulls kept, headers.
    out = cli(cairn_bin, broker, "consume", name, "-o", "2", "--json").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["offset"] for r in rows] == [2, 3, 4]
    assert rows[0]["key"] == "k1" and rows[0]["value"] == "v1"
    assert rows[0]["headers"] == [{"key": "trace", "value": "t-1"}, {"key": "n", "value": "2"}]
    assert rows[1]["key"] is None and rows[1]["value_base64"] is True
    assert base64.b64decode(rows[1]["value"]) == b"\xff\x00bin"
    assert rows[2]["value"] is None and rows[2]["partition"] == 0
    assert all(r["topic"] == name and isinstance(r["timestamp"], int) for r in rows)


def test_consume_follow_prints_new_records_until_interrupted(cairn_bin, broker):
    name = unique_topic("cli-follow")
    create_topic(broker.bootstrap, name, partitions=2)
    produce_all(producer(broker.bootstrap), name, [(None, b"before")], Recorder())
    argv = [str(cairn_bin), "consume", name, "-f", "--format", "%v\\n",
            "--bootstrap-server", broker.bootstrap]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    try:
        # From the start (the default), so nothing produced below can be missed; the record
        # already there coming out first shows the command runs.
        first = proc.stdout.readline()
        assert first == "before\n", f"first line {first!r}"
        values = [(None, b"f%d" % i) for i in range(20)]
        produce_all(producer(broker.bootstrap), name, values, Recorder())
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < 20 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
        # Still following after the last record.
        time.sleep(0.5)
        assert proc.poll() is None, "consume -f ended by itself"
    finally:
        proc.kill()
        proc.communicate()
    assert sorted(seen, key=lambda v: int(v[1:])) == [f"f{i}" for i in range(20)], seen


def test_produce_headers_tombstones_and_auto_creation(cairn_bin, broker):
    # The topic does not exist: produce asks the broker to create it, as producers do.
    name = unique_topic("cli-headers")
    cli(cairn_bin, broker, "produce", name, "--key-sep", ":", "-Z", "-H", "trace=abc",
        "--header", "src=cli", stdin="k1:v1\nk2:\n:v3\n")
    records = read_partitions(broker.bootstrap, name, 1, expected=3)
    assert [(m.key(), m.value()) for m in records] == [(b"k1", b"v1"), (b"k2", None),
                                                         (None, b"v3")]
    for m in records:
        assert m.headers() == [("trace", b"abc"), ("src", b"cli")], m.headers()
    # Without -Z an empty value is an empty value, not a tombstone.
    cli(cairn_bin, broker, "produce", name, "--key-sep", ":", stdin="k4:\n")
    assert read_partitions(broker.bootstrap, name, 1, expected=4)[-1].value() == b""


def test_produce_large_lines_up_to_the_topics_limit(cairn_bin, broker):
    small = unique_topic("cli-small")
    create_topic(broker.bootstrap, small, config={"max.message.bytes": "2000"})
    result = cli(cairn_bin, broker, "produce", small, stdin="x" * 5000 + "\n", ok=False)
    assert "MESSAGE_TOO_LARGE" in result.stderr and "max.message.bytes" in result.stderr, \
        result.stderr
    big = unique_topic("cli-big")
    create_topic(broker.bootstrap, big, config={"max.message.bytes": "3000000"})
    line = "y" * 2_000_000
    cli(cairn_bin, broker, "produce", big, "--max-line-bytes", "2500000", "--batch-size",
        "2600000", stdin=line + "\n")
    records = read_partitions(broker.bootstrap, big, 1, expected=1)
    assert [len(m.value()) for m in records] == [2_000_000]


def test_produce_reports_what_it_sent_when_interrupted(cairn_bin, broker):
    name = unique_topic("cli-interrupt")
    create_topic(broker.bootstrap, name, partitions=1)
    argv = [str(cairn_bin), "produce", name, "--bootstrap-server", broker.bootstrap]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        proc.stdin.write("a\nb\nc\n")
        proc.stdin.flush()
        read_partitions(broker.bootstrap, name, 1, expected=3)
        # stdin stays open: only the interrupt ends the command.
        proc.send_signal(signal.SIGINT)
        proc.wait(CLI_TIMEOUT_S)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "interrupted: produced 3 records" in stderr, stderr


def complete_in_bash(cairn_bin, *words: str) -> list[str]:
    """What bash completes for `words` (the last one partial) with cairn's script loaded."""
    quoted = " ".join(f"'{w}'" for w in words)
    script = (f'source <("{cairn_bin}" completions bash) && COMP_WORDS=({quoted}) && '
              f'COMP_CWORD={len(words) - 1} && _cairn cairn "{words[-1]}" "{words[-2]}" && '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_shell_completions(cairn_bin):
    assert "consume" in complete_in_bash(cairn_bin, "cairn", "con")
    assert {"--follow", "--format"} <= set(complete_in_bash(cairn_bin, "cairn", "consume", "t",
                                                            "--fo"))
    for shell, marker in (("zsh", "#compdef cairn"), ("fish", "complete -c cairn")):
        result = subprocess.run([str(cairn_bin), "completions", shell], capture_output=True,
                                text=True, timeout=CLI_TIMEOUT_S)
        assert result.returncode == 0 and marker in result.stdout, result.stderr


def test_errors_are_one_line_and_a_failure_exit(cairn_bin, start_broker):
    # Without auto-creation, so reading a missing topic cannot create it.
    broker = start_broker(env={"CAIRN_BROKER_AUTO_CREATE_TOPICS_ENABLE": "false"})
    cli(cairn_bin, broker, "consume", unique_topic("cli-missing"), "--from-beginning", ok=False)
    # Nothing listens on port 1.
    result = subprocess.run(
        [str(cairn_bin), "topic", "list", "--bootstrap-server", "127.0.0.1:1",
         "--timeout-ms", "2000"],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=clean_env())
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")], result.stderr
    assert "is `cairn serve` running" in result.stderr, result.stderr
