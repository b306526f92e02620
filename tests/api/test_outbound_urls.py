"""Run URLs that would make the service reach internal hosts are refused at submit: 422
naming the field and the reason (SSRF; app/outbound.py). The same rules are enforced
again when a worker connects (tests/test_outbound.py, tests/e2e)."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.outbound import policy_for
from tests.conftest import make_settings

HOSTILE_HOSTS = [
    "127.0.0.1",
    "localhost",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "0.0.0.0",
    "169.254.169.254",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
]
# Literal IPv6 hosts fail the URL pattern first (an IPv6 host is reached by its name); the
# addresses themselves are refused on connect too (tests/test_outbound.py).
IPV6_HOSTS = ["[::1]", "[fd00::1]", "[::ffff:127.0.0.1]", "[::]"]


def runs_url(pipeline: dict) -> str:
    return f"/api/v1.0/pipelines/{pipeline['id']}/runs"


def field_errors(payload: dict, *path: str) -> list[str]:
    node = payload["errors"]["json"]
    for key in path:
        node = node[key]
    return node


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_input_on_internal_host_is_refused(client, client_headers, pipeline, host):
    body = {"inputs": [{"name": "w.tmy2", "url": f"http://{host}:8080/w.tmy2"}]}
    response = client.post(runs_url(pipeline), json=body, headers=client_headers)
    assert response.status_code == 422, response.get_json()
    payload = response.get_json()
    assert payload["code"] == "VALIDATION_FAILED"
    (reason,) = field_errors(payload, "inputs", "0", "url")
    assert reason.startswith("Refused:") and "OUTBOUND_ALLOWED_HOSTS" in reason
    listed = client.get(runs_url(pipeline), headers=client_headers).get_json()["items"]
    assert listed == []  # nothing was created


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_callback_on_internal_host_is_refused(client, client_headers, pipeline, host):
    body = {"callback_url": f"https://{host}/hook"}
    response = client.post(runs_url(pipeline), json=body, headers=client_headers)
    assert response.status_code == 422, response.get_json()
    reasons = field_errors(response.get_json(), "callback_url")
    assert any(reason.startswith("Refused:") for reason in reasons), reasons


@pytest.mark.parametrize("host", IPV6_HOSTS)
def test_literal_ipv6_hosts_are_refused(client, client_headers, pipeline, host):
    body = {"inputs": [{"name": "w.tmy2", "url": f"http://{host}:8080/w.tmy2"}]}
    response = client.post(runs_url(pipeline), json=body, headers=client_headers)
    assert response.status_code == 422, response.get_json()


def test_public_addresses_are_accepted(client, client_headers, pipeline, model_file):
    body = {
        "inputs": [{"name": "w.tmy2", "url": "http://93.184.216.34/w.tmy2"}],
        "callback_url": "https://1.1.1.1/hook",
    }
    response = client.post(runs_url(pipeline), json=body, headers=client_headers)
    assert response.status_code == 201, response.get_json()


def test_the_service_own_hosts_are_refused_by_name(tmp_path):
    settings = make_settings(
        tmp_path, "sqlite://", WORKER_API_SERVER="https://jobs.example.org", S3_BUCKET="b"
    )
    problem = policy_for(settings).http_url_problem("https://jobs.example.org/api/v1.0/x")
    assert problem and "service's own hosts" in problem


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://other-team/data.csv", "INPUT_S3_BUCKETS"),
        ("s3://service-bucket/pipelines/x/files/y", "own bucket"),
    ],
)
def test_s3_inputs_only_from_allowed_buckets(tmp_path, url, expected):
    settings = make_settings(
        tmp_path, "sqlite://", S3_BUCKET="service-bucket", INPUT_S3_BUCKETS="shared-data"
    )
    policy = policy_for(settings)
    assert expected in (policy.input_url_problem(url) or "")
    assert policy.input_url_problem("s3://shared-data/weather/WA-Yakima.tmy2") is None


def test_s3_inputs_refused_by_default(client, client_headers, pipeline):
    body = {"inputs": [{"name": "a.csv", "url": "s3://any-bucket/a.csv"}]}
    response = client.post(runs_url(pipeline), json=body, headers=client_headers)
    assert response.status_code == 422
    (reason,) = field_errors(response.get_json(), "inputs", "0", "url")
    assert "INPUT_S3_BUCKETS" in reason


def test_allowed_hosts_and_networks_open_internal_addresses(tmp_path):
    settings = Settings.from_env(
        {}, INSTANCE_DIR=str(tmp_path), OUTBOUND_ALLOWED_HOSTS="10.1.0.0/16, files.internal"
    )
    policy = policy_for(settings)
    assert policy.http_url_problem("http://10.1.2.3/x") is None
    assert policy.http_url_problem("http://10.2.0.1/x") is not None
    assert policy.input_url_problem("http://127.0.0.1:5000/x") is not None
