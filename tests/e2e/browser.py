"""A real browser for the console tests: headless Chromium driven over the DevTools protocol
(a websocket), so a test loads the page, lets its script run, reads the DOM, types and
presses keys as a user would. Chromium comes from Debian (scripts/test installs it); a
missing Chromium fails the test, it never skips."""

from __future__ import annotations

import json
import os
import re
import signal
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
import websocket

BROWSER_TIMEOUT_S = 30.0


class Browser:
    def __init__(self, width: int = 1280, height: int = 800):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            pytest.fail("chromium is not installed (scripts/test installs the Debian package)")
        self.profile = tempfile.TemporaryDirectory(prefix="cairn-chromium-",
                                                   ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking",
             "--remote-debugging-port=0", "--remote-allow-origins=*",
             f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            # Its own process group: closing kills every Chromium process, renderers too.
            start_new_session=True)
        port = None
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        seen = []
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                port = int(found.group(1))
        if port is None:
            self.close()
            pytest.fail("chromium did not start its DevTools endpoint:\n" + "".join(seen))
        # Chromium keeps writing to stderr; drain it so it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        assert pages, "chromium has no page"
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                              timeout=BROWSER_TIMEOUT_S)
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str, timeout: float = BROWSER_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = error = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expression)
            except AssertionError as e:  # the page is still loading
                last = None
                error = str(e)
            else:
                error = None
            if last:
                return last
            time.sleep(0.2)
        text = self.eval("document.body ? document.body.innerText : ''")
        pytest.fail(f"timed out waiting for {what} (last {last!r}, error {error}); page "
                    f"text:\n{text}")

    def key(self, key: str) -> None:
        """Presses and releases one printable key, as the keyboard would."""
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": key}
            if kind == "keyDown":
                params["text"] = key
            if key.isalpha():
                params["code"] = f"Key{key.upper()}"
            self.call("Input.dispatchKeyEvent", **params)

    def type_into(self, selector: str, text: str) -> None:
        """Focuses the field and types `text` into it key by key."""
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.eval(f"document.querySelector({json.dumps(selector)}).value = ''")
        self.call("Input.insertText", text=text)

    def text(self) -> str:
        return self.eval("document.body.innerText")

    def screenshot(self, path) -> int:
        """Saves the viewport as a PNG at `path` (for review; the console tests keep theirs
        under target/console-screenshots/); answers its size in bytes."""
        import base64
        from pathlib import Path

        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "Chromium's screenshot is not a PNG"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return len(data)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
            # Children may still be exiting; give the profile a moment before removing it.
            for _ in range(20):
                self.profile.cleanup()
                if not os.path.exists(self.profile.name):
                    break
                time.sleep(0.1)
