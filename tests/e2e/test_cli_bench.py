"""`cairn bench produce|consume|e2e` against a real broker: the records it claims to have
written are there (checked with librdkafka and `cairn topic describe`), `consume` reads
exactly those, and the reports (table and --json) hold what they should."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition

from conftest import clean_env
from kafkautil import consumer, create_topic, unique_topic
from test_cli import CLI_TIMEOUT_S, cli

PERCENTILES = ("min", "p50", "p95", "p99", "p999", "max")


def bench(cairn_bin, broker, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Runs `cairn bench ARGS` against the broker."""
    return cli(cairn_bin, broker, "bench", *args, ok=ok)


def bench_json(cairn_bin, broker, *args: str) -> dict:
    """Runs `cairn bench ARGS --json`; stdout must be exactly one JSON object."""
    result = bench(cairn_bin, broker, *args, "--json")
    assert "\x1b" not in result.stdout, "terminal control characters on stdout"
    assert "\x1b" not in result.stderr, "a progress bar drawn to a pipe"
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def assert_latency(report: dict, name: str) -> dict:
    latency = report["latency_ms"][name]
    assert latency is not None, report
    assert latency["count"] > 0, latency
    values = [latency[k] for k in PERCENTILES]
    assert values == sorted(values), f"{name} percentiles out of order: {latency}"
    assert latency["min"] <= latency["mean"] <= latency["max"], latency
    return latency


def end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """Each partition's high watermark, as librdkafka sees it."""
    cons = consumer(bootstrap)
    try:
        return [cons.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)]
    finally:
        cons.close()


def test_produce_then_consume_counts_every_record(cairn_bin, broker):
    name = unique_topic("bench")
    report = bench_json(cairn_bin, broker, "produce", "-t", name, "--records", "5000",
                        "--record-size", "100", "--create-partitions", "3")
    assert report["mode"] == "produce" and report["topic"] == name
    assert report["records"] == 5000
    assert report["bytes"] == 5000 * 100
    assert report["interrupted"] is False
    assert report["records_per_s"] > 0 and report["mib_per_s"] > 0
    assert report["config"]["acks"] == "all" and report["config"]["partitions"] == 3
    # 100-byte records: 130 to a 16 KiB batch; a request takes one for each partition.
    assert report["requests"] == -(-5000 // (130 * 3)), report
    latency = assert_latency(report, "request")
    assert latency["count"] == report["requests"]

    # Every record is in the topic, spread over all three partitions.
    ends = end_offsets(broker.bootstrap, name, 3)
    assert sum(ends) == 5000, ends
    assert all(end > 0 for end in ends), ends
    described = json.loads(cli(cairn_bin, broker, "topic", "describe", name,
                               "--output", "json").stdout)
    assert sum(p["high_watermark"] for p in described[0]["partitions"]) == 5000

    # consume reads exactly those (it stops at the high watermarks as of its start).
    report = bench_json(cairn_bin, broker, "consume", "-t", name)
    assert report["mode"] == "consume"
    assert report["records"] == 5000
    assert report["bytes"] == 5000 * 100
    assert report["records_per_s"] > 0 and report["mib_per_s"] > 0
    assert_latency(report, "fetch")

    # --records stops at exactly that many, across partitions.
    report = bench_json(cairn_bin, broker, "consume", "-t", name, "--records", "1234")
    assert report["records"] == 1234
    report = bench_json(cairn_bin, broker, "consume", "-t", name, "-o", "-10", "-p", "1")
    assert report["records"] == 10


def test_table_output_and_options(cairn_bin, broker):
    name = unique_topic("bench-table")
    create_topic(broker.bootstrap, name, partitions=2)
    result = bench(cairn_bin, broker, "produce", name, "--records", "300", "--record-size",
                   "1000", "--acks", "1", "--in-flight", "2", "--compression", "lz4",
                   "--batch-size", "4096")
    out = result.stdout
    assert "\x1b" not in out and "\x1b" not in result.stderr
    assert out.startswith(f"bench produce on topic {name}\n"), out
    for needle in ("records       300", "records/s", "MiB/s", "p50", "p99.9", "request"):
        assert needle in out, out
    assert sum(end_offsets(broker.bootstrap, name, 2)) == 300

    # acks=0 and one partition; --duration with a --rate bounds the run by time.
    started = time.monotonic()
    report = bench_json(cairn_bin, broker, "produce", "-t", name, "--acks", "0", "-p", "1",
                        "--duration", "1", "--rate", "2000", "--record-size", "64")
    took = time.monotonic() - started
    assert 0.9 <= report["elapsed_s"] < 5, report
    assert took < 15
    assert 0 < report["records"] <= 2000 + 200, report
    assert report["records_per_s"] < 2000 * 1.2, report
    ends = end_offsets(broker.bootstrap, name, 2)
    assert sum(ends) == 300 + report["records"], ends

    table = bench(cairn_bin, broker, "consume", name).stdout
    assert f"bench consume on topic {name}" in table and "fetch" in table, table
    assert f"records       {300 + report['records']}\n" in table, table


def test_end_to_end_latency(cairn_bin, broker):
    name = unique_topic("bench-e2e")
    report = bench_json(cairn_bin, broker, "e2e", "-t", name, "--records", "2000",
                        "--record-size", "64", "--create-partitions", "2")
    assert report["mode"] == "e2e"
    assert report["records"] == 2000, report
    assert report["produced"] == 2000 and report["missing"] == 0, report
    assert report["records_per_s"] > 0
    e2e = assert_latency(report, "end_to_end")
    assert e2e["count"] == 2000
    assert_latency(report, "produce")
    assert_latency(report, "fetch")
    assert sum(end_offsets(broker.bootstrap, name, 2)) == 2000

    # A second run only counts its own records, not the 2000 already there.
    table = bench(cairn_bin, broker, "e2e", name, "--records", "500", "--record-size", "16")
    assert "bench e2e on topic" in table.stdout and "end-to-end" in table.stdout, table.stdout
    assert "records       500\n" in table.stdout, table.stdout


def test_errors_say_what_to_do(cairn_bin, broker):
    missing = unique_topic("bench-missing")
    result = bench(cairn_bin, broker, "produce", "-t", missing, "--records", "1", ok=False)
    assert "--create-partitions" in result.stderr and "cairn topic create" in result.stderr
    result = bench(cairn_bin, broker, "consume", "-t", missing, ok=False)
    assert f"topic {missing} does not exist" in result.stderr, result.stderr
    result = bench(cairn_bin, broker, "e2e", "-t", missing, "--record-size", "8", ok=False)
    assert "--record-size 16" in result.stderr, result.stderr
    result = bench(cairn_bin, broker, "produce", "-t", missing, "--records", "1",
                   "--duration", "1", ok=False)
    assert "cannot be used with" in result.stderr, result.stderr


def test_interrupt_prints_what_was_measured(cairn_bin, broker):
    name = unique_topic("bench-interrupt")
    create_topic(broker.bootstrap, name, partitions=1)
    argv = [str(cairn_bin), "bench", "produce", "-t", name, "--duration", "60", "--rate",
            "1000", "--record-size", "32", "--json", "--bootstrap-server", broker.bootstrap]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    try:
        deadline = time.monotonic() + 20
        while sum(end_offsets(broker.bootstrap, name, 1)) < 100:
            assert time.monotonic() < deadline, "bench produce wrote nothing"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True, report
    assert report["records"] >= 100, report
    assert report["elapsed_s"] < 30, report
    assert sum(end_offsets(broker.bootstrap, name, 1)) == report["records"]


@pytest.mark.parametrize("mode", ["produce", "consume", "e2e"])
def test_help(cairn_bin, mode):
    result = subprocess.run([str(cairn_bin), "bench", mode, "--help"], capture_output=True,
                            text=True, timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout and "--records" in result.stdout
