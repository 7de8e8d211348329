"""The HTTP API against the release binary, with a real HTTP client (tests/e2e/httputil.py on
the standard library) and, for cross-checks, a real Kafka client (confluent-kafka):

- probes and status: /livez, /readyz (503 while the node opens its logs), /v1/status;
- the admin API (REST Proxy v3 shapes): cluster, brokers, topics, partitions, replicas,
  configs of topics, the broker and the cluster, consumer groups and their lag,
  DeleteRecords — with every error case (404, 400, 409, 413, 415, 405);
- the data API (REST Proxy v2 shapes): produce in the binary, JSON and string formats,
  consumed by confluent-kafka; records confluent-kafka produced, consumed over HTTP; the
  produce rules (max.message.bytes, LogAppendTime, timestamp bounds, the disk guard);
  consume by offset and time, limits and bounded waits;
- configuration of the HTTP listener (flag, environment, file, off) and shutdown during a
  long poll.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from conftest import free_port, port_accepts, wait_until
from httputil import Http, b64, cluster_id, expect, unb64
from kafkautil import (
    ADMIN_TIMEOUT_S,
    LIBRDKAFKA_LOGGER,
    Recorder,
    admin,
    create_topic,
    produce_all,
    producer,
    read_partitions,
    unique_topic,
)

BINARY = "application/vnd.kafka.binary.v2+json"
JSON = "application/vnd.kafka.json.v2+json"
STRING = "application/vnd.kafka.string.v2+json"
V2 = "application/vnd.kafka.v2+json"

FAST_GROUPS = {
    "CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "CAIRN_BROKER_OFFSETS_TOPIC_NUM_PARTITIONS": "3",
}


@pytest.fixture
def api(broker) -> Http:
    return Http(broker.http)


def v3(client: Http) -> str:
    """The path of this node's cluster: /v3/clusters/{cluster_id}."""
    return f"/v3/clusters/{cluster_id(client)}"


def produce_http(client: Http, topic: str, records: list[dict], content_type: str = BINARY,
                 partition: int | None = None) -> list[dict]:
    path = f"/topics/{topic}" if partition is None else f"/topics/{topic}/partitions/{partition}"
    answer = client.post(path, json_body={"records": records}, content_type=content_type)
    body = expect(answer, 200)
    assert answer.content_type == V2, answer.headers
    assert body["key_schema_id"] is None and body["value_schema_id"] is None
    assert len(body["offsets"]) == len(records)
    return body["offsets"]


def consume_http(client: Http, topic: str, partition: int, accept: str = BINARY,
                 **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    answer = client.get(f"/topics/{topic}/partitions/{partition}/records?{query}",
                        headers={"Accept": accept})
    body = expect(answer, 200)
    assert answer.content_type == accept if accept.startswith("application/vnd.kafka.") \
        else answer.content_type == BINARY
    return body


def error_of(answer) -> tuple[int, int, str]:
    return answer.error()


# --- probes, status, listener -----------------------------------------------------------


def test_probes_status_and_the_ready_line(broker, api):
    assert broker.ready["http"] == broker.http
    assert expect(api.get("/livez"), 200) == {"status": "live"}
    assert expect(api.get("/readyz"), 200) == {"status": "ready"}
    topic = unique_topic("status")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_http(api, topic, [{"value": b64(b"x" * 100)}] * 3, partition=1)
    status = expect(api.get("/v1/status"), 200)
    assert status["node_id"] == 1
    assert status["cluster_id"] == broker.ready["cluster_id"]
    assert status["kafka_advertised"] == broker.bootstrap
    disk = status["disk"]
    assert disk["total_bytes"] > 0 and 0 < disk["available_bytes"] <= disk["total_bytes"]
    assert disk["full"] is False and disk["min_free_bytes"] == 64 << 20
    [t] = [t for t in status["topics"] if t["name"] == topic]
    assert (t["internal"], t["partitions_count"], t["records"]) == (False, 2, 3)
    assert t["size_bytes"] > 300
    p1 = t["partitions"][1]
    assert (p1["partition"], p1["leader"], p1["log_start_offset"], p1["high_watermark"],
            p1["log_end_offset"]) == (1, 1, 0, 3, 3)
    assert status["groups"] == []


def test_readyz_is_503_while_the_node_opens_its_logs(start_broker, tmp_path):
    broker = start_broker()
    topic = unique_topic("many")
    # Enough partitions that opening them takes a while after the HTTP server is up.
    create_topic(broker.bootstrap, topic, partitions=200)
    assert broker.stop() == 0
    api = Http(broker.http)
    seen: list[object] = []
    done = threading.Event()

    def poll():
        while not done.is_set():
            try:
                live = api.get("/livez", timeout=2).status
                ready = api.get("/readyz", timeout=2)
                seen.append((live, ready.status, ready.body))
                if ready.status == 200:
                    return
            except OSError:
                seen.append("refused")
            time.sleep(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    broker.start()
    poller.join(30)
    done.set()
    answers = [s for s in seen if s != "refused"]
    assert answers and answers[-1][1] == 200, seen[-5:]
    starting = [a for a in answers if a[1] == 503]
    assert starting, f"no 503 before ready: {answers[:3]}"
    for live, status, body in starting:
        assert live == 200, "livez answers while the node opens its logs"
        body = json.loads(body)
        assert body["error_code"] == 50302 and "starting" in body["message"], body
    # Every route but the probes is 503 until then too (checked in-process by the Rust
    # tests); once ready, they serve.
    assert expect(api.get("/v3/clusters"), 200)["kind"] == "KafkaClusterList"


def test_http_listen_off_env_and_file(serve, tmp_path):
    process, ready = serve("--http-listen", "off", "--listen", f"127.0.0.1:{free_port()}")
    assert ready["http"] == "off"
    assert process.stop() == 0, process.stderr

    port = free_port()
    process, ready = serve("--listen", f"127.0.0.1:{free_port()}",
                           env={"CAIRN_HTTP_LISTEN": f"127.0.0.1:{port}"})
    assert ready["http"] == f"http://127.0.0.1:{port}"
    assert expect(Http(ready["http"]).get("/readyz"), 200) == {"status": "ready"}
    assert process.stop() == 0, process.stderr
    assert not port_accepts("127.0.0.1", port), "the HTTP listener stops with the node"

    port = free_port()
    (tmp_path / "cairn.toml").write_text(
        f'listen = "127.0.0.1:{free_port()}"\nhttp_listen = "127.0.0.1:{port}"\n')
    # An empty CAIRN_HTTP_LISTEN counts as unset, so the file's value applies.
    process, ready = serve(env={"CAIRN_HTTP_LISTEN": ""})
    assert ready["http"] == f"http://127.0.0.1:{port}"
    assert process.stop() == 0, process.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--http-listen", "localhost"], {}, "--http-listen"),
        ([], {"CAIRN_HTTP_LISTEN": "nowhere"}, "CAIRN_HTTP_LISTEN"),
        ([], {"CAIRN_HTTP_MAX_REQUEST_BYTES": "12"}, "http_max_request_bytes"),
    ],
    ids=["flag", "env", "max-request-bytes"],
)
def test_bad_http_settings_fail_fast(run_cairn, tmp_path, args, env, expected):
    data_dir = tmp_path / "data"
    process = run_cairn("serve", "--data-dir", str(data_dir), *args, env=env)
    assert process.wait_exit() != 0
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], process.stderr
    assert not data_dir.exists()


def test_http_port_in_use_is_an_error_naming_http(serve, run_cairn, tmp_path):
    first, ready = serve("--listen", f"127.0.0.1:{free_port()}")
    taken = ready["http"].removeprefix("http://")
    second = run_cairn("serve", "--data-dir", str(tmp_path / "other"),
                       "--listen", f"127.0.0.1:{free_port()}", "--http-listen", taken)
    assert second.wait_exit() != 0
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, second.stderr
    assert f"cannot listen for HTTP on {taken}" in errors[0], errors[0]
    assert first.stop() == 0


def test_shutdown_ends_a_long_poll(start_broker):
    broker = start_broker()
    api = Http(broker.http)
    topic = unique_topic("poll")
    create_topic(broker.bootstrap, topic)
    result: dict = {}

    def poll():
        started = time.monotonic()
        try:
            result["answer"] = api.get(f"/topics/{topic}/partitions/0/records?offset=0"
                                       f"&timeout_ms=30000", timeout=40)
        except OSError as e:
            result["error"] = e
        result["took"] = time.monotonic() - started

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(0.5)
    stopped = time.monotonic()
    assert broker.stop() == 0
    assert time.monotonic() - stopped < 8, "a long poll held up the shutdown"
    poller.join(10)
    assert result["took"] < 10, result
    # Either the empty answer of a wait cut short, or the connection closed.
    if "answer" in result:
        assert expect(result["answer"], 200) == []


# --- admin: cluster, brokers, topics, partitions ------------------------------------------


def test_cluster_and_brokers(broker, api):
    listing = expect(api.get("/v3/clusters"), 200)
    assert listing["kind"] == "KafkaClusterList"
    assert listing["metadata"] == {"self": f"{broker.http}/v3/clusters", "next": None}
    [cluster] = listing["data"]
    cid = broker.ready["cluster_id"]
    base = f"{broker.http}/v3/clusters/{cid}"
    assert list(cluster)[:2] == ["kind", "metadata"]
    assert cluster["kind"] == "KafkaCluster"
    assert cluster["metadata"] == {"self": base, "resource_name": f"crn:///kafka={cid}"}
    assert cluster["cluster_id"] == cid
    assert cluster["controller"] == {"related": f"{base}/brokers/1"}
    assert cluster["topics"] == {"related": f"{base}/topics"}
    assert cluster["consumer_groups"] == {"related": f"{base}/consumer-groups"}
    assert expect(api.get(f"/v3/clusters/{cid}"), 200) == cluster

    brokers = expect(api.get(f"/v3/clusters/{cid}/brokers"), 200)
    assert brokers["kind"] == "KafkaBrokerList"
    [b] = brokers["data"]
    host, port = broker.bootstrap.split(":")
    assert (b["kind"], b["broker_id"], b["host"], b["port"]) == ("KafkaBroker", 1, host, int(port))
    assert b["configs"] == {"related": f"{base}/brokers/1/configs"}
    assert expect(api.get(f"/v3/clusters/{cid}/brokers/1"), 200) == b

    assert error_of(api.get("/v3/clusters/nope")) == (404, 404, "Cluster nope cannot be found.")
    assert error_of(api.get("/v3/clusters/nope/topics"))[:2] == (404, 404)
    assert error_of(api.get(f"/v3/clusters/{cid}/brokers/2"))[:2] == (404, 40407)
    assert error_of(api.get(f"/v3/clusters/{cid}/brokers/x"))[:2] == (400, 40001)
    assert error_of(api.get("/no/such/route")) == (404, 404, "HTTP 404 Not Found: no such route")
    assert error_of(api.delete("/v3/clusters"))[:2] == (405, 405)
    status, code, message = error_of(api.get("/v3/clusters?bogus=1"))
    assert (status, code) == (400, 40001) and message.startswith("bogus: unknown query")


def test_topic_lifecycle(broker, api):
    base = v3(api)
    topic = unique_topic("life")
    created = api.post(f"{base}/topics", json_body={
        "topic_name": topic, "partitions_count": 2, "replication_factor": 1,
        "configs": [{"name": "retention.ms", "value": "3600000"},
                    {"name": "cleanup.policy", "value": "delete"}],
    })
    t = expect(created, 201)
    assert created.content_type == "application/json"
    assert list(t)[:2] == ["kind", "metadata"]
    assert t["kind"] == "KafkaTopic"
    assert t["metadata"]["self"] == f"{broker.http}{base}/topics/{topic}"
    assert t["metadata"]["resource_name"].endswith(f"/topic={topic}")
    assert (t["topic_name"], t["is_internal"], t["replication_factor"],
            t["partitions_count"]) == (topic, False, 1, 2)
    assert t["partitions"] == {"related": f"{broker.http}{base}/topics/{topic}/partitions"}
    assert t["configs"] == {"related": f"{broker.http}{base}/topics/{topic}/configs"}
    assert "authorized_operations" not in t

    # The Kafka protocol sees the topic and its configs.
    md = admin(broker.bootstrap).list_topics(topic=topic, timeout=10)
    assert len(md.topics[topic].partitions) == 2
    assert len(t["topic_id"]) == 36 and t["topic_id"].count("-") == 4

    got = expect(api.get(f"{base}/topics/{topic}"), 200)
    assert got == t
    with_ops = expect(api.get(f"{base}/topics/{topic}?include_authorized_operations=true"), 200)
    assert "DESCRIBE" in with_ops["authorized_operations"]
    listing = expect(api.get(f"{base}/topics"), 200)
    assert listing["kind"] == "KafkaTopicList"
    assert topic in [x["topic_name"] for x in listing["data"]]

    # Partitions: leader, replicas, ISR, offsets, size.
    produce_http(api, topic, [{"value": b64(b"v%d" % i)} for i in range(5)], partition=1)
    parts = expect(api.get(f"{base}/topics/{topic}/partitions"), 200)
    assert parts["kind"] == "KafkaPartitionList"
    p0, p1 = parts["data"]
    assert (p0["partition_id"], p1["partition_id"]) == (0, 1)
    assert p1["kind"] == "KafkaPartition"
    assert (p1["leader_id"], p1["replica_ids"], p1["isr_ids"]) == (1, [1], [1])
    assert (p1["log_start_offset"], p1["high_watermark"], p1["log_end_offset"]) == (0, 5, 5)
    # An empty partition holds raft's election marker (a few dozen bytes), no records.
    assert p0["high_watermark"] == 0 and p0["size_bytes"] < 100
    assert p1["size_bytes"] > p0["size_bytes"] + 5 * 2
    assert p1["leader"] == {"related": f"{p1['metadata']['self']}/replicas/1"}
    assert expect(api.get(f"{base}/topics/{topic}/partitions/1"), 200) == p1
    replicas = expect(api.get(f"{base}/topics/{topic}/partitions/1/replicas"), 200)
    [r] = replicas["data"]
    assert (r["kind"], r["broker_id"], r["is_leader"], r["is_in_sync"]) == (
        "KafkaReplica", 1, True, True)
    assert expect(api.get(f"{base}/topics/{topic}/partitions/1/replicas/1"), 200) == r

    # Grow, then delete.
    grown = expect(api.patch(f"{base}/topics/{topic}", json_body={"partitions_count": 4}), 200)
    assert grown["partitions_count"] == 4
    assert len(expect(api.get(f"{base}/topics/{topic}/partitions"), 200)["data"]) == 4
    shrink = api.patch(f"{base}/topics/{topic}", json_body={"partitions_count": 2})
    assert error_of(shrink)[:2] == (400, 40002)
    deleted = api.delete(f"{base}/topics/{topic}")
    assert (deleted.status, deleted.body) == (204, b"")
    assert error_of(api.get(f"{base}/topics/{topic}")) == (
        404, 40401, f"topic {topic} does not exist")
    assert error_of(api.delete(f"{base}/topics/{topic}"))[:2] == (404, 40401)
    assert topic not in admin(broker.bootstrap).list_topics(timeout=10).topics


def test_topic_errors(broker, api):
    base = v3(api)
    topic = unique_topic("errs")
    create_topic(broker.bootstrap, topic)

    def create(body, **kw):
        return api.post(f"{base}/topics", json_body=body, **kw)

    assert error_of(create({"topic_name": topic})) == (
        409, 40902, f"TOPIC_ALREADY_EXISTS: topic {topic} already exists")
    status, code, message = error_of(create({"partitions_count": 1}))
    assert (status, code) == (400, 40001) and message.startswith("body: missing field `topic_name`")
    status, code, message = error_of(create({"topic_name": "x", "partitions_count": "two"}))
    assert (status, code) == (400, 40001) and message.startswith("partitions_count: ")
    status, code, message = error_of(create({"topic_name": "x", "partitons_count": 2}))
    assert (status, code) == (400, 40001) and "partitons_count" in message
    status, code, message = error_of(api.post(f"{base}/topics", body="{not json",
                                              content_type="application/json"))
    assert (status, code) == (400, 40001) and message.startswith("body: ")
    status, code, message = error_of(create({"topic_name": "a b"}))
    assert (status, code) == (400, 40002) and "INVALID_TOPIC_EXCEPTION" in message
    status, code, message = error_of(create({"topic_name": "x3", "replication_factor": 3}))
    assert (status, code) == (400, 40002) and "INVALID_REPLICATION_FACTOR" in message
    status, code, message = error_of(create({"topic_name": "x0", "partitions_count": 0}))
    assert (status, code) == (400, 40002) and "INVALID_PARTITIONS" in message
    status, code, message = error_of(create({
        "topic_name": "xc", "configs": [{"name": "retention.ms", "value": "soon"}]}))
    assert (status, code) == (400, 40002) and "retention.ms" in message
    status, code, message = error_of(create({
        "topic_name": "xa", "replicas_assignments": {"zero": [1]}}))
    assert (status, code) == (400, 40001) and message.startswith("replicas_assignments.zero")
    status, code, message = error_of(create({
        "topic_name": "xa", "replicas_assignments": {"0": [2]}}))
    assert (status, code) == (400, 40002) and "INVALID_REPLICA_ASSIGNMENT" in message
    assigned = expect(create({"topic_name": unique_topic("assigned"),
                              "replicas_assignments": {"0": [1], "1": [1]}}), 201)
    assert assigned["partitions_count"] == 2

    # validate_only: 200, nothing created.
    dry = unique_topic("dry")
    t = expect(create({"topic_name": dry, "partitions_count": 3, "validate_only": True}), 200)
    assert (t["topic_name"], t["partitions_count"]) == (dry, 3)
    assert error_of(api.get(f"{base}/topics/{dry}"))[:2] == (404, 40401)

    # Content type and size.
    status, code, message = error_of(api.post(f"{base}/topics", body=json.dumps({"topic_name": "y"}),
                                              content_type="text/plain"))
    assert (status, code) == (415, 415) and "application/json" in message
    assert error_of(api.post(f"{base}/topics", body=json.dumps({"topic_name": "y"})))[:2] == (415, 415)
    huge = json.dumps({"topic_name": "y", "configs": [{"name": "x", "value": "v" * (2 << 20)}]})
    assert error_of(api.post(f"{base}/topics", body=huge,
                             content_type="application/json"))[:2] == (413, 413)

    # Partitions.
    assert error_of(api.get(f"{base}/topics/{topic}/partitions/7")) == (
        404, 40402, f"topic {topic} has no partition 7")
    status, code, message = error_of(api.get(f"{base}/topics/{topic}/partitions/x"))
    assert (status, code) == (400, 40001) and message.startswith("partition_id: ")
    assert error_of(api.get(f"{base}/topics/nope/partitions"))[:2] == (404, 40401)
    assert error_of(api.get(f"{base}/topics/{topic}/partitions/0/replicas/5"))[:2] == (404, 40407)
    status, code, _ = error_of(api.get(f"{base}/topics/{topic}?include_authorized_operations=maybe"))
    assert (status, code) == (400, 40001)
    assert error_of(api.put(f"{base}/topics/{topic}"))[:2] == (405, 405)


# --- admin: configs ------------------------------------------------------------------------


def kafka_topic_config(bootstrap: str, topic: str) -> dict:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    client = admin(bootstrap)  # alive until the result is in
    result = client.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    return result[resource].result(timeout=ADMIN_TIMEOUT_S)


def test_topic_configs(broker, api):
    base = v3(api)
    topic = unique_topic("cfg")
    create_topic(broker.bootstrap, topic, config={"retention.ms": "3600000"})
    path = f"{base}/topics/{topic}/configs"
    listing = expect(api.get(path), 200)
    assert listing["kind"] == "KafkaTopicConfigList"
    by_name = {c["name"]: c for c in listing["data"]}
    retention = by_name["retention.ms"]
    assert retention["kind"] == "KafkaTopicConfig"
    assert retention["metadata"]["self"] == f"{broker.http}{path}/retention.ms"
    assert retention["metadata"]["resource_name"].endswith(f"/topic={topic}/config=retention.ms")
    assert (retention["topic_name"], retention["value"], retention["source"],
            retention["is_default"], retention["is_read_only"], retention["is_sensitive"]) == (
        topic, "3600000", "DYNAMIC_TOPIC_CONFIG", False, False, False)
    assert retention["synonyms"][0] == {"name": "retention.ms", "value": "3600000",
                                        "source": "DYNAMIC_TOPIC_CONFIG"}
    assert {"name": "log.retention.ms", "value": "604800000", "source": "DEFAULT_CONFIG"} in \
        retention["synonyms"]
    segment = by_name["segment.bytes"]
    assert (segment["source"], segment["is_default"]) == ("DEFAULT_CONFIG", True)
    assert expect(api.get(f"{path}/retention.ms"), 200) == retention

    # PUT, then the Kafka protocol sees it.
    answer = api.put(f"{path}/segment.bytes", json_body={"value": "1048576"})
    assert (answer.status, answer.body) == (204, b"")
    assert kafka_topic_config(broker.bootstrap, topic)["segment.bytes"].value == "1048576"
    assert expect(api.get(f"{path}/segment.bytes"), 200)["source"] == "DYNAMIC_TOPIC_CONFIG"

    # DELETE resets to the inherited value.
    assert api.delete(f"{path}/retention.ms").status == 204
    reset = expect(api.get(f"{path}/retention.ms"), 200)
    assert (reset["value"], reset["source"]) == ("604800000", "DEFAULT_CONFIG")

    # A batch: applied whole or refused whole.
    batch = {"data": [{"name": "retention.ms", "value": "7200000"},
                      {"name": "segment.bytes", "operation": "DELETE"},
                      {"name": "cleanup.policy", "value": "compact", "operation": "set"}]}
    assert api.post(f"{path}:alter", json_body=batch).status == 204
    described = kafka_topic_config(broker.bootstrap, topic)
    assert described["retention.ms"].value == "7200000"
    assert described["segment.bytes"].value == "1073741824"
    assert described["cleanup.policy"].value == "compact"
    bad_batch = {"data": [{"name": "retention.ms", "value": "1"},
                          {"name": "segment.bytes", "value": "tiny"}]}
    status, code, message = error_of(api.post(f"{path}:alter", json_body=bad_batch))
    assert (status, code) == (400, 40002) and "segment.bytes" in message
    assert kafka_topic_config(broker.bootstrap, topic)["retention.ms"].value == "7200000"
    dry = {"data": [{"name": "retention.ms", "value": "1"}], "validate_only": True}
    assert api.post(f"{path}:alter", json_body=dry).status == 204
    assert kafka_topic_config(broker.bootstrap, topic)["retention.ms"].value == "7200000"
    twice = {"data": [{"name": "retention.ms", "value": "1"}, {"name": "retention.ms", "value": "2"}]}
    assert error_of(api.post(f"{path}:alter", json_body=twice))[:2] == (400, 40002)
    status, code, message = error_of(api.post(f"{path}:alter", json_body={
        "data": [{"name": "retention.ms", "value": "1", "operation": "REPLACE"}]}))
    assert (status, code) == (400, 40001) and message.startswith("data[0].operation")
    status, code, message = error_of(api.post(f"{path}:alter", json_body={
        "data": [{"name": "retention.ms"}]}))
    assert (status, code) == (400, 40001) and message.startswith("data[0].value")

    # Errors.
    assert error_of(api.get(f"{path}/no.such.config")) == (
        404, 40404, f"topic {topic} has no config no.such.config")
    assert error_of(api.delete(f"{path}/no.such.config"))[:2] == (404, 40404)
    status, code, message = error_of(api.put(f"{path}/no.such.config", json_body={"value": "1"}))
    assert (status, code) == (400, 40002) and "INVALID_CONFIG" in message
    status, code, message = error_of(api.put(f"{path}/retention.ms", json_body={"value": None}))
    assert (status, code) == (400, 40001) and message.startswith("value: ")
    status, code, _ = error_of(api.put(f"{path}/retention.ms", json_body={"value": "x"}))
    assert (status, code) == (400, 40002)
    assert error_of(api.get(f"{base}/topics/nope/configs"))[:2] == (404, 40401)
    assert error_of(api.put(f"{path}/retention.ms", body='{"value": "1"}',
                            content_type="text/plain"))[:2] == (415, 415)


def test_broker_and_cluster_configs(broker, api):
    base = v3(api)
    listing = expect(api.get(f"{base}/brokers/1/configs"), 200)
    assert listing["kind"] == "KafkaBrokerConfigList"
    by_name = {c["name"]: c for c in listing["data"]}
    retention = by_name["log.retention.ms"]
    assert (retention["kind"], retention["broker_id"], retention["source"],
            retention["is_read_only"]) == ("KafkaBrokerConfig", 1, "DEFAULT_CONFIG", False)
    assert by_name["num.partitions"]["is_read_only"] is True

    assert api.put(f"{base}/brokers/1/configs/log.retention.ms",
                   json_body={"value": "86400000"}).status == 204
    got = expect(api.get(f"{base}/brokers/1/configs/log.retention.ms"), 200)
    assert (got["value"], got["source"]) == ("86400000", "DYNAMIC_BROKER_CONFIG")
    resource = ConfigResource(ResourceType.BROKER, "1")
    client = admin(broker.bootstrap)
    described = client.describe_configs([resource])[resource].result(timeout=ADMIN_TIMEOUT_S)
    assert described["log.retention.ms"].value == "86400000"
    # Read-only configs are refused as Kafka refuses them.
    status, code, message = error_of(api.put(f"{base}/brokers/1/configs/num.partitions",
                                             json_body={"value": "3"}))
    assert (status, code) == (400, 40002) and "INVALID_REQUEST" in message
    assert api.delete(f"{base}/brokers/1/configs/log.retention.ms").status == 204
    got = expect(api.get(f"{base}/brokers/1/configs/log.retention.ms"), 200)
    assert got["source"] == "DEFAULT_CONFIG"

    # Cluster-wide defaults: REST Proxy's broker-configs.
    cluster = expect(api.get(f"{base}/broker-configs"), 200)
    assert cluster["kind"] == "KafkaClusterConfigList"
    assert api.post(f"{base}/broker-configs:alter", json_body={
        "data": [{"name": "log.segment.bytes", "value": "2097152"}]}).status == 204
    got = expect(api.get(f"{base}/broker-configs/log.segment.bytes"), 200)
    assert (got["kind"], got["value"], got["source"], got["config_type"]) == (
        "KafkaClusterConfig", "2097152", "DYNAMIC_DEFAULT_BROKER_CONFIG", "BROKER")
    assert expect(api.get(f"{base}/brokers/1/configs/log.segment.bytes"), 200)["source"] == \
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    assert api.put(f"{base}/broker-configs/log.retention.bytes",
                   json_body={"value": "1073741824"}).status == 204
    got = expect(api.get(f"{base}/broker-configs/log.retention.bytes"), 200)
    assert (got["value"], got["source"]) == ("1073741824", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    assert api.delete(f"{base}/broker-configs/log.retention.bytes").status == 204
    # As Kafka describes the cluster-wide resource: only the configs set at that level.
    assert error_of(api.get(f"{base}/broker-configs/log.retention.bytes"))[:2] == (404, 40404)
    assert expect(api.get(f"{base}/brokers/1/configs/log.retention.bytes"), 200)["source"] == \
        "DEFAULT_CONFIG"
    # A broker's batch; the per-broker value wins over the cluster-wide one.
    assert api.post(f"{base}/brokers/1/configs:alter", json_body={"data": [
        {"name": "log.segment.bytes", "value": "4194304"},
        {"name": "log.flush.interval.ms", "value": "1000"}]}).status == 204
    got = expect(api.get(f"{base}/brokers/1/configs/log.segment.bytes"), 200)
    assert (got["value"], got["source"]) == ("4194304", "DYNAMIC_BROKER_CONFIG")
    status, code, message = error_of(api.post(f"{base}/brokers/1/configs:alter", json_body={
        "data": [{"name": "log.segment.bytes", "value": "x", "operation": "APPEND"}]}))
    assert (status, code) == (400, 40002) and "INVALID_CONFIG" in message
    assert error_of(api.get(f"{base}/brokers/2/configs"))[:2] == (404, 40407)
    assert error_of(api.post(f"{base}/brokers/2/configs:alter", json_body={"data": []}))[:2] == (
        404, 40407)
    assert error_of(api.get(f"{base}/broker-configs/nope"))[:2] == (404, 40404)


# --- data: produce over HTTP, consume with Kafka, and the other way ------------------------


def test_produce_over_http_consume_with_confluent_kafka(broker, api):
    topic = unique_topic("http2kafka")
    create_topic(broker.bootstrap, topic, partitions=3)
    stamp = int(time.time() * 1000) - 60_000
    binary = produce_http(api, topic, [
        {"key": b64(b"k\x00bin"), "value": b64(bytes(range(256))), "partition": 0,
         "headers": [{"name": "h1", "value": b64(b"\xff\x00")}, {"name": "h2", "value": None}],
         "timestamp": stamp},
        {"key": None, "value": None, "partition": 0},
    ])
    assert [(o["partition"], o["offset"], o["error_code"], o["error"]) for o in binary] == [
        (0, 0, None, None), (0, 1, None, None)]
    as_json = produce_http(api, topic, [
        {"key": {"id": 7}, "value": {"name": "é", "n": [1, 2.5, None]}},
        {"key": "plain", "value": 42},
    ], content_type=JSON, partition=1)
    assert [(o["partition"], o["offset"]) for o in as_json] == [(1, 0), (1, 1)]
    as_text = produce_http(api, topic, [{"key": "k", "value": "text ünïcode"}],
                           content_type=STRING, partition=2)
    assert [(o["partition"], o["offset"]) for o in as_text] == [(2, 0)]

    records = read_partitions(broker.bootstrap, topic, 3, expected=5)
    by_pos = {(m.partition(), m.offset()): m for m in records}
    assert len(by_pos) == 5
    m = by_pos[(0, 0)]
    assert (m.key(), m.value()) == (b"k\x00bin", bytes(range(256)))
    assert m.headers() == [("h1", b"\xff\x00"), ("h2", None)]
    assert m.timestamp()[1] == stamp
    m = by_pos[(0, 1)]
    assert (m.key(), m.value()) == (None, None)
    assert now_ms_close(m.timestamp()[1])
    assert json.loads(by_pos[(1, 0)].key()) == {"id": 7}
    assert json.loads(by_pos[(1, 0)].value()) == {"name": "é", "n": [1, 2.5, None]}
    assert (by_pos[(1, 1)].key(), by_pos[(1, 1)].value()) == (b'"plain"', b"42")
    m = by_pos[(2, 0)]
    assert (m.key(), m.value()) == (b"k", "text ünïcode".encode())


def now_ms_close(ms: int, within_ms: int = 60_000) -> bool:
    return abs(int(time.time() * 1000) - ms) < within_ms


def test_keys_land_where_kafkas_producers_put_them(broker, api):
    topic = unique_topic("keys")
    create_topic(broker.bootstrap, topic, partitions=7)
    keys = [b"key-%d" % i for i in range(40)]
    offsets = produce_http(api, topic, [{"key": b64(k), "value": b64(b"v")} for k in keys])
    # librdkafka's murmur2_random is Java's default partitioner.
    recorder = Recorder()
    prod = producer(broker.bootstrap, partitioner="murmur2_random")
    produce_all(prod, topic, [(k, b"v") for k in keys], recorder)
    recorder.assert_all_delivered(len(keys))
    kafka_partitions = {r.key: r.partition for r in recorder.reports}
    assert [o["partition"] for o in offsets] == [kafka_partitions[k] for k in keys]
    # Records without a key of one request stick to one partition.
    unkeyed = produce_http(api, topic, [{"value": b64(b"u")}] * 10)
    assert len({o["partition"] for o in unkeyed}) == 1


def test_consume_over_http_what_confluent_kafka_produced(broker, api):
    topic = unique_topic("kafka2http")
    create_topic(broker.bootstrap, topic, partitions=2)
    recorder = Recorder()
    for codec in ["none", "gzip", "lz4", "zstd", "snappy"]:
        prod = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 5})
        items = [(b"k-%s-%d" % (codec.encode(), i), json.dumps({"codec": codec, "i": i}).encode())
                 for i in range(20)]
        for key, value in items:
            prod.produce(topic, key=key, value=value, partition=1, on_delivery=recorder,
                         headers=[("codec", codec.encode())])
        assert prod.flush(30) == 0
    recorder.assert_all_delivered(100)
    reports = sorted(recorder.reports, key=lambda r: r.offset)

    got = consume_http(api, topic, 1, offset=0, max_records=1000, timeout_ms=0)
    assert [r["offset"] for r in got] == list(range(100))
    for r, d in zip(got, reports):
        assert r["topic"] == topic and r["partition"] == 1
        assert unb64(r["key"]) == d.key and unb64(r["value"]) == d.value
        assert r["timestamp"] == d.timestamp[1] and r["timestamp_type"] == "CREATE_TIME"
        assert len(r["headers"]) == 1 and r["headers"][0]["name"] == "codec"
    # JSON: keys and values must be JSON (these keys are not).
    status, code, message = error_of(api.get(f"/topics/{topic}/partitions/1/records?offset=95",
                                             headers={"Accept": JSON}))
    assert (status, code) == (422, 42203) and "offset 95" in message
    prod = producer(broker.bootstrap)
    produce_all(prod, topic, [(b'{"k": 1}', b'[true, {"x": null}]')], Recorder(), partition=0)
    as_json = consume_http(api, topic, 0, accept=JSON, offset=0)
    assert (as_json[0]["key"], as_json[0]["value"]) == ({"k": 1}, [True, {"x": None}])
    as_text = consume_http(api, topic, 1, accept=STRING, offset=99)
    assert as_text[0]["key"] == "k-snappy-19"
    assert json.loads(as_text[0]["value"]) == {"codec": "snappy", "i": 19}

    # Limits: records and bytes (a first record larger than max_bytes still comes).
    assert len(consume_http(api, topic, 1, offset=10, max_records=7)) == 7
    one = len(got[10]["value"]) * 3 // 4
    few = consume_http(api, topic, 1, offset=10, max_bytes=one * 3)
    assert 1 <= len(few) <= 3
    assert len(consume_http(api, topic, 1, offset=10, max_bytes=1)) == 1

    # By time: the first record stamped at or after it.
    t = reports[42].timestamp[1]
    by_time = consume_http(api, topic, 1, timestamp=t, max_records=1)
    assert by_time[0]["offset"] == min(d.offset for d in reports if d.timestamp[1] >= t)
    assert consume_http(api, topic, 1, timestamp=t + 10 ** 9, timeout_ms=0) == []



def test_consume_waits_are_bounded_and_wake_on_new_records(broker, api):
    topic = unique_topic("wait")
    create_topic(broker.bootstrap, topic)
    started = time.monotonic()
    assert consume_http(api, topic, 0, offset=0, timeout_ms=700) == []
    took = time.monotonic() - started
    assert 0.6 < took < 5, took
    assert consume_http(api, topic, 0, offset=0, timeout_ms=0) == []

    # A waiting consume answers as soon as a record arrives.
    result: dict = {}

    def wait():
        t0 = time.monotonic()
        result["records"] = consume_http(api, topic, 0, offset=0, timeout_ms=20000)
        result["took"] = time.monotonic() - t0

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    time.sleep(0.5)
    produce_http(api, topic, [{"value": b64(b"late")}])
    waiter.join(20)
    assert [unb64(r["value"]) for r in result["records"]] == [b"late"]
    assert result["took"] < 10, result


def test_consume_errors(broker, api):
    topic = unique_topic("cerr")
    create_topic(broker.bootstrap, topic)
    produce_http(api, topic, [{"value": b64(b"a")}, {"value": b64(b"b")}])

    def err(query, accept=BINARY, partition=0, name=topic):
        return error_of(api.get(f"/topics/{name}/partitions/{partition}/records?{query}",
                                headers={"Accept": accept}))

    assert err("offset=0", name="nope") == (404, 40401, "topic nope does not exist")
    assert err("offset=0", partition=3) == (404, 40402, f"topic {topic} has no partition 3")
    status, code, message = err("offset=5")
    assert (status, code) == (400, 40003) and "OFFSET_OUT_OF_RANGE" in message
    assert "0 to 2" in message
    assert err("")[:2] == (400, 40001)
    assert err("offset=0&timestamp=1")[:2] == (400, 40001)
    status, code, message = err("offset=-1")
    assert (status, code) == (400, 40001) and message.startswith("offset: ")
    status, code, message = err("offset=0&timeout_ms=30001")
    assert (status, code) == (400, 40001) and message.startswith("timeout_ms: 30001 is out of range")
    assert err("offset=0&max_records=0")[:2] == (400, 40001)
    assert err("offset=0&max_records=10001")[:2] == (400, 40001)
    assert err("offset=0&max_bytes=16777217")[:2] == (400, 40001)
    status, code, message = err("offset=0&limit=5")
    assert (status, code) == (400, 40001) and message.startswith("limit: unknown query parameter")
    assert err("offset=0", partition="x")[:2] == (400, 40001)
    status, code, message = err("offset=0", accept="text/html")
    assert (status, code) == (406, 406) and BINARY in message
    # An Accept that allows anything gets the binary format.
    answer = api.get(f"/topics/{topic}/partitions/0/records?offset=0", headers={"Accept": "*/*"})
    assert answer.status == 200 and answer.content_type == BINARY
    assert error_of(api.post(f"/topics/{topic}/partitions/0/records?offset=0"))[:2] == (405, 405)


def test_produce_errors(start_broker):
    broker = start_broker(env={"CAIRN_HTTP_MAX_REQUEST_BYTES": "65536"})
    api = Http(broker.http)
    topic = unique_topic("perr")
    create_topic(broker.bootstrap, topic, partitions=2)

    def post(path, body, content_type=BINARY):
        data = body if isinstance(body, str) else json.dumps(body)
        return api.post(path, body=data, content_type=content_type)

    one = {"records": [{"value": b64(b"v")}]}
    assert error_of(post("/topics/nope", one)) == (404, 40401, "topic nope does not exist")
    assert error_of(post(f"/topics/{topic}/partitions/2", one)) == (
        404, 40402, f"topic {topic} has no partition 2")
    assert error_of(post(f"/topics/{topic}", {"records": [
        {"value": b64(b"v"), "partition": 5}]}))[:2] == (404, 40402)
    status, code, message = error_of(post(f"/topics/{topic}/partitions/0", {"records": [
        {"value": b64(b"v"), "partition": 0}]}))
    assert (status, code) == (400, 40001) and message.startswith("records[0].partition")
    status, code, message = error_of(post(f"/topics/{topic}", {"records": [
        {"value": b64(b"ok")}, {"key": "not base64!", "value": b64(b"v")}]}))
    assert (status, code) == (400, 40001)
    assert message.startswith("records[1].key: not valid base64"), message
    status, code, message = error_of(post(f"/topics/{topic}", {"records": [
        {"value": b64(b"v"), "headers": [{"name": "h", "value": "%%%"}]}]}))
    assert (status, code) == (400, 40001) and message.startswith("records[0].headers[0].value")
    status, code, message = error_of(post(f"/topics/{topic}", {"records": [
        {"value": b64(b"v"), "headers": [{"name": "h", "value": None},
                                         {"name": "h", "value": None}]}]}))
    assert (status, code) == (400, 40001) and message.startswith("records[0].headers[1].name")
    status, code, message = error_of(post(f"/topics/{topic}", {"records": [{"value": 5}]}, STRING))
    assert (status, code) == (400, 40001) and message.startswith("records[0].value")
    status, code, message = error_of(post(f"/topics/{topic}", {"records": [{"value": [1]}]}))
    assert (status, code) == (400, 40001) and "base64" in message
    status, code, message = error_of(post(f"/topics/{topic}", '{"records": [', JSON))
    assert (status, code) == (400, 40001) and "EOF while parsing" in message
    assert error_of(post(f"/topics/{topic}", {"records": []}))[:2] == (400, 40001)
    status, code, message = error_of(post(f"/topics/{topic}", {"record": []}))
    assert (status, code) == (400, 40001) and "record" in message
    # Content types: the v2 embedded formats only.
    for content_type in ["application/json", "text/plain", "application/vnd.kafka.avro.v2+json"]:
        status, code, message = error_of(post(f"/topics/{topic}", one, content_type))
        assert (status, code) == (415, 415) and BINARY in message, content_type
    assert error_of(api.post(f"/topics/{topic}", body=json.dumps(one)))[:2] == (415, 415)
    # Body size: http_max_request_bytes (64 KiB here), declared or streamed.
    big = {"records": [{"value": b64(b"x" * 70_000)}]}
    assert error_of(post(f"/topics/{topic}", big)) == (
        413, 413, "HTTP 413 Payload Too Large: the request body is larger than this route "
        "accepts (produce: http_max_request_bytes; other routes: 1 MiB)")
    chunked = api.request("POST", f"/topics/{topic}",
                          body=iter([json.dumps(big).encode()]),
                          headers={"Content-Type": BINARY, "Transfer-Encoding": "chunked"})
    assert error_of(chunked)[:2] == (413, 413)
    # Nothing of the refused requests was written.
    assert consume_http(api, topic, 0, offset=0, timeout_ms=0) == []
    assert consume_http(api, topic, 1, offset=0, timeout_ms=0) == []


def test_produce_follows_the_topics_rules(start_broker):
    broker = start_broker()
    api = Http(broker.http)
    base = v3(api)
    small = unique_topic("small")
    expect(api.post(f"{base}/topics", json_body={
        "topic_name": small, "configs": [{"name": "max.message.bytes", "value": "2000"}]}), 201)
    # Records over max.message.bytes fail alone (each batch stays within the limit).
    offsets = produce_http(api, small, [
        {"value": b64(b"a" * 100)}, {"value": b64(b"b" * 5000)}, {"value": b64(b"c" * 100)},
    ] + [{"value": b64(b"d" * 500)} for _ in range(10)], partition=0)
    assert offsets[1]["partition"] is None and offsets[1]["offset"] is None
    assert offsets[1]["error_code"] == 50002
    assert offsets[1]["error"].startswith("MESSAGE_TOO_LARGE"), offsets[1]
    good = [o for i, o in enumerate(offsets) if i != 1]
    assert [o["offset"] for o in good] == list(range(12))
    assert all(o["error_code"] is None for o in good)

    # LogAppendTime: the broker's clock, whatever the record says.
    appended = unique_topic("append")
    expect(api.post(f"{base}/topics", json_body={
        "topic_name": appended,
        "configs": [{"name": "message.timestamp.type", "value": "LogAppendTime"}]}), 201)
    produce_http(api, appended, [{"value": b64(b"t"), "timestamp": 1000}])
    [r] = consume_http(api, appended, 0, offset=0)
    assert r["timestamp_type"] == "LOG_APPEND_TIME" and now_ms_close(r["timestamp"])
    [m] = read_partitions(broker.bootstrap, appended, 1, expected=1)
    assert m.timestamp() == (2, r["timestamp"])  # TIMESTAMP_LOG_APPEND_TIME

    # Create times outside message.timestamp.before.max.ms are refused (per record).
    strict = unique_topic("strict")
    expect(api.post(f"{base}/topics", json_body={
        "topic_name": strict,
        "configs": [{"name": "message.timestamp.before.max.ms", "value": "60000"}]}), 201)
    [o] = produce_http(api, strict, [{"value": b64(b"old"), "timestamp": 1000}])
    assert o["error_code"] == 50002 and o["error"].startswith("INVALID_TIMESTAMP"), o



def test_produce_is_refused_while_the_disk_is_full(start_broker):
    # A margin larger than any disk: the disk guard says full at once.
    broker = start_broker(env={"CAIRN_BROKER_STORAGE_MIN_FREE_BYTES": str(1 << 60)})
    api = Http(broker.http)
    topic = unique_topic("full")
    expect(api.post(f"{v3(api)}/topics", json_body={"topic_name": topic}), 201)
    [o] = produce_http(api, topic, [{"value": b64(b"v")}])
    assert o["error_code"] == 50003, o  # KAFKA_STORAGE_ERROR is retriable
    assert o["error"].startswith("KAFKA_STORAGE_ERROR") and "storage.min.free.bytes" in o["error"]
    assert expect(api.get("/v1/status"), 200)["disk"]["full"] is True


# --- admin: DeleteRecords ------------------------------------------------------------------


def test_delete_records(broker, api):
    base = v3(api)
    topic = unique_topic("delrec")
    create_topic(broker.bootstrap, topic)
    produce_http(api, topic, [{"value": b64(b"%d" % i)} for i in range(10)])
    path = f"{base}/topics/{topic}/partitions/0/records:delete"
    deleted = expect(api.post(path, json_body={"before_offset": 4}), 200)
    assert (deleted["kind"], deleted["topic_name"], deleted["partition_id"],
            deleted["low_watermark"]) == ("KafkaDeletedRecords", topic, 0, 4)
    p = expect(api.get(f"{base}/topics/{topic}/partitions/0"), 200)
    assert (p["log_start_offset"], p["high_watermark"]) == (4, 10)
    assert error_of(api.get(f"/topics/{topic}/partitions/0/records?offset=2"))[:2] == (400, 40003)
    assert [unb64(r["value"]) for r in consume_http(api, topic, 0, offset=4, max_records=2)] == [
        b"4", b"5"]
    records = read_partitions(broker.bootstrap, topic, 1, expected=6)
    assert [m.offset() for m in records] == list(range(4, 10))

    assert expect(api.post(path, json_body={"before_offset": -1}), 200)["low_watermark"] == 10
    status, code, message = error_of(api.post(path, json_body={"before_offset": 99}))
    assert (status, code) == (400, 40003) and "OFFSET_OUT_OF_RANGE" in message
    status, code, message = error_of(api.post(path, json_body={"before_offset": -5}))
    assert (status, code) == (400, 40001) and message.startswith("before_offset")
    assert error_of(api.post(path, json_body={}))[:2] == (400, 40001)
    assert error_of(api.post(f"{base}/topics/{topic}/partitions/1/records:delete",
                             json_body={"before_offset": 0}))[:2] == (404, 40402)
    assert error_of(api.post(f"{base}/topics/nope/partitions/0/records:delete",
                             json_body={"before_offset": 0}))[:2] == (404, 40401)
    assert error_of(api.post(path, body='{"before_offset": 1}',
                             content_type="text/plain"))[:2] == (415, 415)


# --- admin: consumer groups and their lag ---------------------------------------------------


def group_consumer(bootstrap: str, group: str, client_id: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "logger": LIBRDKAFKA_LOGGER,
        "group.id": group,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })


def test_consumer_group_lag_matches_a_real_group(start_broker):
    broker = start_broker(env=FAST_GROUPS)
    api = Http(broker.http)
    base = v3(api)
    topic = unique_topic("lag")
    create_topic(broker.bootstrap, topic, partitions=3)
    for p in range(3):
        produce_http(api, topic, [{"value": b64(b"%d-%d" % (p, i))} for i in range(10)],
                     partition=p)
    group = unique_topic("group")
    consumer = group_consumer(broker.bootstrap, group, "lag-client")
    try:
        consumer.subscribe([topic])
        consumed = 0
        deadline = time.monotonic() + 60
        while consumed < 30:
            assert time.monotonic() < deadline, f"consumed {consumed} of 30"
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                consumed += 1
        committed = {0: 3, 1: 5, 2: 10}
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()],
                        asynchronous=False)
        # What the Kafka client says is uncommitted: high watermark minus committed offset.
        kafka_committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(3)], timeout=30)
        uncommitted = {}
        for tp in kafka_committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=30)
            uncommitted[tp.partition] = high - tp.offset
        assert uncommitted == {0: 7, 1: 5, 2: 0}

        lags = expect(api.get(f"{base}/consumer-groups/{group}/lags"), 200)
        assert lags["kind"] == "KafkaConsumerLagList"
        by_partition = {lag["partition_id"]: lag for lag in lags["data"]}
        assert {p: lag["lag"] for p, lag in by_partition.items()} == uncommitted
        member = wait_until(lambda: stable_member(api, base, group), 30, "a Stable group")
        for p, lag in by_partition.items():
            assert (lag["kind"], lag["topic_name"], lag["current_offset"], lag["log_end_offset"]) == (
                "KafkaConsumerLag", topic, committed[p], 10)
            assert (lag["consumer_id"], lag["client_id"]) == (member, "lag-client")
        one = expect(api.get(f"{base}/consumer-groups/{group}/lags/{topic}/partitions/1"), 200)
        assert one == by_partition[1]
        summary = expect(api.get(f"{base}/consumer-groups/{group}/lag-summary"), 200)
        assert (summary["kind"], summary["total_lag"], summary["max_lag"],
                summary["max_lag_topic_name"], summary["max_lag_partition_id"],
                summary["max_lag_consumer_id"], summary["max_lag_client_id"]) == (
            "KafkaConsumerGroupLagSummary", 12, 7, topic, 0, member, "lag-client")

        # The group, its consumer and the consumer's assignment.
        g = expect(api.get(f"{base}/consumer-groups/{group}"), 200)
        assert (g["kind"], g["consumer_group_id"], g["state"], g["type"], g["is_simple"],
                g["partition_assignor"]) == (
            "KafkaConsumerGroup", group, "STABLE", "CLASSIC", False, "range")
        assert g["coordinator"]["related"].endswith(f"{base}/brokers/1")
        listed = expect(api.get(f"{base}/consumer-groups"), 200)
        assert listed["kind"] == "KafkaConsumerGroupList"
        assert [x for x in listed["data"] if x["consumer_group_id"] == group] == [g]
        consumers = expect(api.get(f"{base}/consumer-groups/{group}/consumers"), 200)
        [c] = consumers["data"]
        assert (c["kind"], c["consumer_id"], c["client_id"], c["instance_id"]) == (
            "KafkaConsumer", member, "lag-client", None)
        assert expect(api.get(f"{base}/consumer-groups/{group}/consumers/{member}"), 200) == c
        assignments = expect(api.get(c["assignments"]["related"].removeprefix(broker.http)), 200)
        assert assignments["kind"] == "KafkaConsumerAssignmentList"
        assert sorted((a["topic_name"], a["partition_id"]) for a in assignments["data"]) == [
            (topic, 0), (topic, 1), (topic, 2)]

        # New records over HTTP move the lag; the status page shows it too.
        produce_http(api, topic, [{"value": b64(b"more")}] * 4, partition=2)
        lags = expect(api.get(f"{base}/consumer-groups/{group}/lags"), 200)
        assert {lag["partition_id"]: lag["lag"] for lag in lags["data"]} == {0: 7, 1: 5, 2: 4}
        [status] = [x for x in expect(api.get("/v1/status"), 200)["groups"]
                    if x["group_id"] == group]
        assert (status["state"], status["members"], status["total_lag"]) == ("Stable", 1, 16)

        # Clients do not write the internal topic (which the group created).
        [o] = produce_http(api, "__consumer_offsets", [{"value": b64(b"x")}], partition=0)
        assert o["error_code"] == 50002 and o["error"].startswith("INVALID_TOPIC_EXCEPTION"), o

        # A group with members cannot be deleted.
        status, code, message = error_of(api.delete(f"{base}/consumer-groups/{group}"))
        assert (status, code) == (409, 40903) and "NON_EMPTY_GROUP" in message
        assert error_of(api.get(f"{base}/consumer-groups/{group}/consumers/nobody"))[:2] == (
            404, 40406)
        assert error_of(api.get(
            f"{base}/consumer-groups/{group}/lags/{topic}/partitions/9"))[:2] == (404, 40402)
    finally:
        consumer.close()
    empty = wait_until(
        lambda: expect(api.get(f"{base}/consumer-groups/{group}"), 200)["state"] == "EMPTY",
        30, "the group to be Empty after its consumer left")
    assert empty
    assert api.delete(f"{base}/consumer-groups/{group}").status == 204
    assert error_of(api.get(f"{base}/consumer-groups/{group}")) == (
        404, 40405, f"consumer group {group} does not exist")
    assert error_of(api.delete(f"{base}/consumer-groups/{group}"))[:2] == (404, 40405)
    assert error_of(api.get(f"{base}/consumer-groups/{group}/lags"))[:2] == (404, 40405)
    groups = admin(broker.bootstrap).list_consumer_groups().result(timeout=ADMIN_TIMEOUT_S)
    assert group not in [g.group_id for g in groups.valid]


def stable_member(api: Http, base: str, group: str) -> str | None:
    """The member id of the group's one consumer once the group is Stable."""
    g = api.get(f"{base}/consumer-groups/{group}").json()
    if g.get("state") != "STABLE":
        return None
    consumers = api.get(f"{base}/consumer-groups/{group}/consumers").json()["data"]
    return consumers[0]["consumer_id"] if len(consumers) == 1 else None
