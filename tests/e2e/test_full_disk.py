"""A full disk loses nothing and does not stop the node.

The broker's data directory is a 300 MB ext4 filesystem on a loop device (the test runs as
root, which CI does). A producer fills it; then the rest of the filesystem is taken by a
file, so the disk is completely full. Every acknowledged record must read back, the node must
restart on the full disk and serve reads, produces must be refused with KAFKA_STORAGE_ERROR,
and writes must resume by themselves once DeleteRecords frees space.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

import wire
from conftest import wait_until
from kafkautil import (
    ADMIN_TIMEOUT_S,
    LIBRDKAFKA_LOGGER,
    Recorder,
    create_topic,
    producer,
    read_partitions,
    unique_topic,
)

FS_MB = 300
RECORD = 100_000


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path: Path):
    """A freshly made 300 MB ext4 filesystem (no root reserve) mounted at a directory."""
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a loop device and must run as root")
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (Debian packages e2fsprogs, mount)")
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(FS_MB * 1024 * 1024)
    run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run("mount", "-o", "loop", str(image), str(mnt))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def available(path: Path) -> int:
    s = os.statvfs(path)
    return s.f_bavail * s.f_frsize


def produce_until_refused(bootstrap: str, topic: str) -> tuple[list[int], list[KafkaError]]:
    """Produces 100 kB records (acks=all) until the broker refuses them; returns the
    acknowledged offsets (each record's value says its sequence number) and the errors."""
    rec = Recorder()
    # Bounded waits: librdkafka retries KAFKA_STORAGE_ERROR until message.timeout.ms.
    p = producer(bootstrap, **{"message.timeout.ms": 8000, "linger.ms": 5})
    seq = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for _ in range(20):
            value = seq.to_bytes(8, "big") + b"x" * (RECORD - 8)
            while True:
                try:
                    p.produce(topic, value=value, partition=0, on_delivery=rec)
                    break
                except BufferError:
                    p.poll(0.05)
            seq += 1
        p.flush(30)
        if rec.errors():
            break
    p.flush(30)
    errors = [d.error for d in rec.errors()]
    acked = {int.from_bytes(d.value[:8], "big"): d.offset for d in rec.reports if d.error is None}
    return [acked[s] for s in sorted(acked)], errors


def check_reads_back(bootstrap: str, topic: str, acked_offsets: list[int]) -> None:
    got = {m.offset(): m.value() for m in read_partitions(bootstrap, topic, [0], timeout=120)}
    for offset in acked_offsets:
        assert offset in got, f"acknowledged offset {offset} is gone"
        assert len(got[offset]) == RECORD


def assert_refused_on_the_wire(bootstrap: str, topic: str) -> None:
    """The broker answers a produce with KAFKA_STORAGE_ERROR (56) at once."""
    batch = wire.record_batch([(None, b"refused")], int(time.time() * 1000))
    started = time.monotonic()
    answer = wire.roundtrip(bootstrap, wire.produce_request_v3(7, topic, 0, batch))
    _, results = wire.parse_produce_v3(answer)
    assert [r[2] for r in results] == [56], results
    assert time.monotonic() - started < 2, "refused at once"


def test_a_full_disk_loses_nothing_and_the_node_keeps_serving(start_broker, small_fs):
    data = small_fs / "data"
    broker = start_broker(env={"CAIRN_LOG_SEGMENT_BYTES": str(8 << 20)}, data_dir=data)
    topic = unique_topic("full-disk")
    create_topic(broker.bootstrap, topic)

    acked, errors = produce_until_refused(broker.bootstrap, topic)
    assert len(acked) > 1000, f"only {len(acked)} records fit before the first refusal"
    # librdkafka retries KAFKA_STORAGE_ERROR (retriable) until message.timeout.ms.
    codes = {e.code() for e in errors}
    assert codes <= {KafkaError.KAFKA_STORAGE_ERROR, KafkaError._MSG_TIMED_OUT}, errors[:3]
    assert_refused_on_the_wire(broker.bootstrap, topic)
    # Take the rest of the filesystem: now it is completely full.
    filler = small_fs / "filler"
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(available(small_fs) - 4096, 4096))
    wait_until(lambda: available(small_fs) > 0 and "ballast" in broker.process.stderr,
               timeout=10, what="the broker to give up its ballast")
    check_reads_back(broker.bootstrap, topic, acked)

    # A restart on the full disk: the node starts, serves reads, refuses writes.
    broker.restart()
    assert "filesystem is full" in broker.process.stderr
    check_reads_back(broker.bootstrap, topic, acked)
    assert_refused_on_the_wire(broker.bootstrap, topic)

    # DeleteRecords frees whole segments; writes resume by themselves.
    middle = acked[len(acked) // 2]
    client = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": LIBRDKAFKA_LOGGER})
    futures = client.delete_records([TopicPartition(topic, 0, middle)],
                                    request_timeout=ADMIN_TIMEOUT_S)
    for f in futures.values():
        f.result(timeout=ADMIN_TIMEOUT_S)

    def writes_again() -> bool:
        rec = Recorder()
        p = producer(broker.bootstrap, **{"message.timeout.ms": 3000})
        p.produce(topic, value=b"after", partition=0, on_delivery=rec)
        p.flush(10)
        return bool(rec.reports) and not rec.errors()

    wait_until(writes_again, timeout=60, what="writes to resume after DeleteRecords",
               interval=1.0)
    kept = [o for o in acked if o >= middle]
    check_reads_back(broker.bootstrap, topic, kept)
    broker.assert_alive()
