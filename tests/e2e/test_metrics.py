"""`/metrics`: the Prometheus text format, with Kafka's metric names, counting what real
clients did (a librdkafka producer and consumer) and showing each partition's state."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from confluent_kafka import TopicPartition

import wire
from httputil import Http
from kafkautil import (Recorder, consumer, create_topic, produce_all, producer, read_partitions,
                       unique_topic)

REPO = Path(__file__).resolve().parents[2]
METRIC_NAME = re.compile(r"\b((?:kafka|process)_[a-z0-9_]+)")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(broker) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape: (name, labels) -> value; checks the format line by line."""
    answer = Http(broker.http).get("/metrics")
    assert answer.status == 200, answer
    assert answer.content_type.startswith("text/plain"), answer.content_type
    samples = {}
    for line in answer.body.decode().splitlines():
        if not line or line.startswith("#"):
            assert not line or line.startswith(("# HELP ", "# TYPE ")), line
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def test_a_node_without_groups_scrapes_whole_and_logs_no_error(broker):
    """Group gauges with nothing to show (no group yet) are left out, not an encoding
    error that cut the answer short and logged an ERROR on every scrape."""
    topic = unique_topic("metrics-nogroups")
    create_topic(broker.bootstrap, topic, partitions=3)
    for _ in range(3):
        samples = scrape(broker)
    for p in range(3):
        assert value(samples, "kafka_log_log_logendoffset", topic=topic, partition=p) == 0
    assert not any(name.startswith("kafka_consumergroup_") for name, _ in samples)
    log = broker.process.stderr
    assert "cannot encode metrics" not in log, log
    assert " ERROR " not in log, log


def test_metrics_count_what_clients_did(broker):
    topic = unique_topic("metrics")
    create_topic(broker.bootstrap, topic, partitions=2)
    before = scrape(broker)
    assert value(before, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) is None

    count, size = 500, 200
    recorder = Recorder()
    prod = producer(broker.bootstrap, **{"linger.ms": 5})
    produce_all(prod, topic, [(f"k{i}".encode(), b"v" * size) for i in range(count)], recorder)
    recorder.assert_all_delivered(count)
    got = read_partitions(broker.bootstrap, topic, 2, expected=count)
    assert len(got) == count

    after = scrape(broker)
    assert value(after, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == count
    bytes_in = value(after, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic)
    # The batches' bytes: every value plus keys and record and batch overheads.
    assert count * size < bytes_in < count * size * 2, bytes_in
    bytes_out = value(after, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic)
    assert bytes_out is not None and bytes_out >= bytes_in, (bytes_in, bytes_out)

    ends = [value(after, "kafka_log_log_logendoffset", topic=topic, partition=p) for p in (0, 1)]
    assert sum(ends) == count, ends
    for p in (0, 1):
        assert value(after, "kafka_log_log_logstartoffset", topic=topic, partition=p) == 0
        assert value(after, "kafka_cluster_partition_highwatermark", topic=topic,
                     partition=p) == ends[p]
        assert value(after, "kafka_log_log_size", topic=topic, partition=p) > 0
        # One node: the replica elected itself once, in term 1 or later.
        assert value(after, "cairn_raft_term", topic=topic, partition=p) >= 1
        assert value(after, "cairn_raft_leader_changes", topic=topic, partition=p) == 1
    assert value(after, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(after, "kafka_server_replicamanager_count", kind="underreplicated") == 0
    assert value(after, "kafka_server_replicamanager_count", kind="leaders") == \
        value(after, "kafka_server_replicamanager_count", kind="partitions")

    produce_requests = sum(v for (name, labels), v in after.items()
                           if name == "kafka_network_requestmetrics_requests_total"
                           and ("request", "Produce") in labels)
    assert produce_requests >= 1
    assert value(after, "kafka_network_requestmetrics_totaltime_seconds_count",
                 request="Fetch") >= 1
    # librdkafka's default is acks=all: every produce request waited for a commit.
    commits = value(after, "cairn_produce_commit_seconds_count", acks="all")
    assert commits is not None and commits >= 1, commits
    assert value(after, "cairn_produce_commit_seconds_sum", acks="all") > 0
    assert value(after, "cairn_fetch_wait_seconds_count", kind="consumer") >= 1
    assert value(after, "kafka_server_socketservermetrics_connection_count") >= 1
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_open_fds") > 0


def test_metrics_show_a_groups_lag(broker):
    topic = unique_topic("metrics-lag")
    group = unique_topic("metrics-group")
    create_topic(broker.bootstrap, topic, partitions=1)
    recorder = Recorder()
    prod = producer(broker.bootstrap)
    produce_all(prod, topic, [(None, b"%d" % i) for i in range(100)], recorder)
    recorder.assert_all_delivered(100)
    cons = consumer(broker.bootstrap, **{"group.id": group, "enable.auto.commit": False})
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        got = []
        while len(got) < 60:
            got += [m for m in cons.consume(60 - len(got), timeout=1) if m.error() is None]
        cons.commit(offsets=[TopicPartition(topic, 0, 60)], asynchronous=False)
    finally:
        cons.close()
    samples = scrape(broker)
    labels = {"consumergroup": group, "topic": topic, "partition": 0}
    assert value(samples, "kafka_consumergroup_current_offset", **labels) == 60
    assert value(samples, "kafka_consumergroup_lag", **labels) == 40
    assert value(samples, "kafka_consumergroup_state", consumergroup=group, state="Empty") == 1


ERRORS = "kafka_network_requestmetrics_errors_total"


def test_metrics_count_error_codes_per_api(broker):
    """errors_total counts each error code of each response, as Kafka's ErrorsPerSec: one per
    partition of a Produce, one per topic of a Metadata answer, NONE included; and a request
    refused for its version as UNSUPPORTED_VERSION."""
    topic = unique_topic("metrics-errors")
    create_topic(broker.bootstrap, topic, partitions=1)
    before = scrape(broker)

    def delta(after, **labels) -> float:
        return (value(after, ERRORS, **labels) or 0) - (value(before, ERRORS, **labels) or 0)

    now = int(time.time() * 1000)
    with wire.connect(broker.bootstrap) as sock:
        # Three produces to a partition the topic does not have, two to one it has.
        for n, partition in enumerate([5, 0, 5, 0, 5]):
            batch = wire.record_batch([(None, b"v%d" % n)], now)
            sock.sendall(wire.produce_request_v3(n, topic, partition, batch))
            correlation_id, results = wire.parse_produce_v3(wire.recv_frame(sock))
            assert correlation_id == n
            [(_, _, error, _)] = results
            expected = wire.ERROR_UNKNOWN_TOPIC_OR_PARTITION if partition else wire.ERROR_NONE
            assert error == expected, results
        # Metadata v1 for a name Kafka refuses: INVALID_TOPIC_EXCEPTION for that topic.
        sock.sendall(wire.metadata_request(1, 10, ["no spaces allowed"]))
        _, _, topics = wire.parse_metadata_v1(wire.recv_frame(sock))
        assert topics["no spaces allowed"][0] == 17, topics
    # An ApiVersions version the broker does not serve: answered with error 35.
    payload = wire.roundtrip(broker.bootstrap, wire.api_versions_request(99, 11))
    assert wire.parse_api_versions_v0(payload)[1] == wire.ERROR_UNSUPPORTED_VERSION
    # Any other API at such a version: no answer, the connection closes; counted all the same.
    with wire.connect(broker.bootstrap) as sock:
        wire.send_ignoring_reset(sock, wire.metadata_request(99, 12))
        assert wire.closed_by_peer(sock)

    after = scrape(broker)
    assert delta(after, request="Produce", error="UNKNOWN_TOPIC_OR_PARTITION") == 3
    assert delta(after, request="Produce", error="NONE") == 2
    assert delta(after, request="Metadata", error="INVALID_TOPIC_EXCEPTION") == 1
    assert delta(after, request="ApiVersions", error="UNSUPPORTED_VERSION") == 1
    assert delta(after, request="Metadata", error="UNSUPPORTED_VERSION") == 1
    # Every label value is a name from Kafka's table, never a bare number.
    errors = {dict(labels)["error"] for (name, labels) in after if name == ERRORS}
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", e) for e in errors), errors
    # Every answered Produce request of this test carried one partition: errors_total over
    # all codes equals the requests answered.
    produced = sum(v for (name, labels), v in after.items()
                   if name == "kafka_network_requestmetrics_requests_total"
                   and ("request", "Produce") in labels)
    produced_errors = sum(v for (name, labels), v in after.items()
                          if name == ERRORS and ("request", "Produce") in labels)
    assert produced == produced_errors == 5, (produced, produced_errors)


def test_the_grafana_dashboard_queries_only_exported_metrics(broker):
    """Every metric deploy/grafana/cairn-dashboard.json queries is one a node exports (after
    some produce, fetch and a group commit, so every family has samples)."""
    dashboard = json.loads((REPO / "deploy" / "grafana" / "cairn-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    wanted = {name for e in exprs for name in METRIC_NAME.findall(e)}
    assert len(wanted) >= 10, wanted

    topic = unique_topic("dashboard")
    create_topic(broker.bootstrap, topic, partitions=1)
    recorder = Recorder()
    prod = producer(broker.bootstrap)
    produce_all(prod, topic, [(None, b"x")] * 10, recorder)
    cons = consumer(broker.bootstrap, **{"group.id": unique_topic("dashboard-group")})
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        while not [m for m in cons.consume(10, timeout=1) if m.error() is None]:
            pass
        cons.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    finally:
        cons.close()
    exported = {name for name, _ in scrape(broker)}
    missing = sorted(wanted - exported)
    assert not missing, f"the dashboard queries metrics no node exports: {missing}"
