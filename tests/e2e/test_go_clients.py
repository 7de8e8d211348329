"""Go clients from Debian against the real broker: Sarama (golang-github-shopify-sarama-dev,
1.22.1) and segmentio/kafka-go (golang-github-segmentio-kafka-go-dev, 0.2.1).

Each drives the broker through a small CLI in tests/e2e/go/ (built once per session with
Debian's Go, offline) that prints JSON lines; the scenarios are shared with KafkaJS
(clientutil.py). The clients run with their library defaults: their own batching and
pipelining, default partitioners and timestamps. Sarama 1.22 must be told the broker's
protocol version (it defaults to Kafka 0.8.2) and, to commit with OffsetCommit v2, an offset
retention (see go/sarama_client/main.go).

kafka-go 0.2.1 is a 2018 release: it writes Produce v2 (message format v1, no headers),
reads with Fetch v2, creates topics with CreateTopics v0 and partitions round-robin.
"""

from __future__ import annotations

import pytest

from clientutil import (
    FAST_RETENTION_ENV,
    Client,
    build_go_client,
    commit_and_resume,
    group_splits_partitions,
    offsets_by_time_survive_retention,
    produce_and_consume,
)
from kafkautil import unique_topic

# Sarama 1.22 has no zstd here: it sends zstd batches in Produce v3, and Kafka (and Cairn)
# accept zstd only from Produce v7 on (test_sarama_zstd_is_refused_below_produce_v7).
SARAMA_CODECS = ["none", "gzip", "snappy", "lz4"]
# kafka-go 0.2.1 has no zstd codec (it came with kafka-go 0.3).
KAFKAGO_CODECS = ["none", "gzip", "snappy", "lz4"]
FAMILIES = ["sarama", "kafka-go"]


@pytest.fixture(scope="session")
def go_binaries(tmp_path_factory):
    out = tmp_path_factory.mktemp("go-clients")
    return {name: build_go_client(name, out) for name in ("sarama_client", "kafkago_client")}


@pytest.fixture
def go_clients(go_binaries):
    clients = {
        "sarama": Client("sarama", [str(go_binaries["sarama_client"])], "-", SARAMA_CODECS),
        "kafka-go": Client("kafka-go", [str(go_binaries["kafkago_client"])], "-",
                           KAFKAGO_CODECS, headers=False, keyed=False),
    }
    yield clients
    for client in clients.values():
        client.kill_all()


@pytest.fixture
def groups_broker(start_broker):
    """A broker whose groups form without the 3 s initial rebalance delay."""
    return start_broker(env={"CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"})


def test_sarama_admin(broker, go_clients):
    sarama = go_clients["sarama"]
    topic = unique_topic("sarama-admin")
    sarama.create_topic(broker, topic, 3, {"retention.ms": "123456789"})
    described = sarama.describe_topic(broker, topic)
    assert topic in described["topics"]
    assert described["leaders"] == {"0": 1, "1": 1, "2": 1}


def test_sarama_describe_config(broker, go_clients):
    """Sarama 1.22's ClusterAdmin.DescribeConfig (and ListTopics, which uses it) sends
    DescribeConfigs v0."""
    sarama = go_clients["sarama"]
    topic = unique_topic("sarama-config")
    sarama.create_topic(broker, topic, 1, {"retention.ms": "123456789"})
    assert sarama.describe_config(broker, topic)["retention.ms"] == "123456789"


def test_kafkago_admin(broker, go_clients):
    """kafka-go 0.2.1 creates topics (CreateTopics v0) and describes one topic's partitions
    (Metadata v1); it cannot list all topics or describe configs."""
    kafkago = go_clients["kafka-go"]
    topic = unique_topic("kafkago-admin")
    kafkago.create_topic(broker, topic, 3, {"retention.ms": "123456789"})
    assert kafkago.describe_topic(broker, topic)["leaders"] == {"0": 1, "1": 1, "2": 1}


@pytest.mark.parametrize(
    "family,codec",
    [("sarama", c) for c in SARAMA_CODECS] + [("kafka-go", c) for c in KAFKAGO_CODECS],
)
def test_produce_and_consume(broker, go_clients, family, codec):
    produce_and_consume(broker, go_clients[family], codec)


def test_sarama_zstd_is_refused_below_produce_v7(broker, go_clients):
    topic = unique_topic("sarama-zstd")
    sarama = go_clients["sarama"]
    process = sarama.start(broker, "produce", topic=topic, count=10, codec="zstd")
    process.proc.wait(60)
    assert process.proc.returncode == 1
    assert "does not support the compression type" in process.stderr_tail(), process.describe()


@pytest.mark.parametrize("family", FAMILIES)
def test_group_splits_partitions(groups_broker, go_clients, family):
    group_splits_partitions(groups_broker, go_clients[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_commit_and_resume_after_restart(groups_broker, go_clients, family):
    commit_and_resume(groups_broker, go_clients[family])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("family", FAMILIES)
def test_offsets_by_time_and_retention(start_broker, go_clients, family):
    broker = start_broker(env=FAST_RETENTION_ENV)
    offsets_by_time_survive_retention(broker, go_clients[family], not_found="-1")
