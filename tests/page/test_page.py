"""The run page in-process: sign-in, session cookie, CSRF, the runs list and live JSON.

The browser tests (tests/e2e/test_page_browser.py) drive the same pages in Chromium
against the whole service; these check the rules one request at a time, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from tests.page.conftest import csrf as _csrf
from tests.page.conftest import sign_in as _sign_in


def test_home_links_to_the_page(client):
    assert client.get("/").get_json()["links"]["page"] == "/page/"


def test_pages_need_a_session(app, client):
    """Every page route but sign-in and the static files answers a visitor without a
    session with the sign-in form (HTML) or 401 (JSON, POST); derived from the URL map."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("page.") or rule.endpoint in ("page.signin", "page.static"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = re.sub(rf"<[^>]*{argument}>", "x.csv", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            if method == "GET" and not path.endswith(".json"):
                assert response.status_code == 303, (method, path)
                assert "/page/signin" in response.headers["Location"]
            else:
                assert response.status_code in (401, 403), (method, path, response.status_code)
            checked += 1
    assert checked >= 9


def test_sign_in_refuses_a_bad_key(client):
    response = _sign_in(client, "not-a-key")
    assert response.status_code == 401
    assert "Unknown or revoked API key" in response.get_data(as_text=True)
    assert client.get("/page/").status_code == 303  # still signed out


def test_sign_in_refuses_a_worker_key(client, worker_headers):
    response = _sign_in(client, worker_headers["Authorization"].split()[1])
    assert response.status_code == 403
    assert "lacks the PIPELINES_CLIENT permission" in response.get_data(as_text=True)
    assert client.get("/page/runs.json").status_code == 401


def test_sign_in_needs_the_csrf_token(client, client_headers):
    token = client_headers["Authorization"].split()[1]
    response = client.post("/page/signin", data={"key": token})
    assert response.status_code == 403
    assert "CSRF" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_and_strict(client, client_headers):
    response = _sign_in(client, client_headers["Authorization"].split()[1])
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/page" in cookie
    assert client_headers["Authorization"].split()[1] not in cookie
    assert response.headers["Location"] == "/page/"


def test_sign_in_never_redirects_elsewhere(client, client_headers):
    token = client_headers["Authorization"].split()[1]
    response = client.post(
        "/page/signin", data={"key": token, "csrf_token": _csrf(client), "next": "//evil.test/"}
    )
    assert response.headers["Location"] == "/page/"


def test_revoked_key_signs_the_page_out(app, signed_in):
    """(A key already seen is remembered for AUTH_CACHE_SECONDS, as the API's are.)"""
    from app.auth.models import ApplicationKey
    from app.extensions import db

    for key in db.session.query(ApplicationKey):
        key.revoked_at = key.created_at
    db.session.commit()
    assert signed_in.get("/page/").status_code == 303


def test_runs_list_and_its_conditional_poll(signed_in, run, pipeline):
    page = signed_in.get("/page/")
    html = page.get_data(as_text=True)
    assert run["id"][:8] in html and pipeline["name"] in html and "READY" in html
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    first = signed_in.get("/page/runs.json")
    assert first.status_code == 200
    item = first.get_json()["items"][0]
    assert item["id"] == run["id"] and item["kind"] == "pipeline" and item["state"] == "READY"
    again = signed_in.get("/page/runs.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert signed_in.get("/page/runs.json?kind=workflow").get_json()["items"] == []
    assert signed_in.get("/page/runs.json?state=COMPLETED").get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("kind=nope", "kind"), ("state=DONE", "state"), ("cursor=abc", "cursor")],
)
def test_runs_list_names_a_bad_filter(signed_in, query, field):
    response = signed_in.get(f"/page/runs.json?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_run_page_and_live_json(signed_in, run):
    html = signed_in.get(f"/page/runs/{run['id']}").get_data(as_text=True)
    assert "Run of pipeline" in html and 'id="progress"' in html and 'id="cancel"' in html
    live = signed_in.get(f"/page/runs/{run['id']}/live.json")
    body = live.get_json()
    assert body["state"] == "READY" and body["history"][0]["state"] == "READY"
    assert body["actions"] == []  # re-run only once the run has ended
    assert (
        signed_in.get(
            f"/page/runs/{run['id']}/live.json", headers={"If-None-Match": live.headers["ETag"]}
        ).status_code
        == 304
    )
    assert signed_in.get("/page/runs/nope/live.json").status_code == 404
    logs = signed_in.get(f"/page/runs/{run['id']}/logs.json?after=0").get_json()
    assert logs == {"lines": [], "next_after": 0, "complete": False}
    assert signed_in.get(f"/page/runs/{run['id']}/logs.json?after=-1").status_code == 422


def test_a_job_run_page_shows_its_kind_parameters_and_why_it_waits(
    signed_in, client_headers, worker_headers
):
    body = {"parameters": {"nominal_voltage": 2401.7771}}
    run = signed_in.post(
        "/api/v1.0/job-kinds/voltage_report/runs", json=body, headers=client_headers
    ).get_json()
    html = signed_in.get(f"/page/runs/{run['id']}").get_data(as_text=True)
    assert "Run of job kind voltage_report" in html and "2401.7771" in html
    assert 'id="plot-section"' in html and 'id="log"' in html
    live = signed_in.get(f"/page/runs/{run['id']}/live.json").get_json()
    assert "No worker runs job kind 'voltage_report'" in live["waiting_reason"]
    listed = signed_in.get("/page/runs.json?kind=job").get_json()
    assert [item["id"] for item in listed["items"]] == [run["id"]], listed
    announce = {"worker_id": "w1", "kinds": ["voltage_report"]}
    signed_in.put("/api/v1.0/worker/job-kinds", json=announce, headers=worker_headers)
    live = signed_in.get(f"/page/runs/{run['id']}/live.json").get_json()
    assert live["waiting_reason"] is None


def test_cancel_needs_the_csrf_token(signed_in, run):
    path = f"/page/runs/{run['id']}/cancel"
    refused = signed_in.post(path)
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    assert signed_in.get(f"/page/runs/{run['id']}/live.json").get_json()["state"] == "READY"
    other_origin = signed_in.post(
        path,
        data={"csrf_token": _csrf(signed_in, "/page/")},
        headers={"Origin": "http://evil.test"},
    )
    assert other_origin.status_code == 403
    done = signed_in.post(path, data={"csrf_token": _csrf(signed_in, "/page/")})
    assert done.status_code == 303
    live = signed_in.get(f"/page/runs/{run['id']}/live.json").get_json()
    assert live["state"] == "CANCELLED" and live["actions"] == ["rerun"]


def test_rerun_starts_a_new_run(signed_in, run):
    token = _csrf(signed_in, "/page/")
    signed_in.post(f"/page/runs/{run['id']}/cancel", data={"csrf_token": token})
    response = signed_in.post(f"/page/runs/{run['id']}/actions/rerun", data={"csrf_token": token})
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    assert new_id != run["id"]
    assert signed_in.get(f"/page/runs/{new_id}/live.json").get_json()["state"] == "READY"
    bad = signed_in.post(f"/page/runs/{run['id']}/actions/explode", data={"csrf_token": token})
    assert bad.status_code == 422


def test_plot_refuses_what_it_cannot_plot(signed_in, run):
    base = f"/page/runs/{run['id']}/plot.json"
    assert signed_in.get(f"{base}?artifact=a.txt").status_code == 422
    assert signed_in.get(f"{base}?artifact=a.csv").status_code == 404
    assert signed_in.get(f"{base}?artifact=a.csv&buckets=1").status_code in (404, 422)


def test_static_files_are_served_by_the_app(client):
    for name in ("page.js", "page.css"):
        assert client.get(f"/page/static/{name}").status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/page/runs/%00/live.json", 422),
        (f"/page/runs/{'x' * 300}/live.json", 404),
        ("/page/runs/x/plot.json?artifact=%00.csv", 422),
        ("/page/runs.json?state=%00", 422),
    ],
)
def test_hostile_input_is_a_4xx(signed_in, path, status):
    response = signed_in.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["message"]
