"""kcat, as Debian ships it: built on librdkafka 2.0.x, an older client that still negotiates
ApiVersions v3 (and mis-reads tagged fields a broker should not write there)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from kafkautil import create_topic, unique_topic

KCAT_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (scripts/test installs the Debian package kcat)",
                    pytrace=False)
    return path


def run_kcat(kcat: str, broker, *args: str, stdin: str | None = None) -> str:
    argv = [kcat, "-b", broker.bootstrap, *args]
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                timeout=KCAT_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)} hung for {KCAT_TIMEOUT_S}s; stderr:\n{exc.stderr}\n"
                    f"broker:\n{broker.logs()}")
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited with {result.returncode}; stderr:\n{result.stderr}\n"
        f"broker:\n{broker.logs()}"
    )
    return result.stdout


def test_metadata_listing(kcat, broker):
    topic = unique_topic("kcat-meta")
    create_topic(broker.bootstrap, topic, partitions=3)
    listing = run_kcat(kcat, broker, "-L")
    assert "1 brokers:" in listing, listing
    assert f'topic "{topic}" with 3 partitions' in listing, listing

    metadata = json.loads(run_kcat(kcat, broker, "-L", "-J", "-t", topic))
    (node,) = metadata["brokers"]
    assert node["name"] == broker.bootstrap
    (described,) = metadata["topics"]
    assert described["topic"] == topic
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2]
    for partition in described["partitions"]:
        assert partition["leader"] == node["id"]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_keys_and_consume_them_back(kcat, broker, codec):
    topic = unique_topic(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1)
    lines = [f"k{i}:value {i} with some text" for i in range(200)] + ["k-empty:", "k:v:with:colons"]
    run_kcat(kcat, broker, "-P", "-t", topic, "-K:", "-z", codec, stdin="\n".join(lines) + "\n")

    out = run_kcat(kcat, broker, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%k:%s\n")
    assert out.splitlines() == lines


def test_consume_offsets_and_partition(kcat, broker):
    topic = unique_topic("kcat-offsets")
    create_topic(broker.bootstrap, topic, partitions=2)
    run_kcat(kcat, broker, "-P", "-t", topic, "-p", "1",
             stdin="".join(f"m{i}\n" for i in range(10)))
    out = run_kcat(kcat, broker, "-C", "-t", topic, "-p", "1", "-o", "beginning", "-e",
                   "-f", "%p %o %s\n")
    rows = [line.split() for line in out.splitlines()]
    assert [r[2] for r in rows] == [f"m{i}" for i in range(10)]
    assert all(r[0] == "1" for r in rows)
    offsets = [int(r[1]) for r in rows]
    assert offsets == sorted(set(offsets))

    # -o -3: the last three; -c 2: stop after two.
    out = run_kcat(kcat, broker, "-C", "-t", topic, "-p", "1", "-o", "-3", "-e", "-f", "%s\n")
    assert out.splitlines() == ["m7", "m8", "m9"]
    out = run_kcat(kcat, broker, "-C", "-t", topic, "-p", "1", "-o", str(offsets[4]), "-c", "2",
                   "-f", "%s\n")
    assert out.splitlines() == ["m4", "m5"]
    # Partition 0 is empty.
    out = run_kcat(kcat, broker, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e")
    assert out == ""


def test_query_offset_by_timestamp(kcat, broker):
    topic = unique_topic("kcat-query")
    create_topic(broker.bootstrap, topic, partitions=1)
    run_kcat(kcat, broker, "-P", "-t", topic, stdin="a\nb\nc\n")
    out = run_kcat(kcat, broker, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%T %o\n")
    (ts, first_offset) = map(int, out.splitlines()[0].split())
    out = run_kcat(kcat, broker, "-Q", "-t", f"{topic}:0:{ts}")
    assert re.search(rf"\boffset {first_offset}\b", out), out
