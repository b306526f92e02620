"""Which hosts a client's URL may make the service reach (inputs, callbacks): the SSRF guard.

A client names URLs that a worker fetches (run inputs) or POSTs to (``callback_url``).
Unchecked, that lets anyone with a key make the service reach loopback, the private
network, the cloud metadata endpoint (169.254.169.254) or the service's own database,
broker, store and API. The rule: only public (globally routable) addresses, plus the
hosts and networks a deployment names in ``OUTBOUND_ALLOWED_HOSTS``; never the service's
own hosts. ``s3://`` inputs may name only the buckets in ``INPUT_S3_BUCKETS`` and never
the service's own bucket (its objects are reached through references the API checks).

The rule is applied twice: when the URL is submitted (a clear 422) and when the
connection is made (``guarded_session``), after DNS resolution, on the address actually
connected to, and again for every redirect, so neither a redirect nor a DNS answer that
changes between the check and the use gets through. Nothing here imports Flask.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import create_connection

from app.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
HTTP_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
# Prefixes that carry an IPv4 address inside an IPv6 one (NAT64, 6to4, Teredo are
# handled by ipaddress); the embedded address is what the packet finally reaches.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundRefused(Exception):
    """The URL or the address it resolves to may not be reached. Not an OSError on
    purpose: urllib3 must not wrap it into a retryable connection error."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_problem(inner)
    for kind, flag in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local (cloud metadata)", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is {kind} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to (numeric forms such as ``127.1`` included).

    Raises ``socket.gaierror`` when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _hosts_of(urls: Iterable[str]) -> frozenset[str]:
    hosts = set()
    for url in urls:
        if url and "://" in url:
            host = urlparse(url).hostname
            if host:
                hosts.add(host.lower())
    return frozenset(hosts)


@dataclass(frozen=True)
class OutboundPolicy:
    """The allow and deny lists of one deployment."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    own_hosts: frozenset[str] = frozenset()
    input_buckets: frozenset[str] = frozenset()
    own_bucket: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        hosts, networks = set(), []
        for item in _split(settings.OUTBOUND_ALLOWED_HOSTS):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower())
        own = _hosts_of(
            [
                settings.WORKER_API_SERVER,
                settings.S3_ENDPOINT_URL,
                settings.CELERY_BROKER_URL,
                settings.SQLALCHEMY_DATABASE_URI,
            ]
        )
        return cls(
            allowed_hosts=frozenset(hosts),
            allowed_networks=tuple(networks),
            own_hosts=own,
            input_buckets=frozenset(_split(settings.INPUT_S3_BUCKETS)),
            own_bucket=settings.S3_BUCKET,
        )

    # --- hosts and addresses ---

    def host_problem(self, host: str) -> str | None:
        """Refuse the service's own hosts by name, before any resolution."""
        if host.lower() in self.own_hosts:
            return f"{host} is one of the service's own hosts"
        return None

    def connect_problem(self, host: str, ip: IPAddress) -> str | None:
        """Why connecting to ``ip`` (resolved from ``host``) is refused, or None."""
        problem = self.host_problem(host)
        if problem:
            return problem
        own_addresses = self._own_addresses()
        if ip in own_addresses:
            return f"{host} resolves to {ip}, an address of the service's own hosts"
        if host.lower() in self.allowed_hosts:
            return None
        if any(ip in network for network in self.allowed_networks):
            return None
        problem = address_problem(ip)
        return f"{host} resolves to {problem}" if problem and host != str(ip) else problem

    def _own_addresses(self) -> frozenset[IPAddress]:
        return _resolved_addresses(self.own_hosts)

    # --- URLs ---

    def http_url_problem(self, url: str) -> str | None:
        """Check an http(s) URL when it is submitted: scheme, host, and its addresses.

        A name that does not resolve here is let through: the worker may sit on another
        network, and it checks again when it connects.
        """
        parsed = urlparse(url)
        if parsed.scheme not in HTTP_SCHEMES:
            return "Only http and https URLs are accepted"
        host = parsed.hostname
        if not host:
            return "The URL has no host"
        problem = self.host_problem(host)
        if problem:
            return _refusal(problem)
        try:
            addresses = resolve(host)
        except (OSError, UnicodeError):
            return None
        for ip in addresses:
            problem = self.connect_problem(host, ip)
            if problem:
                return _refusal(problem)
        return None

    def s3_url_problem(self, url: str) -> str | None:
        """``s3://bucket/key`` may name only an allowed bucket, never the service's own."""
        parsed = urlparse(url)
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        if not bucket or not key:
            return "An s3 URL names a bucket and a key: s3://bucket/key"
        if bucket == self.own_bucket:
            return (
                "The service's own bucket cannot be read through an s3:// input; pass the "
                "file to the pipeline or use a run's artifact URL"
            )
        if bucket not in self.input_buckets:
            return (
                f"Bucket {bucket!r} is not one that inputs may read "
                "(the deployment lists them in INPUT_S3_BUCKETS)"
            )
        return None

    def input_url_problem(self, url: str) -> str | None:
        """Check a run input's URL: http, https or s3, each by its own rule."""
        scheme = urlparse(url).scheme
        if scheme == "s3":
            return self.s3_url_problem(url)
        if scheme in HTTP_SCHEMES:
            return self.http_url_problem(url)
        return "Only http, https and s3 URLs are accepted"


def _refusal(problem: str) -> str:
    return (
        f"Refused: {problem}; only public addresses may be reached "
        "(a deployment allows internal hosts in OUTBOUND_ALLOWED_HOSTS)"
    )


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@functools.lru_cache(maxsize=32)
def _resolved_addresses(hosts: frozenset[str]) -> frozenset[IPAddress]:
    """Addresses of the service's own hosts, resolved once per process (best effort)."""
    found: set[IPAddress] = set()
    for host in hosts:
        try:
            found.update(resolve(host))
        except (OSError, UnicodeError):
            continue
    return frozenset(found)


@functools.lru_cache(maxsize=8)
def policy_for(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy.from_settings(settings)


# --- the connection-time guard for requests ----------------------------------------------


def _guarded_connect(connection: Any, policy: OutboundPolicy) -> socket.socket:
    """Resolve, check every address, and connect to a checked one (never re-resolve)."""
    host = connection._dns_host  # noqa: SLF001 - the name urllib3 would resolve
    try:
        addresses = resolve(host, connection.port)
    except socket.gaierror as exc:
        raise OutboundRefused(f"{host} does not resolve: {exc}") from None
    for ip in addresses:
        problem = policy.connect_problem(host, ip)
        if problem:
            raise OutboundRefused(_refusal(problem))
    error: OSError | None = None
    for ip in addresses:  # like create_connection's own loop, over checked addresses only
        try:
            return create_connection(
                (str(ip), connection.port),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except OSError as exc:
            error = exc
    raise error or OSError(f"{host}: no address to connect to")


def _connection_classes(policy: OutboundPolicy) -> tuple[type, type]:
    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_connect(self, policy)

    class GuardedHTTPSConnection(HTTPSConnection):
        # TLS still verifies the certificate against the URL's host name (server_hostname),
        # only the TCP connection goes to the checked address.
        def _new_conn(self) -> socket.socket:
            return _guarded_connect(self, policy)

    return GuardedHTTPConnection, GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: OutboundPolicy, **kwargs: Any):
        self._policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_conn, https_conn = _connection_classes(self._policy)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }


def guarded_session(policy: OutboundPolicy) -> requests.Session:
    """A requests session that can only reach what ``policy`` allows, redirects included.

    No proxies from the environment (a proxy would make the check meaningless), no
    credentials of the service, at most MAX_REDIRECTS redirects, each one re-checked
    because every new connection goes through the guard.
    """
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    adapter = _GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
