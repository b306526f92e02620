"""The connection-time SSRF guard (app/outbound.py) against real HTTP servers on loopback.

A server on 127.0.0.1 is never allowed and records whether it was reached; a server on
127.0.0.2 is the one allowed host, and redirects from it must not get through to the
forbidden one. Checks at submit are in tests/api/test_outbound_urls.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from app import outbound
from app.outbound import OutboundPolicy, OutboundRefused, address_problem, guarded_session
from tests.http_recorder import Recorder


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
