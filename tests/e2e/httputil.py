"""A small HTTP client for the tests of Cairn's HTTP API, on the standard library's
http.client: every answer comes back as it was (status, headers, body), errors included, and
requests can be shaped freely (any method, content type, body, or a body larger than the
server takes)."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 60.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def error(self) -> tuple[int, int, str]:
        """(status, error_code, message) of an error answer; fails on any other shape."""
        body = self.json()
        assert set(body) == {"error_code", "message"}, f"not an error body: {body}"
        assert self.content_type.startswith("application/json"), self.content_type
        return self.status, body["error_code"], body["message"]

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:500]!r})"


class Http:
    """Requests against one base URL (`http://host:port`)."""

    def __init__(self, base: str, timeout: float = DEFAULT_TIMEOUT_S):
        parsed = urllib.parse.urlsplit(base)
        self.host = parsed.hostname
        self.port = parsed.port
        self.base = base
        self.timeout = timeout

    def request(self, method: str, path: str, *, body=None,
                json_body=None, content_type: str | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None) -> Answer:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", content_type or "application/json")
        elif content_type is not None:
            headers["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        try:
            chunked = body is not None and not isinstance(body, (bytes, bytearray))
            try:
                conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
            except (BrokenPipeError, ConnectionResetError):
                # The server answered (e.g. 413 on the declared length) and closed before
                # the whole body was sent: its answer is still there to read.
                pass
            resp = conn.getresponse()
            data = resp.read()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Answer:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> Answer:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw) -> Answer:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> Answer:
        return self.request("DELETE", path, **kw)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def expect(answer: Answer, status: int):
    """The JSON body of an answer that must have `status`."""
    assert answer.status == status, f"expected {status}, got {answer}"
    return answer.json() if answer.body else None


def cluster_id(client: Http) -> str:
    return expect(client.get("/v3/clusters"), 200)["data"][0]["cluster_id"]


def wait_ready(client: Http, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{client.base}/readyz never answered 200")
        time.sleep(0.05)
