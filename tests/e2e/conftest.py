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


@pytest.fixture(scope="session")
def powercut_bin() -> Path:
    """The power-cut FUSE tool (tests/powercut); like CAIRN_BIN, missing means failure."""
    value = os.environ.get("POWERCUT_BIN")
    if not value:
        pytest.fail(
            "POWERCUT_BIN is not set: point it at the powercut binary "
            "(scripts/test builds target/release/powercut and sets it)",
            pytrace=False,
        )
    path = Path(value).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"POWERCUT_BIN={value} is not an executable file", pytrace=False)
    return path


@pytest.fixture
def powercut_fs(powercut_bin: Path, tmp_path: Path):
    """A mounted power-cut file system (tests/e2e/powercut.py) at `tmp_path/fs/mnt`, unmounted
    at teardown. Request it before `start_broker`, so brokers stop before it unmounts."""
    from powercut import PowerCutFs

    fs = PowerCutFs(powercut_bin, tmp_path / "fs").mount()
    yield fs
    fs.close()


# Ports free_port() has handed out in this run: the kernel may offer a port again as soon as
# the probe closes, and two listeners of one test (a node's Kafka and cluster ports) must
# never be given the same one.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it), never one
    handed out before in this run."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


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


def http_listen_env(args, env: dict[str, str] | None) -> dict[str, str]:
    """`env` plus a free HTTP port for a `cairn serve` that names none: the HTTP API's default
    port (8080) must not make tests collide with each other or with anything else on the
    machine. A test that wants the configuration file's `http_listen` passes
    `CAIRN_HTTP_LISTEN=""` (an empty variable counts as unset)."""
    env = dict(env or {})
    if args and args[0] == "serve" and "--http-listen" not in args and "CAIRN_HTTP_LISTEN" not in env:
        env["CAIRN_HTTP_LISTEN"] = f"127.0.0.1:{free_port()}"
    return env


@pytest.fixture
def run_cairn(cairn_bin: Path, tmp_path: Path):
    """Starts `cairn ARGS...` in `tmp_path` with a clean environment plus `env`.

    Returns the `Cairn`; does not wait for readiness. Anything still running at the end of the
    test is killed, so a failing test leaks no process. A `serve` gets a free HTTP port unless
    the test names one (`http_listen_env`).
    """
    started: list[Cairn] = []

    def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Cairn:
        env = http_listen_env(args, env)
        process = Cairn([str(cairn_bin), *args], clean_env(**env), cwd or tmp_path)
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


# --- The Kafka broker ----------------------------------------------------------------------

KAFKA_PORT_TIMEOUT_S = 30.0
# Every test gets at most this long unless it says otherwise with @pytest.mark.timeout(N), so a
# hung broker or client fails one test instead of the whole run.
DEFAULT_TEST_TIMEOUT_S = 120


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that ran brokers shows their logs (the last 200 lines of each)."""
    outcome = yield
    report = outcome.get_result()
    brokers = getattr(item, "cairn_brokers", None)
    if report.failed and brokers:
        for n, broker in enumerate(brokers):
            lines = broker.logs().splitlines()
            report.sections.append(
                (f"cairn broker {n} ({broker.bootstrap}) log, last {min(len(lines), 200)} "
                 f"of {len(lines)} lines", "\n".join(lines[-200:]))
            )


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy, which is returned; fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class Broker:
    """A `cairn serve` node with a Kafka listener on 127.0.0.1:PORT, its HTTP API on
    127.0.0.1:HTTP_PORT (`broker.http` is its base URL; unless `args` or `env` choose another
    `--http-listen`) and its own data dir.

    It can be stopped, killed and started again on the same directory and port; every run's
    stderr is kept, and the fixture fails the test at teardown if any run panicked.
    """

    def __init__(self, cairn_bin: Path, data_dir: Path, cwd: Path, env: dict[str, str],
                 args: tuple[str, ...] = (), host: str = "127.0.0.1",
                 prefix: tuple[str, ...] = ()):
        self.cairn_bin = cairn_bin
        self.data_dir = data_dir
        self.cwd = cwd
        self.env = dict(env)
        self.args = tuple(args)
        self.port = free_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()
        # Where the node listens (another address for a node in its own network namespace,
        # which `prefix`, e.g. `netns-lab exec 1`, runs it in).
        self.host = host
        self.prefix = tuple(prefix)
        self.runs: list[Cairn] = []
        self.ready: dict[str, str] = {}

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http(self) -> str:
        """The HTTP API's base URL, `http://127.0.0.1:HTTP_PORT`."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def process(self) -> Cairn:
        if not self.runs:
            pytest.fail("the broker has not been started")
        return self.runs[-1]

    @property
    def pid(self) -> int:
        return self.process.proc.pid

    def running(self) -> bool:
        return bool(self.runs) and self.process.running()

    def start(self) -> "Broker":
        """Starts the node and returns once it logged `cairn ready` and its Kafka port accepts
        connections."""
        if self.running():
            pytest.fail("start(): the broker is already running")
        argv = [
            *self.prefix,
            str(self.cairn_bin), "serve",
            "--data-dir", str(self.data_dir),
            "--listen", self.bootstrap,
            *self.args,
        ]
        if "--http-listen" not in self.args and "CAIRN_HTTP_LISTEN" not in self.env:
            argv += ["--http-listen", f"{self.host}:{self.http_port}"]
        process = Cairn(argv, clean_env(**self.env), self.cwd)
        self.runs.append(process)
        self.ready = process.wait_ready()

        def accepting() -> bool:
            if not process.running():
                pytest.fail(
                    f"cairn exited with {process.proc.returncode} after `cairn ready`; "
                    f"stderr:\n{process.stderr}"
                )
            return port_accepts(self.host, self.port)

        wait_until(accepting, KAFKA_PORT_TIMEOUT_S,
                   f"the Kafka listener on {self.bootstrap} to accept connections")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = EXIT_TIMEOUT_S) -> int:
        """Sends `sig` and waits for the process to exit; returns its exit code."""
        return self.process.stop(sig, timeout)

    def restart(self) -> "Broker":
        """SIGTERM, wait for a clean exit, start again on the same data dir and port."""
        code = self.stop()
        assert code == 0, f"cairn exited with {code} on SIGTERM; stderr:\n{self.process.stderr}"
        return self.start()

    def kill9(self) -> None:
        """SIGKILL and wait: a crash, as far as the data dir can tell."""
        self.process.proc.kill()
        self.process.wait_exit()

    def rss_bytes(self) -> int:
        """The process's resident set size (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        pytest.fail(f"no VmRSS in /proc/{self.pid}/status")

    def logs(self) -> str:
        """Every run's stderr, oldest run first."""
        return "\n".join(
            f"--- cairn run {n} (pid {run.proc.pid}) ---\n{run.stderr}"
            for n, run in enumerate(self.runs, start=1)
        )

    def panics(self) -> list[str]:
        return [line for run in self.runs for line in run.stderr.splitlines() if "panicked" in line]

    def assert_alive(self) -> None:
        assert self.running(), f"the broker died; stderr:\n{self.logs()}"


@pytest.fixture
def start_broker(cairn_bin: Path, tmp_path: Path, request):
    """`start_broker(env={...}, args=(...), data_dir=...)` starts a broker and returns its
    `Broker`. At teardown every broker the test started is stopped with SIGTERM (it must exit
    cleanly) and none of their runs may have panicked."""
    brokers: list[Broker] = []
    request.node.cairn_brokers = brokers

    def start(env: dict[str, str] | None = None, args: tuple[str, ...] = (),
              data_dir: Path | None = None, host: str = "127.0.0.1",
              prefix: tuple[str, ...] = ()) -> Broker:
        n = len(brokers)
        home = tmp_path / f"broker{n}"
        home.mkdir()
        broker = Broker(cairn_bin, data_dir or home / "data", home, env or {}, args,
                        host=host, prefix=prefix)
        brokers.append(broker)
        return broker.start()

    yield start

    problems = []
    for broker in brokers:
        mine = []
        if broker.running():
            broker.process.proc.send_signal(signal.SIGTERM)
            try:
                code = broker.process.proc.wait(timeout=EXIT_TIMEOUT_S)
                if code != 0:
                    mine.append(f"broker {broker.bootstrap} exited with {code} on SIGTERM")
            except subprocess.TimeoutExpired:
                mine.append(
                    f"broker {broker.bootstrap} did not stop within {EXIT_TIMEOUT_S}s of SIGTERM"
                )
        for run in broker.runs:
            run.kill()
            for reader in run._readers:
                reader.join(EXIT_TIMEOUT_S)
        if broker.panics():
            mine.append(f"broker {broker.bootstrap} panicked: {broker.panics()}")
        if mine:
            problems += [*mine, broker.logs()]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def broker(start_broker) -> Broker:
    """One broker with the built-in defaults."""
    return start_broker()
