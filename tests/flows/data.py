"""Test data with power-system meaning, made here, and the flow's results computed in
plain Python (independently of the SQL) to check the engine against.

Feeders (MariaDB), meters (PostgreSQL), 15-minute interval readings (SQLite) and tariffs
(CSV files on disk).
"""

from __future__ import annotations

import contextlib
import csv
import random
import sqlite3
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pymysql

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLASSES = ("residential", "commercial", "industrial")
PRICES = {"residential": 0.21, "commercial": 0.17, "industrial": 0.12}
START = datetime(2026, 1, 1)
DAYS = 2

FEEDERS = [
    (1, "F-101", "North", 5000.0),
    (2, "F-102", "North", 7500.0),
    (3, "F-201", "South", 3000.0),
]


def make_data(seed: int = 8) -> dict[str, Any]:
    rng = random.Random(seed)
    meters = [(m, FEEDERS[m % 3][0], CLASSES[m % 3]) for m in range(1, 31)]
    readings = []
    for meter_id, _feeder, klass in meters:
        base = {"residential": 0.3, "commercial": 1.2, "industrial": 4.0}[klass]
        for step in range(DAYS * 96):
            ts = START + timedelta(minutes=15 * step)
            readings.append(
                (meter_id, ts.strftime("%Y-%m-%d %H:%M:%S"), round(base * rng.uniform(0.5, 1.5), 4))
            )
    return {"feeders": FEEDERS, "meters": meters, "readings": readings}


TRANSFORMS = [
    {"name": "meter_daily", "persist": False, "sql":
        "SELECT meter_id, CAST(CAST(ts AS TIMESTAMP) AS DATE) AS day,\n"
        "       sum(kwh) AS kwh, max(kwh) * 4 AS peak_kw\n"
        "FROM readings GROUP BY ALL"},
    {"name": "meter_info", "persist": False, "sql":
        "SELECT m.id AS meter_id, m.customer_class, f.id AS feeder_id, f.rated_kva\n"
        "FROM meters m JOIN feeders f ON f.id = m.feeder_id"},
    {"name": "feeder_daily", "persist": True, "sql":
        "SELECT i.feeder_id, d.day, sum(d.kwh) AS kwh, count(*) AS meters\n"
        "FROM meter_daily d JOIN meter_info i USING (meter_id) GROUP BY ALL"},
    {"name": "feeder_peak", "persist": False, "sql":
        "SELECT i.feeder_id, r.ts, sum(r.kwh) * 4 AS kw\n"
        "FROM readings r JOIN meter_info i USING (meter_id) GROUP BY ALL"},
    {"name": "feeder_loading", "persist": True, "sql":
        "WITH peaks AS (SELECT feeder_id, max(kw) AS peak_kw FROM feeder_peak GROUP BY 1)\n"
        "SELECT p.feeder_id, p.peak_kw, p.peak_kw / f.rated_kva AS loading\n"
        "FROM peaks p JOIN feeders f ON f.id = p.feeder_id"},
    {"name": "billing", "persist": True, "sql":
        "SELECT d.meter_id, sum(d.kwh * t.price_per_kwh) AS amount\n"
        "FROM meter_daily d JOIN meter_info i USING (meter_id)\n"
        "JOIN tariffs t ON t.customer_class = i.customer_class GROUP BY 1;"},
]  # fmt: skip
CHECKS = [
    {"type": "not_null", "table": "billing", "column": "amount"},
    {"type": "unique", "table": "feeder_loading", "column": "feeder_id"},
    {"type": "accepted_values", "table": "meter_info", "column": "customer_class",
     "values": list(CLASSES)},
    {"type": "row_count", "table": "feeder_daily", "min": 6, "max": 6},
]  # fmt: skip


def expected(data: dict[str, Any]) -> dict[str, Any]:
    """The persisted tables' contents, computed without SQL."""
    feeder_of = {m: f for m, f, _ in data["meters"]}
    class_of = {m: c for m, _, c in data["meters"]}
    rated = {f: kva for f, _, _, kva in data["feeders"]}
    daily: dict[tuple[int, str], float] = defaultdict(float)
    meters_of: dict[tuple[int, str], set[int]] = defaultdict(set)
    at: dict[tuple[int, str], float] = defaultdict(float)
    bill: dict[int, float] = defaultdict(float)
    for meter, ts, kwh in data["readings"]:
        day = ts[:10]
        daily[(feeder_of[meter], day)] += kwh
        meters_of[(feeder_of[meter], day)].add(meter)
        at[(feeder_of[meter], ts)] += kwh
        bill[meter] += kwh * PRICES[class_of[meter]]
    peak: dict[int, float] = defaultdict(float)
    for (feeder, _ts), kwh in at.items():
        peak[feeder] = max(peak[feeder], kwh * 4)
    return {
        "feeder_daily": {k: (v, len(meters_of[k])) for k, v in daily.items()},
        "feeder_loading": {f: (p, p / rated[f]) for f, p in peak.items()},
        "billing": dict(bill),
    }


# --- sources on real servers ------------------------------------------------------------


class PgSource:
    """A PostgreSQL database of its own, with the meters table (dropped at the end)."""

    def __init__(self, data: dict[str, Any]):
        self.name = f"flows_src_{uuid.uuid4().hex[:10]}"
        admin = psycopg2.connect(PG_ADMIN)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.name}"')
        admin.close()
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE meters (id integer PRIMARY KEY, feeder_id integer, "
                "customer_class text, installed date)"
            )
            cursor.executemany(
                "INSERT INTO meters VALUES (%s, %s, %s, '2020-01-01')", data["meters"]
            )
            cursor.execute("CREATE VIEW slow AS SELECT pg_sleep(60)::text AS x")
            connection.commit()

    def connect(self) -> Any:
        return psycopg2.connect(host="127.0.0.1", user="postgres", dbname=self.name)

    def store(self) -> dict[str, Any]:
        return {"engine": "postgresql", "host": "127.0.0.1", "port": 5432, "user": "postgres",
                "password": None, "database": self.name, "path": None}  # fmt: skip

    def running_queries(self, like: str) -> list[str]:
        with contextlib.closing(psycopg2.connect(PG_ADMIN)) as connection:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                    "AND query LIKE %s AND pid <> pg_backend_pid()",
                    (self.name, f"%{like}%"),
                )
                return [row[0] for row in cursor.fetchall()]

    def drop(self) -> None:
        admin = psycopg2.connect(PG_ADMIN)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        admin.close()


class MariaSource:
    """A MariaDB database of its own, with the feeders table (dropped at the end)."""

    def __init__(self, data: dict[str, Any]):
        self.name = f"flows_src_{uuid.uuid4().hex[:10]}"
        with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root")) as connection:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{self.name}`")
                cursor.execute(f"USE `{self.name}`")
                cursor.execute(
                    "CREATE TABLE feeders (id INT PRIMARY KEY, name VARCHAR(20), "
                    "substation VARCHAR(20), rated_kva DOUBLE)"
                )
                cursor.executemany("INSERT INTO feeders VALUES (%s, %s, %s, %s)", data["feeders"])
                cursor.execute("CREATE VIEW slow AS SELECT SLEEP(60) AS x")
            connection.commit()

    def store(self) -> dict[str, Any]:
        return {"engine": "mysql", "host": "127.0.0.1", "port": 3306, "user": "root",
                "password": None, "database": self.name, "path": None}  # fmt: skip

    def running_queries(self, like: str) -> list[str]:
        with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root")) as connection:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT info FROM information_schema.processlist WHERE db = %s "
                    "AND command = 'Query' AND info LIKE %s AND id <> CONNECTION_ID()",
                    (self.name, f"%{like}%"),
                )
                return [row[0] for row in cursor.fetchall()]

    def drop(self) -> None:
        with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root")) as connection:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{self.name}`")


def write_sqlite(data: dict[str, Any], path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE readings (meter_id INTEGER, ts TIMESTAMP, kwh REAL)")
        connection.executemany("INSERT INTO readings VALUES (?, ?, ?)", data["readings"])
        connection.commit()


def write_tariffs(folder: Path) -> None:
    """Tariffs split over two CSV files (a pattern picks both)."""
    folder.mkdir(parents=True, exist_ok=True)
    items = list(PRICES.items())
    for index, chunk in enumerate((items[:2], items[2:])):
        with open(folder / f"tariffs_{index}.csv", "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["customer_class", "price_per_kwh"])
            writer.writerows(chunk)
