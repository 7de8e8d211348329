"""`cairn --version` and the `serve` lifecycle: start, stop, restart, data-dir locking."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def workspace_version() -> str | None:
    if sys.version_info < (3, 11):
        return None
    import tomllib

    with open(REPO / "Cargo.toml", "rb") as manifest:
        return tomllib.load(manifest)["workspace"]["package"]["version"]


def test_version(run_cairn):
    process = run_cairn("--version")
    assert process.wait_exit() == 0, process.stderr
    assert re.fullmatch(r"cairn \d+\.\d+\.\d+\S*", process.stdout), process.stdout
    version = workspace_version()
    if version is not None:
        assert process.stdout == f"cairn {version}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_on_signal(serve, tmp_path: Path, sig):
    process, ready = serve()
    data_dir = tmp_path / "data"
    assert ready["data_dir"] == str(data_dir.resolve())
    assert ready["listen"] == "127.0.0.1:9092"
    assert ready["advertise"] == "127.0.0.1:9092"
    assert (data_dir / ".lock").is_file()

    assert process.stop(sig) == 0, process.stderr
    log = process.stderr
    assert "shutting down" in log
    assert sig.name in process.wait_for_line("shutting down")
    # `stopped` is the last thing a clean shutdown logs.
    assert log.splitlines()[-1].endswith("stopped"), log


def test_restart_on_the_same_data_dir(serve, tmp_path: Path):
    data_dir = tmp_path / "data"
    for _ in range(3):
        process, ready = serve(data_dir=data_dir)
        assert ready["data_dir"] == str(data_dir.resolve())
        assert process.stop() == 0, process.stderr


def test_second_instance_on_a_locked_dir_fails(serve, run_cairn, tmp_path: Path, ports):
    data_dir = tmp_path / "data"
    first, _ = serve(data_dir=data_dir)

    # A different listen address, so the lock is the only thing the two share.
    second = run_cairn("serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{ports[0]}")
    code = second.wait_exit()
    assert code != 0
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, second.stderr
    assert str(data_dir.resolve()) in errors[0]
    assert "in use" in errors[0]
    assert "cairn ready" not in second.stderr

    assert first.running(), first.stderr
    assert first.stop() == 0, first.stderr

    # The lock went with the first process: the dir is usable again.
    third, _ = serve(data_dir=data_dir)
    assert third.stop() == 0, third.stderr


def test_default_data_dir_is_relative_to_the_working_directory(serve, tmp_path: Path):
    process, ready = serve(data_dir=None)
    assert ready["data_dir"] == str((tmp_path / "cairn-data").resolve())
    assert process.stop() == 0, process.stderr


def test_a_port_in_use_is_said_once_with_what_to_do(serve, run_cairn, tmp_path: Path, ports):
    first, ready = serve("--listen", f"127.0.0.1:{ports[0]}", "--http-listen",
                         f"127.0.0.1:{ports[1]}")
    for args, setting in (
        (["--listen", f"127.0.0.1:{ports[0]}", "--http-listen", f"127.0.0.1:{ports[2]}"],
         "--listen"),
        (["--listen", f"127.0.0.1:{ports[3]}", "--http-listen", f"127.0.0.1:{ports[1]}"],
         "--http-listen"),
    ):
        second = run_cairn("serve", "--data-dir", str(tmp_path / f"other{setting}"), *args)
        assert second.wait_exit() != 0
        errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, second.stderr
        assert errors[0].lower().count("address already in use") == 1, errors[0]
        assert setting in errors[0], errors[0]
    assert first.running(), first.stderr


def test_start_up_logs_a_few_lines_not_one_per_partition(start_broker):
    """A restart after a crash with 60 partitions logs counts, not a line per partition
    (each partition's recovery is at debug level)."""
    from kafkautil import create_topic

    broker = start_broker()
    create_topic(broker.bootstrap, "startup-log-a", partitions=40)
    create_topic(broker.bootstrap, "startup-log-b", partitions=20)
    broker.kill9()
    broker.start()
    lines = broker.process.stderr.splitlines()
    ready = next(i for i, line in enumerate(lines) if "cairn ready" in line)
    startup = lines[:ready + 1]
    assert len(startup) <= 6, "\n".join(startup)
    loaded = [line for line in startup if "topics loaded" in line]
    assert len(loaded) == 1 and "topics=2 partitions=60" in loaded[0], "\n".join(startup)
    assert re.search(r'version="\d+\.\d+\.\d+', lines[ready]), lines[ready]
