"""Faults under load on a three-node cluster, judged by a history checker.

An idempotent librdkafka producer (acks=all, library defaults otherwise) writes the values
0, 1, 2, ... to a 3-partition topic while a consumer tails every partition, and one fault
hits the cluster: a paused (SIGSTOP) leader, a killed controller, every node killed at
once, a leader cut off from the network, one link cut, a node down while the records it
lacks are deleted. Then the `History` checks (from where deletions left the log start):
- every acknowledged value is read back exactly once, at the partition and offset it was
  acknowledged at;
- no offset ever held two different records (what the tailing consumer read during the
  faults is what the final read finds there);
- no consumer read a record that later disappeared;
- per partition, offsets read are increasing and dense.

The network faults run each node in its own network namespace
(`../shared/tools/netns-lab`, as root); the others run on loopback. `CAIRN_FAULT_SECONDS`
is how long each scenario keeps repeating its fault (default 3 s: once or twice), with 3 s of
load before and after; `scripts/soak-cluster` sets it, and `CAIRN_FAULT_RATE`, for the long
run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from conftest import free_port, wait_until
from kafkautil import (LIBRDKAFKA_LOGGER, NOT_ACKED, SequenceProducer, admin, consumer,
                       unique_topic)
from test_cluster import (bootstrap, create_topic, leaders, metadata, wait_for_controller,
                          wait_for_leaders)

NODES = 3
PARTITIONS = 3
# Seconds of load before and after the faults.
SETTLE_S = 3
# Seconds each scenario keeps repeating its fault (at least once).
LOAD_S = float(os.environ.get("CAIRN_FAULT_SECONDS", "3"))
# Values per second the producer is held to (unset: as fast as it goes); a long soak sets
# it so the history fits in memory.
RATE = float(os.environ["CAIRN_FAULT_RATE"]) if os.environ.get("CAIRN_FAULT_RATE") else None
# Per scenario: set-up and checks, plus the load before, during and after the fault.
TIMEOUT_S = 300 + 2 * LOAD_S
NETNS_LAB = Path(__file__).resolve().parents[3] / "shared" / "tools" / "netns-lab"
BRIDGE_ADDR = "10.77.0.254/24"


class History:
    """The producer's acknowledgements and a tailing consumer's reads, checked at the end."""

    def __init__(self, brokers, topic: str):
        self.brokers = brokers
        self.topic = topic
        self.seq = SequenceProducer(bootstrap(brokers), topic,
                                    {"enable.idempotence": True, "acks": "all",
                                     "linger.ms": 5},
                                    max_outstanding=2000, rate=RATE)
        # (partition, offset) -> value, as the tailing consumer read it.
        self.read: dict[tuple[int, int], int] = {}
        self.violations: list[str] = []
        self._next: dict[int, int] = {}
        # Per partition, the offset below which DeleteRecords removed everything.
        self.deleted_below: dict[int, int] = {}
        self._stop = threading.Event()
        self.tail_error: BaseException | None = None
        self._reader = threading.Thread(target=self._tail_safely, name="tail", daemon=True)

    def start(self):
        self.seq.start()
        self._reader.start()

    def _tail_safely(self):
        try:
            self._tail()
        except BaseException as e:  # reported by check()
            self.tail_error = e

    def _tail(self):
        cons = Consumer({
            "bootstrap.servers": bootstrap(self.brokers),
            "logger": LIBRDKAFKA_LOGGER,
            "group.id": f"tail-{self.topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # Small fetches per partition, as a consumer with little memory makes them.
            "max.partition.fetch.bytes": 16384,
        })
        try:
            cons.assign([TopicPartition(self.topic, p, -2) for p in range(PARTITIONS)])
            while not self._stop.is_set():
                for msg in cons.consume(num_messages=1000, timeout=0.2):
                    if msg.error() is not None:
                        continue
                    self._record(msg.partition(), msg.offset(), int(msg.value()))
        finally:
            cons.close()

    def _record(self, p: int, offset: int, value: int):
        seen = self.read.get((p, offset))
        if seen is not None and seen != value:
            self.violations.append(f"{p}@{offset} read as {seen}, later as {value}")
        self.read[(p, offset)] = value
        expected = max(self._next.get(p, 0), self.deleted_below.get(p, 0))
        if offset > expected and p in self._next:
            self.violations.append(f"partition {p}: read {offset} after {expected - 1}")
        if offset >= expected:
            self._next[p] = offset + 1

    def wait_acks(self, more: int, what: str, timeout: float = 60):
        self.seq.wait_for_ack_of_value_at_least(self.seq.produced + more, timeout, what)

    def stop(self):
        self.seq.stop()
        assert self.seq.producer.flush(60) == 0, "values without a delivery report"
        self._stop.set()
        self._reader.join(30)

    def check(self):
        assert not self.seq.fatal, self.seq.fatal
        assert self.tail_error is None, f"the tailing consumer failed: {self.tail_error!r}"
        assert self.read, "the tailing consumer read nothing"
        final = read_everything(self.brokers, self.topic, self.deleted_below)
        assert not self.violations, self.violations[:10]
        acked = [v for v in range(self.seq.produced) if self.seq.offsets[v] != NOT_ACKED
                 and self.seq.offsets[v] >= self.deleted_below.get(self.seq.partitions[v], 0)]
        where: dict[int, tuple[int, int]] = {}
        duplicates = []
        for (p, offset), value in final.items():
            if value in where:
                duplicates.append((value, where[value], (p, offset)))
            where[value] = (p, offset)
        lost = [v for v in acked if v not in where]
        misplaced = [v for v in acked if v in where
                     and where[v] != (self.seq.partitions[v], self.seq.offsets[v])]
        vanished = [(k, v) for k, v in self.read.items()
                    if k[1] >= self.deleted_below.get(k[0], 0) and final.get(k) != v]
        summary = (f"{self.seq.produced} produced, {len(acked)} acknowledged, "
                   f"{self.seq.failed} failed, {len(final)} in the log, {len(self.read)} "
                   f"read while tailing; first errors {self.seq.errors[:3]}")
        print(summary)
        assert not lost, f"{len(lost)} acknowledged values lost, first {lost[:10]}; {summary}"
        assert not misplaced, f"{len(misplaced)} values not where acknowledged; {summary}"
        assert not duplicates, f"duplicates {duplicates[:5]}; {summary}"
        assert not vanished, f"records read and later gone or changed {vanished[:5]}; {summary}"
        assert len(acked) > 0


def read_everything(brokers, topic: str,
                    deleted_below: dict[int, int] | None = None) -> dict[tuple[int, int], int]:
    """Every record of the topic, read from the start through the cluster; offsets must be
    dense per partition, from 0 or from where DeleteRecords moved the log start."""
    deleted_below = deleted_below or {}
    out: dict[tuple[int, int], int] = {}
    next_offset: dict[int, int] = {}
    cons = consumer(bootstrap(brokers))
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(PARTITIONS)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 120
        while len(at_end) < PARTITIONS:
            assert time.monotonic() < deadline, f"reading back took too long ({len(out)} read)"
            for msg in cons.consume(num_messages=10_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                    continue
                p, offset = msg.partition(), msg.offset()
                at_end.discard(p)
                expected = next_offset.get(p, deleted_below.get(p, 0))
                assert offset == expected, f"partition {p}: offset {offset}, expected {expected}"
                next_offset[p] = offset + 1
                out[(p, offset)] = int(msg.value())
    finally:
        cons.close()
    return out


def cluster(start_broker, netns: bool = False, env: dict | None = None):
    """Three nodes on loopback, or each in its own namespace (node i at 10.77.0.i)."""
    if netns:
        hosts = {i: f"10.77.0.{i}" for i in range(1, NODES + 1)}
        peer_ports = {i: 9093 for i in hosts}
    else:
        hosts = {i: "127.0.0.1" for i in range(1, NODES + 1)}
        peer_ports = {i: free_port() for i in hosts}
    voters = ",".join(f"{i}@{hosts[i]}:{peer_ports[i]}" for i in hosts)
    brokers = []
    for i in hosts:
        brokers.append(start_broker(
            env={"CAIRN_BROKER_NODE_ID": str(i),
                 "CAIRN_BROKER_CONTROLLER_QUORUM_VOTERS": voters,
                 **(env or {})},
            host=hosts[i],
            prefix=(str(NETNS_LAB), "exec", str(i)) if netns else ()))
    wait_for_controller(brokers)
    return brokers


def loaded(brokers, name: str, configs: dict | None = None) -> History:
    topic = unique_topic(name)
    create_topic(brokers, topic, partitions=PARTITIONS, configs=configs)
    wait_for_leaders(brokers, topic, PARTITIONS)
    history = History(brokers, topic)
    history.start()
    history.wait_acks(2000, "acknowledgements before the fault")
    time.sleep(SETTLE_S)
    return history


def leader_of_partition_0(brokers, topic: str, not_on: int = -1) -> int:
    found = {}

    def known():
        for b in brokers:
            if b.running():
                try:
                    leader = leaders(b, topic).get(0, -1)
                except Exception:  # a paused or cut-off node does not answer
                    continue
                if leader not in (-1, not_on):
                    found["id"] = leader
                    return True
        return False

    wait_until(known, timeout=30, what="a leader for partition 0")
    return found["id"]


def controller_seen_by(brokers) -> int:
    ids = {metadata(b).controller_id for b in brokers}
    return ids.pop() if len(ids) == 1 else -1


def finish(history: History, what: str):
    history.wait_acks(2000, f"acknowledgements after {what}")
    time.sleep(SETTLE_S)
    history.stop()
    history.check()


def repeat(fault):
    """Runs `fault` at least once, and again while the scenario's time allows."""
    until = time.monotonic() + LOAD_S
    fault()
    while time.monotonic() < until:
        fault()


@pytest.mark.timeout(TIMEOUT_S)
def test_history_holds_when_a_leader_is_paused_past_its_election_timeout(start_broker):
    brokers = cluster(start_broker)
    history = loaded(brokers, "fault-pause")

    def pause_the_leader():
        victim = brokers[leader_of_partition_0(brokers, history.topic) - 1]
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            time.sleep(3)  # twice the longest election timeout
            others = [b for b in brokers if b is not victim]
            leader_of_partition_0(others, history.topic, not_on=brokers.index(victim) + 1)
        finally:
            os.kill(victim.pid, signal.SIGCONT)
        history.wait_acks(500, "acknowledgements after the paused leader resumed")

    repeat(pause_the_leader)
    finish(history, "the pauses")


@pytest.mark.timeout(TIMEOUT_S)
def test_history_holds_when_the_controller_is_killed(start_broker):
    brokers = cluster(start_broker)
    history = loaded(brokers, "fault-controller")

    def kill_the_controller():
        controller = wait_for_controller(brokers)
        victim = brokers[controller - 1]
        victim.kill9()
        survivors = [b for b in brokers if b.running()]
        wait_until(lambda: controller_seen_by(survivors) not in (-1, controller), timeout=30,
                   what=f"a controller other than node {controller}")
        # The metadata quorum still serves: a topic created now exists on both survivors.
        extra = unique_topic("after-controller-kill")
        create_topic(survivors, extra, partitions=1)
        wait_for_leaders(survivors, extra, 1)
        victim.start()
        history.wait_acks(500, "acknowledgements after the controller came back")
        wait_until(lambda: extra in metadata(victim).topics, timeout=30,
                   what="the restarted node to learn the topic created without it")

    repeat(kill_the_controller)
    finish(history, "the controller kills")


@pytest.mark.timeout(TIMEOUT_S)
def test_history_holds_when_every_node_is_killed_at_once(start_broker):
    brokers = cluster(start_broker)
    history = loaded(brokers, "fault-all")

    def kill_everything():
        for b in brokers:
            b.process.proc.kill()
        for b in brokers:
            b.process.wait_exit()
        for b in brokers:
            b.start()
        wait_for_controller(brokers)
        wait_for_leaders(brokers, history.topic, PARTITIONS)
        history.wait_acks(500, "acknowledgements after the whole cluster restarted")

    repeat(kill_everything)
    finish(history, "the cluster restarts")


@pytest.fixture(scope="module")
def netns_lab():
    """Network namespaces cairn-n1..3 on a bridge the test process reaches at 10.77.0.254."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the network fault tests need root and iproute2 (`ip`); scripts/test "
                    "installs iproute2")
    if not NETNS_LAB.exists():
        pytest.fail(f"{NETNS_LAB} is missing: ../shared must sit beside the repository")
    subprocess.run([str(NETNS_LAB), "down"], check=True)

    def lab_links() -> list[str]:
        out = subprocess.run(["ip", "-o", "link", "show"], check=True,
                             capture_output=True, text=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
                if ": cairnv" in line]

    # The kernel frees a deleted namespace lazily (its closing sockets keep it a while), and
    # with it the bridge end of its link; delete those ends now so `up` can recreate them.
    for link in lab_links():
        subprocess.run(["ip", "link", "del", link], check=False)
    wait_until(lambda: not lab_links(), timeout=30,
               what="the links of an earlier netns-lab to go (a process still in one?)")
    subprocess.run([str(NETNS_LAB), "up", str(NODES)], check=True)
    subprocess.run(["ip", "addr", "replace", BRIDGE_ADDR, "dev", "cairn-br"], check=True)
    try:
        yield NETNS_LAB
    finally:
        subprocess.run([str(NETNS_LAB), "down"], check=False)


def lab(*args: str):
    subprocess.run([str(NETNS_LAB), *args], check=True)


@pytest.mark.timeout(TIMEOUT_S + 300)
def test_history_holds_when_a_leader_is_cut_off_from_the_network(start_broker, netns_lab):
    brokers = cluster(start_broker, netns=True)
    history = loaded(brokers, "fault-isolate")

    elections = []

    def isolate_the_leader():
        victim = leader_of_partition_0(brokers, history.topic)
        lab("isolate", str(victim))
        cut = time.monotonic()
        try:
            others = [b for i, b in enumerate(brokers, start=1) if i != victim]
            leader_of_partition_0(others, history.topic, not_on=victim)
            elections.append(time.monotonic() - cut)
            # An election timeout (at most 1.5 s) and a vote, plus this test's polling.
            assert elections[-1] < 10, f"no new leader for {elections[-1]:.1f} s"
            # The client's requests to the cut-off node hang until librdkafka's
            # request.timeout.ms (30 s by default) before it asks for metadata again.
            history.wait_acks(500, "acknowledgements while the old leader is cut off",
                              timeout=120)
        finally:
            lab("heal", str(victim))
        history.wait_acks(500, "acknowledgements after the network healed", timeout=120)

    repeat(isolate_the_leader)
    print(f"{len(elections)} isolations; new leader after {max(elections):.1f} s at most")
    finish(history, "the isolations")


@pytest.mark.timeout(TIMEOUT_S + 300)
def test_history_holds_when_one_link_is_cut(start_broker, netns_lab):
    brokers = cluster(start_broker, netns=True)
    history = loaded(brokers, "fault-link")

    def cut_one_link():
        leader = leader_of_partition_0(brokers, history.topic)
        follower = 1 + leader % NODES
        lab("cut", str(leader), str(follower))
        try:
            time.sleep(3)
            history.wait_acks(500, "acknowledgements with one link cut", timeout=120)
        finally:
            lab("uncut", str(leader), str(follower))
        history.wait_acks(500, "acknowledgements after the link came back", timeout=120)

    repeat(cut_one_link)
    finish(history, "the cut links")


@pytest.mark.timeout(TIMEOUT_S)
def test_history_holds_when_a_follower_misses_records_deleted_meanwhile(start_broker):
    """A node is down while every partition's records are deleted (DeleteRecords, a raft
    entry) and their segments removed: coming back, it cannot be sent the entries it
    lacks, gets a snapshot (where the log goes on) and catches up from there. Then the
    leader of partition 0 is killed, so the node that was behind has to be part of the
    quorum; the history holds for everything after the deletion."""
    brokers = cluster(start_broker, env={"CAIRN_LOG_RETENTION_CHECK_INTERVAL_MS": "1000"})
    history = loaded(brokers, "fault-behind", configs={"segment.bytes": "65536"})

    def miss_a_deletion():
        leader = leader_of_partition_0(brokers, history.topic)
        behind_id = 1 + leader % NODES
        behind = brokers[behind_id - 1]
        behind.kill9()
        history.wait_acks(20_000, "acknowledgements while a node is down")
        cons = consumer(bootstrap(brokers))
        try:
            ends = {p: cons.get_watermark_offsets(TopicPartition(history.topic, p),
                                                  timeout=10)[1]
                    for p in range(PARTITIONS)}
        finally:
            cons.close()
        # Noted first: the tailing consumer may jump to the new log start at once.
        for p, end in ends.items():
            history.deleted_below[p] = max(history.deleted_below.get(p, 0), end)
        # Every partition led by a live node first, and a client that knows it: librdkafka's
        # admin client sends DeleteRecords to the leader it has cached and would wait out
        # its request timeout on the dead one.
        live = [b for b in brokers if b.running()]
        wait_until(lambda: all(l not in (-1, behind_id)
                               for l in leaders(live[0], history.topic).values()),
                   timeout=30, what="every partition led by a live node")
        client = admin(bootstrap(live))
        futures = client.delete_records(
            [TopicPartition(history.topic, p, end) for p, end in ends.items()],
            request_timeout=30)
        for future in futures.values():
            future.result(60)
        history.wait_acks(5_000, "acknowledgements after the deletion")
        behind.start()

        def caught_up():
            md = metadata(brokers[leader - 1], history.topic).topics[history.topic]
            return all(behind_id in p.isrs for p in md.partitions.values())

        wait_until(caught_up, timeout=60, what=f"node {behind_id} back in every ISR")
        history.wait_acks(2_000, "acknowledgements with every node back")
        # Now the node that was behind must carry the quorum with one other.
        victim_id = leader_of_partition_0(brokers, history.topic)
        if victim_id != behind_id:
            brokers[victim_id - 1].kill9()
            history.wait_acks(2_000, "acknowledgements after the leader was killed")
            brokers[victim_id - 1].start()

    repeat(miss_a_deletion)
    finish(history, "the deletions")
