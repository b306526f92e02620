"""Job folders: names cannot escape, outputs are told from inputs."""

from __future__ import annotations

import os

import pytest

from app.worker.jobdir import SCRATCH, InputError, JobDir, scratch_env


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "a\\b", ""])
def test_names_that_escape_are_refused(tmp_path, name):
    with pytest.raises(InputError):
        JobDir(tmp_path).path_for(name)


def test_outputs_are_new_or_changed_files(tmp_path):
    job = JobDir(tmp_path)
    (tmp_path / SCRATCH).mkdir()
    job.write("model.glm", [b"clock {}"])
    job.write("in/data.csv", [b"1"])
    before = job.snapshot()
    (tmp_path / "out.csv").write_text("new")
    (tmp_path / "in" / "data.csv").write_text("changed!")
    os.utime(tmp_path / "in" / "data.csv", ns=(1, 1))
    (tmp_path / SCRATCH / "tmpfile").write_text("scratch")
    assert job.outputs(before) == ["in/data.csv", "out.csv"]


def test_simulation_environment_holds_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKER_API_TOKEN", "secret-token")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "secret-key")
    env = scratch_env(JobDir(tmp_path))
    assert "secret-token" not in env.values() and "secret-key" not in env.values()
    assert env["TMPDIR"] == str(tmp_path / SCRATCH)
