"""End-to-end harness: runs the real `cairn` binary as users do.

`CAIRN_BIN` must name the binary (scripts/test sets it to the release build); without it the
suite fails rather than skips, so a broken setup can never pass as "no tests".

Every server runs in its own temporary directory (also its working directory, so no stray
./cairn.toml is picked up) with an environment stripped of CAIRN_* and RUST_LOG, so tests
see only the configuration they set.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
# The fmt layer writes `key=value` fields after the message; values may be quoted.
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def _binary() -> Path:
    value = os.environ.get("CAIRN_BIN")
    if not value:
        pytest.fail(
            "CAIRN_BIN is not set: point it at the cairn binary "
            "(scripts/test builds target/release/cairn and sets it)",
            pytrace=False,
        )
    path = Path(value).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"CAIRN_BIN={value} is not an executable file", pytrace=False)
    return path


@pytest.fixture(scope="session")
def cairn_bin() -> Path:
    return _binary()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ports() -> list[int]:
    """Four distinct free ports, for tests that set listen addresses."""
    found: set[int] = set()
    while len(found) < 4:
        found.add(free_port())
    return sorted(found)


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without CAIRN_* and RUST_LOG, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CAIRN_") and name != "RUST_LOG"
    }
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def fields(line: str) -> dict[str, str]:
    """The `key=value` fields of a log line, quotes removed."""
    return {key: value.strip('"') for key, value in FIELD.findall(line)}


class Cairn:
    """One running (or finished) cairn process with its stderr collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._stdout: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, self._lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, self._stdout), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, sink: list[str]) -> None:
        for line in stream:
            with self._changed:
                sink.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    @property
    def stdout(self) -> str:
        with self._changed:
            return "\n".join(self._stdout)

    def wait_for_line(self, needle: str, timeout: float = READY_TIMEOUT_S) -> str:
        """The first stderr line containing `needle`; fails if the process exits first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines:
                    if needle in line:
                        return line
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    pytest.fail(
                        f"cairn exited with {self.proc.returncode} before logging {needle!r}; "
                        f"stderr:\n{self.stderr_unlocked()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(
                        f"no {needle!r} from cairn within {timeout}s; "
                        f"stderr:\n{self.stderr_unlocked()}"
                    )
                self._changed.wait(min(remaining, 0.1))

    def stderr_unlocked(self) -> str:
        return "\n".join(self._lines)

    def wait_fields(self, needle: str, timeout: float = READY_TIMEOUT_S) -> dict[str, str]:
        """The `key=value` fields of the first stderr line containing `needle`."""
        return fields(self.wait_for_line(needle, timeout))

    def wait_ready(self) -> dict[str, str]:
        """Waits for `cairn ready` and returns that line's fields."""
        return self.wait_fields("cairn ready")

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"cairn did not exit within {timeout}s; stderr:\n{self.stderr}")
        for reader in self._readers:
            reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = EXIT_TIMEOUT_S) -> int:
        self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def run_cairn(cairn_bin: Path, tmp_path: Path):
    """Starts `cairn ARGS...` in `tmp_path` with a clean environment plus `env`.

    Returns the `Cairn`; does not wait for readiness. Anything still running at the end of the
    test is killed, so a failing test leaks no process.
    """
    started: list[Cairn] = []

    def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Cairn:
        process = Cairn([str(cairn_bin), *args], clean_env(**(env or {})), cwd or tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def serve(run_cairn, tmp_path: Path):
    """Starts `cairn serve` on a fresh data dir under `tmp_path` and waits for `cairn ready`.

    `serve(*extra_args, data_dir=..., env=...)` returns `(Cairn, ready_fields)`.
    Pass `data_dir=None` to leave the data dir to the configuration.
    """

    def start(*args: str, data_dir: Path | None | str = "default", env=None):
        argv = ["serve"]
        if data_dir == "default":
            data_dir = tmp_path / "data"
        if data_dir is not None:
            argv += ["--data-dir", str(data_dir)]
        process = run_cairn(*argv, *args, env=env)
        return process, process.wait_ready()

    return start
