"""The README's configuration table and test command stay true to the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from app.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented_once():
    documented = re.findall(r"^\| `([A-Z0-9_]+)` \|", README, re.M)
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert fields <= set(documented)
    assert len(documented) == len(set(documented))


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
    block = re.search(r"<!-- test-command -->\n```bash\n(.+)\n```\n<!-- /test-command -->", README)
    assert block and "pytest" in block.group(1)
