"""The conda environment of the rules (``--sdm conda``) pins exactly what pyproject.toml pins."""

from __future__ import annotations

import sys
import tomllib

import yaml

from tests.conftest import REPOSITORY


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    return dict(requirement.split("==") for requirement in project["dependencies"])


def conda_pins() -> tuple[str, dict[str, str]]:
    environment = yaml.safe_load((REPOSITORY / "envs" / "compactcortex.yaml").read_text())
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    return python.split("=")[1], dict(requirement.split("==") for requirement in pip)


def test_every_dependency_is_pinned_exactly() -> None:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    loose = [r for r in project["dependencies"] if r.count("==") != 1]
    assert not loose, f"pyproject.toml dependencies without an exact pin: {loose}"


def test_conda_environment_pins_the_same_versions() -> None:
    python, pins = conda_pins()
    assert pins == pyproject_pins()
    requires = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python in requires, (python, requires)


def test_this_interpreter_matches_the_conda_python() -> None:
    python, _ = conda_pins()
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == python
