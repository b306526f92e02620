"""Data stores and flow inputs through the API: secrets never shown, locations confined,
and every mistake in a flow input a 422 naming the transform and the position."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.config import Settings
from app.extensions import db
from app.flows import locations
from tests.flows import data as flow_data

API = "/api/v1.0"


def _post(client, headers, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"{API}{path}", json=body, headers=headers)


@pytest.fixture
def stores(client, client_headers, pg_source, maria_source, files_root) -> dict[str, str]:
    """One store of each kind the test flows use: name -> id."""
    bodies = {
        "pg": {"name": "meters", "type": "RELATIONAL", **_server(pg_source.store()),
               "password": "s3cret-pg"},
        "maria": {"name": "feeders", "type": "RELATIONAL", **_server(maria_source.store())},
        "sqlite": {"name": "readings", "type": "RELATIONAL", "engine": "sqlite",
                   "path": "readings.sqlite"},
        "csv": {"name": "tariffs", "type": "FILE", "engine": "csv", "path": "tariffs"},
        "duck": {"name": "warehouse", "type": "COLUMNAR", "engine": "duckdb",
                 "path": "out/warehouse.duckdb"},
    }  # fmt: skip
    ids = {}
    for key, body in bodies.items():
        response = _post(client, client_headers, "/data-stores", body)
        assert response.status_code == 201, response.get_json()
        ids[key] = response.get_json()["id"]
    return ids


def _server(store: dict[str, Any]) -> dict[str, Any]:
    return {k: store[k] for k in ("engine", "host", "port", "user", "database")}


def test_password_encrypted_never_returned(client, client_headers, stores, app):
    body = client.get(f"{API}/data-stores/{stores['pg']}", headers=client_headers).get_json()
    assert "password" not in body and body["has_password"] is True
    listing = client.get(f"{API}/data-stores", headers=client_headers).get_data(as_text=True)
    assert "s3cret-pg" not in listing
    stored = db.session.execute(
        text("SELECT password_encrypted FROM data_stores WHERE id = :id"), {"id": stores["pg"]}
    ).scalar_one()
    assert stored and "s3cret-pg" not in stored
    # PUT without a password keeps the stored one.
    current = {k: body[k] for k in ("name", "type", "engine", "host", "port", "user", "database")}
    response = client.put(
        f"{API}/data-stores/{stores['pg']}", json={**current, "name": "renamed"},
        headers=client_headers,
    )  # fmt: skip
    assert response.status_code == 200 and response.get_json()["has_password"] is True


def test_store_test_lists_tables(client, client_headers, stores):
    for key, expected in (
        ("pg", "public.meters"), ("maria", "feeders"), ("sqlite", "readings"),
        ("csv", "tariffs_0.csv"),
    ):  # fmt: skip
        response = client.post(f"{API}/data-stores/{stores[key]}/test", headers=client_headers)
        assert response.status_code == 200, response.get_json()
        assert expected in response.get_json()["tables"], key


def test_store_test_gives_the_drivers_reason_without_the_password(
    client, client_headers, pg_source
):
    body = {"name": "x", "type": "RELATIONAL", **_server(pg_source.store()),
            "user": "nobody_here", "password": "hunter2-secret"}  # fmt: skip
    store = _post(client, client_headers, "/data-stores", body).get_json()
    response = client.post(f"{API}/data-stores/{store['id']}/test", headers=client_headers)
    assert response.status_code == 422
    answer = response.get_data(as_text=True)
    assert "nobody_here" in answer and "hunter2-secret" not in answer


def test_store_test_says_when_the_password_cannot_be_decrypted(
    client, client_headers, stores, change_key
):
    change_key()
    response = client.post(f"{API}/data-stores/{stores['pg']}/test", headers=client_headers)
    assert response.status_code == 422, response.get_json()
    expected = (
        f"The password of data store meters ({stores['pg']}) cannot be decrypted with the "
        f"current FLOWS_SECRET_KEY; set it again (PUT /data-stores/{stores['pg']})"
    )
    assert response.get_json()["message"] == expected
    assert response.get_json()["errors"] == {"password": [expected]}
    # Set again, the password works with the new key.
    store = client.get(f"{API}/data-stores/{stores['pg']}", headers=client_headers).get_json()
    body = {k: store[k] for k in ("name", "type", "engine", "host", "port", "user", "database")}
    response = client.put(
        f"{API}/data-stores/{stores['pg']}", json={**body, "password": "s3cret-pg"},
        headers=client_headers,
    )  # fmt: skip
    assert response.status_code == 200
    response = client.post(f"{API}/data-stores/{stores['pg']}/test", headers=client_headers)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"engine": "csv", "type": "FILE", "path": "/etc"}, "path", "inside the data folder"),
        ({"engine": "csv", "type": "FILE", "path": "../../etc"}, "path", ".."),
        ({"engine": "sqlite", "type": "RELATIONAL", "path": "/etc/passwd"}, "path", "inside"),
        ({"engine": "duckdb", "type": "COLUMNAR", "path": "s3://b/x.duckdb"}, "path", "csv"),
        ({"engine": "csv", "type": "FILE", "path": "s3://not-allowed/x/"}, "path", "INPUT_S3"),
        ({"engine": "csv", "type": "FILE", "path": "file:///etc"}, "path", "local path"),
        ({"engine": "postgresql", "type": "RELATIONAL", "host": "169.254.169.254",
          "database": "d"}, "host", "link-local"),
        ({"engine": "mysql", "type": "RELATIONAL", "host": "10.1.2.3", "database": "d"},
         "host", "private"),
        ({"engine": "postgresql", "type": "FILE", "host": "h", "database": "d"}, "engine", "csv"),
        ({"engine": "postgresql", "type": "RELATIONAL", "database": "d"}, "host", "host"),
        ({"engine": "csv", "type": "FILE", "path": "x", "password": "p"}, "password", "no"),
    ],
)  # fmt: skip
def test_store_locations_are_confined(client, client_headers, body, field, reason):
    response = _post(client, client_headers, "/data-stores", {"name": "bad", **body})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]
    assert field in errors, errors
    assert reason in str(errors[field])


def test_symlink_out_of_the_data_root_is_refused(client, client_headers, files_root):
    link = files_root / "escape"
    if not link.exists():
        link.symlink_to("/etc")
    body = {"name": "x", "type": "FILE", "engine": "csv", "path": "escape"}
    response = _post(client, client_headers, "/data-stores", body)
    assert response.status_code == 422
    assert "path" in response.get_json()["errors"]["json"]


def test_the_services_own_database_is_refused():
    """Even on a host the deployment allows, the service's own database is out of reach."""
    settings = Settings.from_env(
        {},
        SQLALCHEMY_DATABASE_URI="postgresql://postgres@localhost:5432/jobs",
        OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
    )
    problem = locations.host_problem(settings, "127.0.0.1", 5432, "jobs")
    assert problem and "own database" in problem
    assert locations.host_problem(settings, "127.0.0.1", 5432, "metering") is None
    assert "private" in locations.host_problem(settings, "192.168.1.10", 5432, "jobs")


# --- flow inputs ----------------------------------------------------------------------


def flow_input_body(stores: dict[str, str], transforms: list[dict[str, Any]] | None = None,
                    checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "name": "feeder-energy",
        "sources": [
            {"store_id": stores["pg"], "tables": [{"table": "public.meters"}]},
            {"store_id": stores["maria"], "tables": [{"table": "feeders"}]},
            {"store_id": stores["sqlite"], "tables": [{"table": "readings"}]},
            {"store_id": stores["csv"], "files": [{"name": "tariffs", "pattern": "tariffs_*.csv"}]},
        ],
        "target_store_id": stores["duck"],
        "transforms": transforms if transforms is not None else flow_data.TRANSFORMS,
        "checks": checks if checks is not None else flow_data.CHECKS,
    }


def test_flow_input_graph_is_derived_from_the_sql(client, client_headers, stores):
    response = _post(client, client_headers, "/flow-inputs", flow_input_body(stores))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["graph"]["feeder_daily"] == ["meter_daily", "meter_info"]
    assert body["graph"]["meter_daily"] == []
    order = body["order"]
    assert order.index("feeder_peak") < order.index("feeder_loading")
    assert order.index("meter_info") < order.index("billing")
    again = client.get(f"{API}/flow-inputs/{body['id']}", headers=client_headers).get_json()
    assert again["order"] == order
    # Immutable: no PUT or DELETE.
    assert (
        client.put(f"{API}/flow-inputs/{body['id']}", json={}, headers=client_headers).status_code
        == 405
    )
    # A store in use cannot be deleted.
    response = client.delete(f"{API}/data-stores/{stores['pg']}", headers=client_headers)
    assert response.status_code == 409


HOSTILE = [
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv", (1, 15)),
    ("SELECT * FROM read_parquet('s3://b/x.parquet')", "read_parquet", (1, 15)),
    ("SELECT * FROM glob('/etc/*')", "glob", (1, 15)),
    ("SELECT content FROM read_text('/etc/passwd')", "read_text", (1, 21)),
    ("SELECT * FROM '/etc/passwd'", "not a table name", (1, 15)),
    ("SELECT * FROM 'https://example.com/x.csv'", "not a table name", (1, 15)),
    ("SELECT getenv('HOME') AS h", "getenv", (1, 8)),
    ("ATTACH 'x.db' AS y", "ATTACH", (1, 1)),
    ("COPY meters TO '/tmp/x.csv'", "COPY", (1, 1)),
    ("INSTALL httpfs", "INSTALL", (1, 1)),
    ("LOAD httpfs", "LOAD", (1, 1)),
    ("PRAGMA database_list", "PRAGMA", (1, 1)),
    ("SET enable_external_access = true", "SET", (1, 1)),
    ("SELECT 1 AS x; DROP TABLE meters", "one statement", None),
    ("INSERT INTO meters VALUES (1)", "INSERT", (1, 1)),
    ("CREATE TABLE t AS SELECT 1", "CREATE", (1, 1)),
    ("SELECT * FROM main.meters", "without a schema", (1, 20)),
    ("SELECT * FROM pg.public.meters", "without a schema", (1, 25)),
    ("SELECT * FROM nowhere", "neither a source table nor a transform", (1, 15)),
    ("SELECT id,\n  FROM WHERE meters", "does not parse", (2, 8)),
]


@pytest.mark.parametrize(("sql", "reason", "position"), HOSTILE)
def test_hostile_or_wrong_sql_is_refused_with_its_position(
    client, client_headers, stores, sql, reason, position
):
    transforms = [{"name": "ok", "sql": "SELECT * FROM meters"}, {"name": "bad", "sql": sql}]
    response = _post(
        client, client_headers, "/flow-inputs", flow_input_body(stores, transforms, [])
    )
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]
    message = errors["transforms"]["1"]["sql"][0]
    assert message.startswith("transform bad: "), message
    assert reason in message, message
    if position:
        assert f"(line {position[0]}, column {position[1]})" in message, message
    assert "0" not in errors["transforms"]


def test_cycle_is_reported_with_its_path(client, client_headers, stores):
    transforms = [
        {"name": "a", "sql": "SELECT * FROM c"},
        {"name": "b", "sql": "SELECT * FROM a"},
        {"name": "c", "sql": "SELECT * FROM b JOIN meters USING (id)"},
    ]
    response = _post(
        client, client_headers, "/flow-inputs", flow_input_body(stores, transforms, [])
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]["_graph"] == ["cycle: a -> b -> c -> a"]


def test_unknown_store_duplicate_name_and_bad_check(client, client_headers, stores):
    body = flow_input_body(
        stores,
        [{"name": "meters", "sql": "SELECT 1 AS x"}],
        [{"type": "not_null", "table": "nothing", "column": "x"}],
    )
    body["sources"][0]["store_id"] = "no-such-store"
    body["target_store_id"] = stores["maria"]
    response = _post(client, client_headers, "/flow-inputs", body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]
    assert errors["sources"]["0"]["store_id"] == ["No data store no-such-store"]
    assert "target" in errors["target_store_id"][0] or "duckdb" in errors["target_store_id"][0]
    assert errors["checks"]["0"]["table"]
    body = flow_input_body(stores, [{"name": "meters", "sql": "SELECT 1 AS x"}], [])
    response = _post(client, client_headers, "/flow-inputs", body)
    assert "meters: the name is used twice" in str(response.get_json()["errors"])
