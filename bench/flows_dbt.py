"""dbt side of bench/flows.py: its own virtualenv, a generated project, a timed ``dbt run``.

dbt is installed for the benchmark only, never in the Pipfile, into ``bench/.venv-dbt``:

    python3 -m venv bench/.venv-dbt && bench/.venv-dbt/bin/pip install "dbt-core~=1.11.16" \
        dbt-duckdb==1.11.1 duckdb==2.0.1

dbt-core 1.12 requires ``dbt-core-experimental-parser``, an sdist whose build downloads a
wheel from GitHub (not reachable here), so 1.11 is pinned; duckdb is pinned to the
service's own version so both sides run the same engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-dbt"
DBT = VENV / "bin" / "dbt"
PACKAGES = ("dbt-core~=1.11.16", "dbt-duckdb==1.11.1", "duckdb==2.0.1")
INSTALL = (
    f"python3 -m venv {VENV.relative_to(VENV.parent.parent)} && "
    f"{(VENV / 'bin' / 'pip').relative_to(VENV.parent.parent)} install "
    + " ".join(f'"{p}"' for p in PACKAGES)
)


def install() -> None:
    """Create the virtualenv and install dbt from PyPI (about 30 s)."""
    subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES], check=True)


def version() -> str:
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c",
         "import importlib.metadata as m; print(' '.join(f'{p} {m.version(p)}' for p in "
         "('dbt-core', 'dbt-duckdb', 'duckdb')))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def write_project(
    folder: Path,
    database: Path,
    source_db: Path,
    sources: list[str],
    transforms: list[dict[str, str]],
    threads: int = 1,
) -> None:
    """A dbt project whose models are the transforms' SQL, materialized as tables, reading
    the source tables from ``source_db`` attached read-only (as the flow's source store)."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text(
        "name: flows_bench\nversion: '1.0'\nconfig-version: 2\nprofile: flows_bench\n"
        "model-paths: [models]\nmodels:\n  flows_bench:\n    +materialized: table\n"
    )
    # threads (dbt's models at once) 1 by default: one at a time, as the flow runs its
    # transforms; DuckDB's own threads and memory are left at their defaults, as in the flow.
    (folder / "profiles.yml").write_text(
        "flows_bench:\n  target: bench\n  outputs:\n    bench:\n      type: duckdb\n"
        f"      path: {json.dumps(str(database))}\n      threads: {threads}\n"
        f"      attach:\n        - path: {json.dumps(str(source_db))}\n"
        "          alias: src\n          read_only: true\n"
    )
    tables = "".join(f"      - name: {name}\n" for name in sources)
    (folder / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: grid\n    database: src\n    schema: main\n"
        f"    tables:\n{tables}"
    )
    names = {t["name"] for t in transforms}
    refs = {n: "{{ source('grid', '" + n + "') }}" for n in sources}
    refs.update({n: "{{ ref('" + n + "') }}" for n in names})
    for transform in transforms:
        sql = transform["sql"].format(**refs)
        (folder / "models" / f"{transform['name']}.sql").write_text(sql + "\n")


def run(folder: Path) -> tuple[float, float]:
    """``dbt run`` once: (wall seconds, the models' own execution seconds added up)."""
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_VERSION_CHECK": "false",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(DBT), "run", "--project-dir", str(folder), "--profiles-dir", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dbt run failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    results = json.loads((folder / "target" / "run_results.json").read_text())["results"]
    return seconds, sum(r["execution_time"] for r in results)
