"""The worker side stays apart from the API side: no Flask, no database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_worker_imports_neither_flask_nor_sqlalchemy():
    probe = (
        "import sys, app.worker.tasks, app.worker.gridlabd_driver, app.worker.job_tasks, "
        "app.worker.job_driver, gridlabd_job_examples.voltage_report; "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'flask_smorest') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
