"""A three-node cluster on loopback, driven by real clients.

Three `cairn serve` processes with `controller.quorum.voters` naming all three: a metadata
quorum (topics created on any node appear on every node) and every partition replicated
on all three, with leaders elected by raft. Checked:
- every node lists all three brokers, one controller, and every partition's leader and
  replicas; a topic created through one node appears on all of them;
- an idempotent librdkafka producer (acks=all, library defaults otherwise) keeps producing
  while the leader of a partition is killed with SIGKILL: produce resumes within seconds on
  the new leader, the killed node comes back and catches up, and afterwards every
  acknowledged value is read back exactly once, at the partition and offset it was
  acknowledged at, with offsets dense per partition, and leader balancing gives the node
  its share of leaders back;
- a graceful shutdown hands leaderships over without failed deliveries or a silence of a
  second; a consumer group follows its coordinator to another node when it is killed;
- a replication factor other than the node count is refused with a clear message.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import wire
from conftest import clean_env, free_port, wait_until
from kafkautil import NOT_ACKED, SequenceProducer, admin, consumer, read_partitions, unique_topic

NODES = 3


def start_cluster(start_broker, nodes: int = NODES, env: dict | None = None):
    ports = {i: free_port() for i in range(1, nodes + 1)}
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in ports.items())
    brokers = []
    for i in range(1, nodes + 1):
        brokers.append(start_broker(env={
            "CAIRN_BROKER_NODE_ID": str(i),
            "CAIRN_BROKER_CONTROLLER_QUORUM_VOTERS": voters,
            # CAIRN_TEST_LOG_LEVEL=debug,... to see more of the nodes in a failure's report.
            **({"CAIRN_LOG_LEVEL": os.environ["CAIRN_TEST_LOG_LEVEL"]}
               if os.environ.get("CAIRN_TEST_LOG_LEVEL") else {}),
            **(env or {}),
        }))
    return brokers


def bootstrap(brokers) -> str:
    return ",".join(b.bootstrap for b in brokers if b.running())


def metadata(broker, topic: str | None = None):
    """The Metadata answer of one node (librdkafka asks the broker it is connected to)."""
    return admin(broker.bootstrap).list_topics(topic=topic, timeout=10)


def wait_for_controller(brokers) -> int:
    found = {}

    def agreed():
        ids = set()
        for b in brokers:
            if b.running():
                ids.add(metadata(b).controller_id)
        found["ids"] = ids
        return len(ids) == 1 and -1 not in ids

    wait_until(agreed, timeout=30, what="every node to name one controller")
    return found["ids"].pop()


def leaders(broker, topic: str) -> dict[int, int]:
    md = metadata(broker, topic).topics[topic]
    return {p.id: p.leader for p in md.partitions.values()}


def preferred_leaders(broker, topic: str) -> dict[int, int]:
    """Each partition's preferred leader: the first of its replicas, as in Kafka."""
    md = metadata(broker, topic).topics[topic]
    return {p.id: p.replicas[0] for p in md.partitions.values()}


def wait_for_leaders(brokers, topic: str, partitions: int) -> dict[int, int]:
    seen = {}

    def ready():
        for b in brokers:
            if not b.running():
                continue
            try:
                found = leaders(b, topic)
            except KafkaException:
                return False
            if len(found) != partitions or any(leader < 0 for leader in found.values()):
                return False
            seen.update(found)
        return True

    wait_until(ready, timeout=30, what=f"leaders for every partition of {topic}")
    return seen


def create_topic(brokers, name: str, partitions: int, rf: int = NODES,
                 configs: dict | None = None):
    # The client must outlive its futures (destroying it fails them).
    client = admin(bootstrap(brokers))
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=rf,
                  config=configs or {})],
        operation_timeout=30)
    futures[name].result(60)


def test_nodes_agree_on_brokers_controller_and_topics(start_broker):
    brokers = start_cluster(start_broker)
    controller = wait_for_controller(brokers)
    assert controller in (1, 2, 3)
    for b in brokers:
        md = metadata(b)
        assert sorted(md.brokers) == [1, 2, 3], f"node {b.bootstrap} lists {md.brokers}"
    topic = unique_topic("cluster-meta")
    create_topic(brokers, topic, partitions=4)
    found = wait_for_leaders(brokers, topic, 4)
    assert set(found.values()) <= {1, 2, 3}
    for b in brokers:
        md = metadata(b, topic).topics[topic]
        assert md.error is None, md.error
        for p in md.partitions.values():
            assert sorted(p.replicas) == [1, 2, 3]
    # KIP-951: Produce v10 to a follower is refused NOT_LEADER_OR_FOLLOWER with the current
    # leader, its epoch and its endpoint, so the client needs no Metadata round trip. (Leader
    # balancing may move the leader meanwhile: the check is retried on a fresh view.)
    batch = wire.record_batch([(b"k", b"v")], int(time.time() * 1000))
    for attempt in range(10):
        leader = leaders(brokers[0], topic)[0]
        follower = next(b for i, b in enumerate(brokers, start=1) if i != leader)
        _, answers, endpoints = wire.parse_produce_v10(
            wire.roundtrip(follower.bootstrap, wire.produce_request_v10(7, topic, 0, batch)))
        assert len(answers) == 1, answers
        _, _, error, _, hinted, epoch = answers[0]
        assert error == 6, answers  # NOT_LEADER_OR_FOLLOWER
        if hinted != leader:
            time.sleep(1)
            continue
        assert epoch >= 1, answers
        host, port = brokers[leader - 1].bootstrap.rsplit(":", 1)
        assert endpoints.get(leader) == (host, int(port)), endpoints
        _, answers, endpoints = wire.parse_produce_v10(wire.roundtrip(
            brokers[leader - 1].bootstrap, wire.produce_request_v10(8, topic, 0, batch)))
        if answers[0][2] == 6:
            time.sleep(1)
            continue
        assert answers[0][2] == 0, answers
        assert endpoints == {}, "no hints on success"
        break
    else:
        pytest.fail("the leader of partition 0 kept moving")
    # Every node's /v1/status (the console's source) lists the consumer groups of the whole
    # cluster, whichever node coordinates each: 12 groups land on at least two coordinators.
    groups = sorted(unique_topic("cluster-status-g") for _ in range(12))
    for g in groups:
        c = consumer(bootstrap(brokers), **{"group.id": g})
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
                    break
                except KafkaException as e:  # the coordinator is still being found
                    assert time.monotonic() < deadline, e
                    time.sleep(0.2)
        finally:
            c.close()

    def listed_everywhere():
        views = []
        for b in brokers:
            with urllib.request.urlopen(b.http + "/v1/status", timeout=10) as r:
                status = json.loads(r.read())
            mine = {g["group_id"]: g for g in status["groups"] if g["group_id"] in groups}
            if sorted(mine) != groups:
                return None
            views.append(mine)
        return views

    views = wait_until(listed_everywhere, timeout=30, what="every group on every node's status")
    for view in views:
        for g in view.values():
            assert g["coordinator"] in (1, 2, 3), g
            assert [(p["topic"], p["partition"], p["committed_offset"]) for p in g["partitions"]] \
                == [(topic, 0, 1)], g
    coordinators = {g["coordinator"] for g in views[0].values()}
    assert len(coordinators) >= 2, coordinators
    # A replication factor the cluster cannot give is refused, with the reason.
    client = admin(bootstrap(brokers))
    futures = client.create_topics(
        [NewTopic(unique_topic("cluster-rf"), num_partitions=1, replication_factor=2)])
    with pytest.raises(KafkaException) as refused:
        list(futures.values())[0].result(30)
    err = refused.value.args[0]
    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR, err
    assert "all 3 nodes" in err.str(), err.str()
    # Deleted through the cluster: gone from every node.
    client.delete_topics([topic], operation_timeout=30)[topic].result(60)

    def gone_everywhere():
        return all(topic not in metadata(b).topics for b in brokers)

    wait_until(gone_everywhere, timeout=30, what="the deleted topic to leave every node")


def assert_read_back_exactly_once(brokers, topic: str, partitions: int,
                                  seq: SequenceProducer) -> None:
    """Reads every partition from the start through the cluster and checks that every
    value the producer had acknowledged is there exactly once, at the partition and offset
    it was acknowledged at, with offsets dense per partition."""
    produced = seq.produced
    where: dict[int, tuple[int, int]] = {}
    next_offset = {}
    duplicates = []
    cons = consumer(bootstrap(brokers))
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 90
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"reading back took too long ({len(where)} read)"
            for msg in cons.consume(num_messages=10_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    pytest.fail(f"consumer error: {err!r}")
                p, offset = msg.partition(), msg.offset()
                at_end.discard(p)
                expected = next_offset.get(p)
                assert expected is None or offset == expected, (
                    f"partition {p}: offset {offset} after {expected - 1}")
                next_offset[p] = offset + 1
                value = int(msg.value())
                if value in where:
                    duplicates.append((value, where[value], (p, offset)))
                where[value] = (p, offset)
    finally:
        cons.close()
    acked = [v for v in range(produced) if seq.offsets[v] != NOT_ACKED]
    lost = [v for v in acked if v not in where]
    misplaced = [v for v in acked if v in where
                 and where[v] != (seq.partitions[v], seq.offsets[v])]
    summary = (f"{produced} produced, {len(acked)} acknowledged, {seq.failed} failed, "
               f"{len(where)} read back; first errors {seq.errors[:3]}")
    assert not lost, f"{len(lost)} acknowledged values lost, first {lost[:10]}; {summary}"
    assert not misplaced, f"{len(misplaced)} values not where acknowledged; {summary}"
    assert not duplicates, f"duplicates {duplicates[:5]}; {summary}"


def cairn_cli(cairn_bin, brokers, *args: str):
    result = subprocess.run([str(cairn_bin), *args, "--bootstrap-server", bootstrap(brokers)],
                            capture_output=True, text=True, timeout=60, env=clean_env())
    return result


def test_cluster_info_and_health_see_a_node_go_down(start_broker, cairn_bin):
    brokers = start_cluster(start_broker)
    controller = wait_for_controller(brokers)
    topic = unique_topic("cluster-health")
    create_topic(brokers, topic, partitions=3)
    wait_for_leaders(brokers, topic, 3)
    wait_until(lambda: cairn_cli(cairn_bin, brokers, "cluster", "health").returncode == 0,
               timeout=30, what="a healthy cluster")
    info = cairn_cli(cairn_bin, brokers, "cluster", "info")
    assert info.returncode == 0, info.stderr
    assert f"controller: node {controller}" in info.stdout, info.stdout
    assert "brokers (3):" in info.stdout and "partitions: " in info.stdout, info.stdout
    # The HTTP API's v3 view is the cluster's, not one node's.
    with urllib.request.urlopen(brokers[0].http + "/v3/clusters", timeout=10) as r:
        cluster = json.load(r)["data"][0]
    assert cluster["controller"]["related"].endswith(f"/brokers/{controller}"), cluster
    with urllib.request.urlopen(cluster["brokers"]["related"], timeout=10) as r:
        listed = json.load(r)["data"]
    assert sorted(b["broker_id"] for b in listed) == [1, 2, 3], listed
    victim = next(i for i in (1, 2, 3) if i != controller)
    brokers[victim - 1].kill9()

    def unhealthy_naming_the_node():
        r = cairn_cli(cairn_bin, brokers, "cluster", "health")
        return r.returncode != 0 and f"[{victim}] hold replicas but are not live" in r.stderr

    wait_until(unhealthy_naming_the_node, timeout=30, what=f"health to report node {victim}")
    r = cairn_cli(cairn_bin, brokers, "cluster", "health")
    assert "healthy: no" in r.stdout and "under-replicated" in r.stderr, (r.stdout, r.stderr)
    brokers[victim - 1].start()
    wait_until(lambda: cairn_cli(cairn_bin, brokers, "cluster", "health").returncode == 0,
               timeout=60, what="the cluster to be healthy again")


@pytest.mark.timeout(240)
def test_acknowledged_records_survive_a_leader_kill(start_broker):
    brokers = start_cluster(start_broker)
    wait_for_controller(brokers)
    topic = unique_topic("cluster-failover")
    create_topic(brokers, topic, partitions=3)
    before = wait_for_leaders(brokers, topic, 3)
    seq = SequenceProducer(bootstrap(brokers), topic,
                           {"enable.idempotence": True, "acks": "all", "linger.ms": 5},
                           max_outstanding=2000)
    seq.start()
    try:
        seq.wait_for_ack_of_value_at_least(5000, 60, "the first acknowledgements")
        victim_id = before[0]
        victim = brokers[victim_id - 1]
        acked_before = seq.max_acked
        produced_at_kill = seq.produced
        killed = time.monotonic()
        victim.kill9()
        survivors = [b for b in brokers if b.running()]

        def partition_0_moved():
            return all(leaders(b, topic).get(0, -1) not in (-1, victim_id) for b in survivors)

        wait_until(partition_0_moved, timeout=15,
                   what=f"a new leader for partition 0 (was node {victim_id})")
        elected = time.monotonic() - killed
        # Values produced from now on are acknowledged by the new leaders, partition 0's
        # among them.
        from_here = seq.produced
        seq.wait_for_ack_of_value_at_least(from_here + 3000, 60,
                                           "acknowledgements after the leader was killed")
        resumed = time.monotonic() - killed

        def partition_0_acked():
            return any(seq.partitions[v] == 0 and seq.offsets[v] != NOT_ACKED
                       for v in range(produced_at_kill, seq.produced))

        wait_until(partition_0_acked, timeout=30,
                   what="an acknowledgement on partition 0 after its leader was killed")
        victim.start()
        seq.wait_for_ack_of_value_at_least(seq.produced + 2000, 60,
                                           "acknowledgements after the node came back")
        # Leader balancing gives the restarted node its preferred partitions back: three
        # partitions on three nodes, one each.
        wait_until(lambda: sorted(leaders(victim, topic).values()) == [1, 2, 3], timeout=30,
                   what="leaders spread over the three nodes again")
    finally:
        seq.stop()
    remaining = seq.producer.flush(60)
    assert remaining == 0, f"{remaining} values never got a delivery report"
    assert not seq.fatal, seq.fatal
    print(f"acked {acked_before} before the kill; partition 0 had a new leader after "
          f"{elected:.1f} s, produce went on ({resumed:.1f} s)")
    assert elected < 5, f"partition 0 had no new leader for {elected:.1f} s"
    # The bar: acknowledged produce resumes within 3 s of the kill.
    silence = max((end - start for start, end, p in seq.gaps
                   if p == 0 and end >= killed), default=0.0)
    print(f"longest silence on partition 0 after the kill: {silence:.2f} s")
    assert silence < 3, f"partition 0 had no acknowledgement for {silence:.2f} s"

    assert_read_back_exactly_once(brokers, topic, 3, seq)


def group_coordinator(brokers, group: str, not_on: int = -1) -> int:
    client = admin(bootstrap(brokers))
    found = {}

    def known():
        try:
            desc = client.describe_consumer_groups([group])[group].result(10)
        except KafkaException:
            return False
        found["id"] = desc.coordinator.id
        return desc.coordinator.id not in (-1, not_on)

    wait_until(known, timeout=30, what=f"a coordinator for group {group}")
    return found["id"]


def committed_offsets(brokers, group: str, topic: str, partitions: int) -> dict[int, int]:
    """What the group's coordinator answers OffsetFetch with, retried across failover."""
    cons = consumer(bootstrap(brokers), **{"group.id": group})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                tps = cons.committed([TopicPartition(topic, p) for p in range(partitions)],
                                     timeout=10)
                return {tp.partition: tp.offset for tp in tps}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        cons.close()


def log_ends(brokers, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's high watermark, asked through a fresh client until every leader
    answers; on failure, says what each node's Metadata shows."""
    deadline = time.monotonic() + 30
    while True:
        probe = consumer(bootstrap(brokers))
        try:
            return {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                    for p in range(partitions)}
        except KafkaException as e:
            if time.monotonic() > deadline:
                views = {}
                for b in brokers:
                    try:
                        md = metadata(b, topic).topics[topic]
                        views[b.bootstrap] = {p.id: (p.leader, str(p.error))
                                              for p in md.partitions.values()}
                    except KafkaException as e2:
                        views[b.bootstrap] = str(e2)
                pytest.fail(f"no log ends for {topic} after 30 s: {e}; metadata: {views}")
            time.sleep(0.5)
        finally:
            probe.close()


@pytest.mark.timeout(240)
def test_a_group_follows_its_coordinator_to_another_node(start_broker):
    """Kill -9 the node coordinating a consumer group mid-stream: the group's committed
    offsets are served by the new leader of its offsets partition, the consumer goes on
    there, and in the end every record was consumed and the commits cover them all."""
    brokers = start_cluster(start_broker)
    wait_for_controller(brokers)
    topic = unique_topic("cluster-group")
    partitions = 3
    create_topic(brokers, topic, partitions=partitions)
    wait_for_leaders(brokers, topic, partitions)
    total = 3000
    prod = Producer({"bootstrap.servers": bootstrap(brokers), "acks": "all",
                     "enable.idempotence": True})
    for i in range(total):
        prod.produce(topic, str(i).encode(), key=str(i).encode())
        prod.poll(0)
    assert prod.flush(60) == 0

    group = unique_topic("cluster-group-g")
    cons = consumer(bootstrap(brokers), **{
        "group.id": group, "enable.partition.eof": False, "session.timeout.ms": 10000})
    cons.subscribe([topic])
    seen: set[int] = set()
    positions: dict[int, int] = {}

    def commit_all():
        offsets = [TopicPartition(topic, p, o) for p, o in positions.items()]
        deadline = time.monotonic() + 30
        while True:
            try:
                for tp in cons.commit(offsets=offsets, asynchronous=False):
                    assert tp.error is None, tp.error
                return
            except KafkaException as e:
                # NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS while the group moves.
                assert e.args[0].retriable() or e.args[0].code() in (
                    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                    KafkaError._WAIT_COORD, KafkaError.COORDINATOR_NOT_AVAILABLE,
                    KafkaError._TRANSPORT), e
                assert time.monotonic() < deadline, f"commits failed for 30 s: {e}"
                time.sleep(0.2)

    def consume_until(count: int, timeout: float):
        deadline = time.monotonic() + timeout
        while len(seen) < count:
            assert time.monotonic() < deadline, f"consumed {len(seen)} of {count}"
            msgs = cons.consume(num_messages=200, timeout=0.5)
            for msg in msgs:
                if msg.error() is not None:
                    continue
                seen.add(int(msg.value()))
                positions[msg.partition()] = msg.offset() + 1
            if msgs:
                commit_all()

    try:
        consume_until(total // 2, 60)
        before_kill = dict(positions)
        coordinator = group_coordinator(brokers, group)
        victim = brokers[coordinator - 1]
        victim.kill9()
        survivors = [b for b in brokers if b.running()]
        group_coordinator(survivors, group, not_on=coordinator)
        # The commits acknowledged by the dead coordinator are served by the new one.
        now = committed_offsets(survivors, group, topic, partitions)
        for p, offset in before_kill.items():
            assert now[p] >= offset, f"partition {p}: committed {now[p]} < {offset} before the kill"
        consume_until(total, 90)
    finally:
        cons.close()
    victim.start()
    ends = log_ends(brokers, topic, partitions)
    final = committed_offsets(brokers, group, topic, partitions)
    assert final == ends, f"committed {final}, log ends {ends}"
    assert len(seen) == total


@pytest.mark.timeout(240)
def test_a_graceful_shutdown_hands_leadership_over(start_broker):
    """SIGTERM the node leading partition 0 under idempotent acks=all production: it hands
    its leaderships to caught-up followers before it stops, so the producer sees no error
    that is not retried and no partition goes a second without acknowledgements."""
    brokers = start_cluster(start_broker)
    wait_for_controller(brokers)
    topic = unique_topic("cluster-handoff")
    create_topic(brokers, topic, partitions=3)
    before = wait_for_leaders(brokers, topic, 3)
    seq = SequenceProducer(bootstrap(brokers), topic,
                           {"enable.idempotence": True, "acks": "all", "linger.ms": 5},
                           max_outstanding=2000)
    seq.start()
    try:
        seq.wait_for_ack_of_value_at_least(5000, 60, "the first acknowledgements")
        victim_id = before[0]
        victim = brokers[victim_id - 1]
        stopping = time.monotonic()
        code = victim.stop()
        stopped = time.monotonic() - stopping
        assert code == 0, f"node {victim_id} exited with {code}"
        from_here = seq.produced
        seq.wait_for_ack_of_value_at_least(from_here + 3000, 60,
                                           "acknowledgements after the leader stopped")
        window_end = time.monotonic()
        victim.start()
        seq.wait_for_ack_of_value_at_least(seq.produced + 2000, 60,
                                           "acknowledgements after the node came back")
    finally:
        seq.stop()
    assert seq.producer.flush(60) == 0
    assert not seq.fatal, seq.fatal
    assert seq.failed == 0, f"{seq.failed} deliveries failed: {seq.errors[:5]}"
    silences = [(end - start, p) for start, end, p in seq.gaps
                if end >= stopping and start <= window_end]
    longest = max(silences, default=(0.0, -1))
    print(f"node {victim_id} stopped in {stopped:.2f} s; longest silence on a partition "
          f"around it {longest[0]:.2f} s (partition {longest[1]})")
    assert longest[0] < 1.0, f"partition {longest[1]} had no acknowledgement for {longest[0]:.2f} s"
    assert_read_back_exactly_once(brokers, topic, 3, seq)


@pytest.mark.timeout(240)
def test_a_leader_that_takes_over_when_produce_stopped_exposes_every_record(start_broker):
    """A restarted node gets its preferred leadership back by balancing after the producer
    stopped: as the new leader it must expose everything acknowledged before (its high
    watermark catches up with the commit its no-op entry confirms), not hold a consumer
    at the point where the node had caught up."""
    brokers = start_cluster(start_broker)
    wait_for_controller(brokers)
    topic = unique_topic("cluster-quiet-takeover")
    create_topic(brokers, topic, partitions=3)
    wait_for_leaders(brokers, topic, 3)
    # A new partition elects its preferred replica (the first listed) first: one leader
    # per node from the start.
    preferred_of = preferred_leaders(brokers[0], topic)
    assert sorted(preferred_of.values()) == [1, 2, 3], preferred_of
    wait_until(lambda: all(leaders(b, topic) == preferred_of for b in brokers), timeout=30,
               what=f"every partition led by its preferred replica {preferred_of}")
    partition = 1
    preferred = preferred_of[partition]
    prod = Producer({"bootstrap.servers": bootstrap(brokers), "enable.idempotence": True,
                     "acks": "all", "linger.ms": 5})
    acked = []

    def produce(first: int, count: int):
        for i in range(first, first + count):
            prod.produce(topic, value=str(i).encode(), partition=partition,
                         on_delivery=lambda err, msg: acked.append(err) if err is None else None)
            prod.poll(0)
        assert prod.flush(60) == 0

    produce(0, 500)
    brokers[preferred - 1].kill9()
    survivors = [b for b in brokers if b.running()]
    wait_until(lambda: all(leaders(b, topic).get(partition, -1) not in (-1, preferred)
                           for b in survivors), timeout=15,
               what=f"a new leader for partition {partition}")
    produce(500, 500)
    brokers[preferred - 1].start()
    produce(1000, 200)
    # Quiet from here on: balancing moves the partition back with nothing new to commit.
    wait_until(lambda: all(leaders(b, topic).get(partition) == preferred for b in brokers),
               timeout=30, what=f"node {preferred} leading partition {partition} again")
    assert len(acked) == 1200, f"{len(acked)} of 1200 acknowledged"
    ends = {}

    def exposed():
        ends.update(log_ends(brokers, topic, 3))
        return ends[partition] == 1200

    wait_until(exposed, timeout=10,
               what=f"partition {partition}'s high watermark at 1200 on its new leader "
                    f"(last seen {ends})")
    got = read_partitions(bootstrap(brokers), topic, [partition], expected=1200)
    assert sorted(int(m.value()) for m in got) == list(range(1200))
