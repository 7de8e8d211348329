"""Driving `powercut` (tests/powercut), the FUSE file system that simulates power cuts.

`powercut mount STATE MOUNTPOINT` serves STATE/tree at MOUNTPOINT and takes commands on stdin:
`cut` keeps only what was durable (file contents as of their last fsync, directory entries as
of their directory's last fsync) and exits; `unmount` (or the end of stdin) keeps everything.
The next mount serves what the last one left.
"""

from __future__ import annotations

import select
import subprocess
import time
from pathlib import Path

import pytest

MOUNT_TIMEOUT_S = 10.0
# A cut writes the durable state out (a few MB here) and unmounts, retrying while busy.
CUT_TIMEOUT_S = 60.0


class PowerCutFs:
    """One power-cut file system under `base` (base/state, mounted at base/mnt)."""

    def __init__(self, binary: Path, base: Path):
        self.binary = binary
        self.state = base / "state"
        self.mountpoint = base / "mnt"
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.cuts = 0

    def mount(self) -> "PowerCutFs":
        if self.proc is not None:
            pytest.fail("powercut: already mounted")
        self.proc = subprocess.Popen(
            [str(self.binary), "mount", str(self.state), str(self.mountpoint)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self._read_line(MOUNT_TIMEOUT_S)
        if line != "mounted":
            self._fail(f"powercut did not mount {self.mountpoint} (got {line!r}); FUSE needs "
                       f"/dev/fuse and root")
        return self

    def cut(self) -> str:
        """The power goes out: only what was durable survives. Every process using the mount
        must be gone first. Returns powercut's summary of what it kept."""
        said = self._finish("cut")
        if not said.startswith("cut: "):
            self._fail(f"powercut cut: unexpected answer {said!r}")
        self.cuts += 1
        return said

    def unmount(self) -> str:
        said = self._finish("unmount")
        if not said.startswith("unmounted: "):
            self._fail(f"powercut unmount: unexpected answer {said!r}")
        return said

    def mounted(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Teardown: unmount if still mounted; never leave a mount behind."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                proc.stdin.write("unmount\n")
                proc.stdin.close()
                proc.wait(CUT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            # A powercut that died leaves a dead mount ("transport endpoint is not connected").
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)

    def _read_line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self._fail(f"no answer from powercut within {timeout}s")
        return self.proc.stdout.readline().strip()

    def _finish(self, command: str) -> str:
        if not self.mounted():
            self._fail(f"powercut {command}: not mounted")
        proc = self.proc
        proc.stdin.write(command + "\n")
        proc.stdin.close()
        started = time.monotonic()
        said = self._read_line(CUT_TIMEOUT_S)
        try:
            code = proc.wait(max(1.0, CUT_TIMEOUT_S - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            self._fail(f"powercut {command} did not exit")
        if code != 0:
            self._fail(f"powercut {command} exited with {code}")
        self.proc = None
        return said

    def _fail(self, message: str) -> None:
        proc, stderr = self.proc, ""
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            stderr = proc.stderr.read()
            self.proc = None
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
        pytest.fail(f"{message}; powercut stderr:\n{stderr}", pytrace=False)
