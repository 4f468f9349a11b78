"""The code version recorded on every output: read once per run, and never a write into the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from compactcortex import provenance


@pytest.fixture
def stale_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout of two files whose index holds stale file times (as after a copy or a checkout)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "checkout"
    (root / "workflow" / "compactcortex").mkdir(parents=True)
    (root / "README.md").write_text("readme\n")
    (root / "workflow" / "compactcortex" / "code.py").write_text("x = 1\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(root), *command], check=True, env=env, capture_output=True)
    for path in (root / "README.md", root / "workflow" / "compactcortex" / "code.py"):
        os.utime(path, (path.stat().st_atime + 100, path.stat().st_mtime + 100))  # same bytes, newer times
    monkeypatch.setattr(provenance, "REPOSITORY_ROOT", root)
    monkeypatch.delenv(provenance.CODE_VERSION_VARIABLE, raising=False)
    provenance.code_version.cache_clear()
    yield root
    provenance.code_version.cache_clear()


def test_reading_the_code_version_does_not_write_the_index(stale_checkout: Path) -> None:
    index = stale_checkout / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    version = provenance.code_version()
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert "+g" in version and not version.endswith("-dirty")  # stale times alone are not a change


def test_a_changed_tracked_file_marks_the_version_dirty(stale_checkout: Path) -> None:
    (stale_checkout / "README.md").write_text("changed\n")
    assert provenance.code_version().endswith("-dirty")


def test_the_run_hands_its_code_version_to_its_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    provenance.code_version.cache_clear()
    monkeypatch.setenv(provenance.CODE_VERSION_VARIABLE, "9.9.9+gabc")
    try:
        assert provenance.code_version() == "9.9.9+gabc"
        assert provenance.provenance_attrs({})["code_version"] == "9.9.9+gabc"
    finally:
        provenance.code_version.cache_clear()
