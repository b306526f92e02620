"""The README's worked example of a job kind works as written, in a package of its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from app.worker import console

PROJECT = Path(__file__).resolve().parents[2]
README = (PROJECT / "README.md").read_text()


def readme_kind() -> str:
    section = README.split("### Writing a kind", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def drive(tmp_path: Path, parameters: dict) -> tuple[dict, Path]:
    package = tmp_path / "src" / "feeder_tools"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "peaks.py").write_text(readme_kind())
    root = tmp_path / "job"
    (root / ".tmp").mkdir(parents=True, exist_ok=True)
    (root / "data.csv").write_text("# a recorder\nt,load\n1,3.5\n2,7.25\n3,1\n")
    spec = root / ".tmp" / "spec.json"
    spec.write_text(json.dumps({"parameters": parameters, "inputs": ["data.csv"]}))
    done = subprocess.run(
        [sys.executable, "-m", "app.worker.job_driver", "--root", str(root),
         "--kind", "feeder_tools.peaks:Peak", "--spec", str(spec)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "src")},
    )  # fmt: skip
    events = {m["event"]: m for m in map(console.parse_marker, done.stdout.splitlines()) if m}
    return events, root


def test_the_readme_kind_runs(tmp_path):
    events, root = drive(tmp_path, {"column": "load"})
    assert events["finished"]["outputs"] == ["peak.txt"], events
    assert (root / "peak.txt").read_text() == "7.25\n"


def test_the_readme_kind_fails_with_its_message(tmp_path):
    events, _ = drive(tmp_path, {"column": "voltage"})
    assert events["job_error"]["message"] == "No column 'voltage'; the file has t, load"
