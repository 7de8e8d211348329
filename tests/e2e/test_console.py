"""The web console at `/`, in a real browser (headless Chromium over the DevTools protocol)
at 1280x800: what it shows must be what the broker holds (brokers, controller, topics with a
live throughput line, a topic's recent records as text or hex, groups with lag), it works
from the keyboard, loads nothing from anywhere but the node, and creates and deletes topics
(delete only after the name is typed to confirm)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from browser import Browser
from conftest import wait_until
from kafkautil import (LIBRDKAFKA_LOGGER, Recorder, admin, consumer, create_topic, produce_all,
                       producer, unique_topic)


SCREENSHOTS = Path(__file__).resolve().parents[2] / "target" / "console-screenshots"


def shot(browser, name: str) -> None:
    """A screenshot of the page as the test sees it, for review (not compared)."""
    size = browser.screenshot(SCREENSHOTS / f"{name}.png")
    assert size > 10_000, f"the {name} screenshot is nearly empty ({size} bytes)"


@pytest.fixture
def browser():
    b = Browser(1280, 800)
    try:
        yield b
    finally:
        b.close()


def topic_exists(broker, name: str) -> bool:
    return name in admin(broker.bootstrap).list_topics(timeout=10).topics


@pytest.mark.timeout(180)
def test_console_shows_the_cluster_and_manages_topics(start_broker, browser):
    broker = start_broker(env={"CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"})
    topic = unique_topic("console")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_all(producer(broker.bootstrap), topic,
                [(b"k1", b"hello console"), (b"k2", b"\xff\x00\x01binary")], Recorder(),
                partition=0)
    # A group that committed one record of two: lag 1.
    group = unique_topic("console-group")
    cons = consumer(broker.bootstrap, **{"group.id": group, "enable.auto.commit": False,
                                        "logger": LIBRDKAFKA_LOGGER})
    cons.assign([TopicPartition(topic, 0, 0)])
    msg = cons.consume(1, timeout=30)[0]
    cons.commit(message=msg, asynchronous=False)
    cons.close()

    browser.goto(broker.http + "/")
    browser.wait_for(f"document.body.innerText.includes({json.dumps(topic)})", "the topic listed")
    text = browser.text()
    assert "Controller\nnode 1" in text, text
    assert "Under-replicated partitions\n0" in text, text
    assert broker.bootstrap in text, text  # the brokers table
    browser.wait_for(f"document.body.innerText.includes({json.dumps(group)})", "the group listed")
    row = browser.eval(f"""[...document.querySelectorAll('tr')].map(r => r.innerText)
        .find(t => t.startsWith({json.dumps(group)}))""")
    assert row.split("\t")[-1].strip() == "1", row  # lag
    shot(browser, "overview")

    # Nothing comes from anywhere but the node.
    resources = browser.eval("performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(broker.http + "/") for r in resources), resources

    # The throughput line moves while records arrive.
    stop = threading.Event()

    def keep_producing():
        p = producer(broker.bootstrap)
        while not stop.is_set():
            p.produce(topic, value=b"x" * 100, partition=1)
            p.poll(0)
            time.sleep(0.002)
        p.flush(10)

    writer = threading.Thread(target=keep_producing)
    writer.start()
    try:
        rate = browser.wait_for(f"""(() => {{
            const row = [...document.querySelectorAll('tr')]
                .find(r => r.cells[0] && r.cells[0].innerText === {json.dumps(topic)});
            const points = row && row.querySelector('polyline').getAttribute('points').split(' ');
            const rate = row && Number(row.cells[5].innerText);
            return points && points.length >= 3 && rate > 0 ? rate : null; }})()""",
                                "a moving throughput line", timeout=30)
        assert rate > 0
        shot(browser, "throughput")
    finally:
        stop.set()
        writer.join()

    # Keyboard: g then t goes to the topics page; Tab reaches the create form.
    browser.eval("document.activeElement && document.activeElement.blur()")
    browser.key("g")
    browser.key("t")
    browser.wait_for("location.hash === '#/topics' && !!document.getElementById('create-topic')",
                     "the topics page by keyboard")

    # Create a topic from the form.
    created = unique_topic("console-new")
    browser.type_into("input[name=topic_name]", created)
    browser.type_into("input[name=partitions_count]", "3")
    browser.eval("document.querySelector('#create-topic button[type=submit]').click()")
    browser.wait_for(f"document.getElementById('create-message').innerText"
                     f".includes('Created topic {created}')", "the creation confirmed")
    wait_until(lambda: topic_exists(broker, created), timeout=30, what="the created topic")
    assert len(admin(broker.bootstrap).list_topics(created, timeout=10)
               .topics[created].partitions) == 3

    # A topic's page: partitions, recent records as text, binary as hex.
    browser.goto(f"{broker.http}/#/topics/{topic}")
    browser.wait_for("document.body.innerText.includes('hello console')", "the recent records")
    text = browser.text()
    assert "ff 00 01 62 69 6e 61 72 79" in text, text
    browser.eval("document.getElementById('hex').click()")
    browser.wait_for("document.body.innerText.includes('68 65 6c 6c 6f')", "records as hex")
    shot(browser, "topic-records-hex")

    # Delete: the button stays disabled until the exact name is typed.
    browser.goto(f"{broker.http}/#/topics/{created}")
    browser.wait_for("!!document.getElementById('confirm-name')", "the delete form")
    button = "document.querySelector('#delete-topic button')"
    browser.type_into("#confirm-name", created[:-1])
    assert browser.eval(f"{button}.disabled") is True
    browser.eval(f"{button}.click()")
    time.sleep(1)
    assert topic_exists(broker, created), "deleted without confirmation"
    browser.type_into("#confirm-name", created)
    assert browser.eval(f"{button}.disabled") is False
    browser.eval(f"{button}.click()")
    wait_until(lambda: not topic_exists(broker, created), timeout=30, what="the topic deleted")
    browser.wait_for("location.hash === '#/topics'", "the topics page after deleting")


def test_console_assets_are_served_from_the_binary_with_a_strict_policy(start_broker):
    import urllib.request
    broker = start_broker()
    for path, kind in (("/", "text/html"), ("/console.js", "text/javascript"),
                       ("/console.css", "text/css")):
        with urllib.request.urlopen(broker.http + path, timeout=10) as r:
            assert r.status == 200
            assert r.headers["content-type"].startswith(kind), r.headers
            policy = r.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy, policy
            body = r.read().decode()
            assert "http://" not in body.replace("http://www.w3.org/2000/svg", "") and \
                "https://" not in body, f"{path} refers to another origin"
