"""The connection-time SSRF guard (app/outbound.py) against real HTTP servers on loopback.

A server on 127.0.0.1 is never allowed and records whether it was reached; a server on
127.0.0.2 is the one allowed host, and redirects from it must not get through to the
forbidden one. Checks at submit are in tests/api/test_outbound_urls.py.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator

import pytest

from app import outbound
from app.outbound import OutboundPolicy, OutboundRefused, address_problem, guarded_session


class Recorder:
    """A loopback HTTP server that answers 200 (or redirects) and records each request."""

    def __init__(self, host: str, redirect_to: str | None = None):
        self.paths: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                recorder.paths.append(self.path)
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def forbidden() -> Iterator[Recorder]:
    server = Recorder("127.0.0.1")
    yield server
    server.close()


ALLOW_127_0_0_2 = OutboundPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),))


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.31.0.1", "192.168.0.1", "169.254.169.254", "0.0.0.0",
     "100.64.0.1", "224.0.0.1", "::1", "::", "fd12::1", "fe80::1", "::ffff:10.0.0.1",
     "64:ff9b::a9fe:a9fe", "2002:7f00:1::1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address):
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1", "2130706433", "0.0.0.0"])
def test_every_spelling_of_loopback_is_refused_on_connect(forbidden, host):
    port = forbidden.url.rsplit(":", 1)[1]
    with pytest.raises(OutboundRefused):
        guarded_session(OutboundPolicy()).get(f"http://{host}:{port}/secret", timeout=5)
    assert forbidden.paths == []


def test_allowed_host_is_reached(forbidden):
    allowed = Recorder("127.0.0.2")
    try:
        response = guarded_session(ALLOW_127_0_0_2).get(f"{allowed.url}/file", timeout=5)
        assert response.status_code == 200 and allowed.paths == ["/file"]
    finally:
        allowed.close()


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_redirect_to_a_forbidden_host_is_refused(forbidden, method):
    allowed = Recorder("127.0.0.2", redirect_to=f"{forbidden.url}/secret")
    try:
        with pytest.raises(OutboundRefused):
            getattr(guarded_session(ALLOW_127_0_0_2), method)(f"{allowed.url}/x", timeout=5)
        assert allowed.paths == ["/x"] and forbidden.paths == []
    finally:
        allowed.close()


def test_a_dns_answer_that_changes_after_the_check_is_refused(forbidden, monkeypatch):
    """Rebinding: public when checked at submit, loopback when the worker connects."""
    port = int(forbidden.url.rsplit(":", 1)[1])
    answers = iter([[ipaddress.ip_address("93.184.216.34")], [ipaddress.ip_address("127.0.0.1")]])
    monkeypatch.setattr(outbound, "resolve", lambda host, port=None: next(answers))
    policy = OutboundPolicy()
    url = f"http://rebind.example:{port}/secret"
    assert policy.http_url_problem(url) is None  # the submit-time check passes
    with pytest.raises(OutboundRefused):
        guarded_session(policy).get(url, timeout=5)
    assert forbidden.paths == []


def test_environment_proxies_are_ignored(forbidden, monkeypatch):
    """A proxy in the environment would receive the request instead of the checked host."""
    monkeypatch.setenv("HTTP_PROXY", forbidden.url)
    allowed = Recorder("127.0.0.2")
    try:
        guarded_session(ALLOW_127_0_0_2).get(f"{allowed.url}/file", timeout=5)
        assert allowed.paths == ["/file"] and forbidden.paths == []
    finally:
        allowed.close()
