"""KafkaJS (npm, 2.2.4, installed by scripts/test into tests/e2e/js/node_modules) against
the real broker, through the small CLI tests/e2e/js/client.js, which prints JSON lines; the
scenarios are shared with the Go clients (clientutil.py).

KafkaJS runs with its defaults: its own request pipelining (concurrent send() calls share a
connection), the Java-compatible murmur2 partitioner, Date.now() timestamps, and in groups
auto-commit after every batch and on stop. It compresses with gzip itself; snappy comes from
the kafkajs-snappy plugin, and LZ4 and zstd from codecs client.js wraps around lz4js and
@mongodb-js/zstd, so every codec is exercised.
"""

from __future__ import annotations

import pytest

from clientutil import (
    FAST_RETENTION_ENV,
    Client,
    commit_and_resume,
    group_splits_partitions,
    kafkajs_argv,
    offsets_by_time_survive_retention,
    produce_and_consume,
)
from kafkautil import unique_topic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.fixture(scope="session")
def kafkajs_command():
    return kafkajs_argv()


@pytest.fixture
def kafkajs(kafkajs_command):
    client = Client("kafkajs", kafkajs_command, "--", CODECS, ordered=False,
                    extra_env={"KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    yield client
    client.kill_all()


@pytest.fixture
def groups_broker(start_broker):
    """A broker whose groups form without the 3 s initial rebalance delay."""
    return start_broker(env={"CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"})


def test_admin(broker, kafkajs):
    topic = unique_topic("kafkajs-admin")
    kafkajs.create_topic(broker, topic, 3, {"retention.ms": "123456789"})
    described = kafkajs.describe_topic(broker, topic)
    assert topic in described["topics"]
    assert described["leaders"] == {"0": 1, "1": 1, "2": 1}
    assert kafkajs.describe_config(broker, topic)["retention.ms"] == "123456789"


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(groups_broker, kafkajs, codec):
    produce_and_consume(groups_broker, kafkajs, codec)


def test_group_splits_partitions(groups_broker, kafkajs):
    group_splits_partitions(groups_broker, kafkajs)


def test_commit_and_resume_after_restart(groups_broker, kafkajs):
    commit_and_resume(groups_broker, kafkajs)


@pytest.mark.timeout(180)
def test_offsets_by_time_and_retention(start_broker, kafkajs):
    broker = start_broker(env={**FAST_RETENTION_ENV,
                               "CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"})
    offsets_by_time_survive_retention(broker, kafkajs, not_found="end")
