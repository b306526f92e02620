"""The README's configuration table and test command stay true to the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from app.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
# The walk-through's blocks and the flow walk-through's, in the order a reader pastes them.
WALK_THROUGH = re.compile(r"<!-- (?:flows-)?walk-through -->\n```bash\n(.*?)\n```", re.S)


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


def test_walk_through_sets_every_variable_before_using_it():
    """A block pasted into a new shell after the ones above it finds what it uses (the
    walk-through itself runs in tests/e2e/test_readme_walkthrough.py)."""
    blocks = WALK_THROUGH.findall(README)
    assert len(blocks) == 4
    known = {"API_TOKEN"}  # exported from the output of invoke create-application-key
    for number, line in enumerate("\n".join(blocks).splitlines(), start=1):
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        used = set(re.findall(r"\$\{?([A-Za-z_]\w*)(?![\w:-])", code)) - known
        assert not used, f"walk-through line {number} uses {sorted(used)} before setting it"
        known |= set(re.findall(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=", code))
        known |= set(re.findall(r"\bfor\s+([A-Za-z_]\w*)\s+in\b", code))


def test_walk_through_uploads_files_that_are_in_the_clone():
    """The models the walk-through uploads, and the data the flow walk-through loads, from
    the clone itself (examples/) exist."""
    blocks = "\n".join(WALK_THROUGH.findall(README))
    paths = re.findall(r"@(examples/\S+)", blocks) + re.findall(r"'(examples/[^'*]+)'", blocks)
    folders = re.findall(r"(examples/\S+)/\*\.csv", blocks)  # copied as a whole
    root = Path(__file__).resolve().parent.parent
    assert len(paths) >= 4 and folders
    assert [p for p in paths if not (root / p).is_file()] == []
    assert [f for f in folders if not list((root / f).glob("*.csv"))] == []
