"""The package's shape (README, "A map of the code"): stage packages never import each other, lower layers never
import upward, every file format is read and written in ``io/``, and one name runs from rule to script to job."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "workflow" / "compactcortex"
STAGES = ("lab", "ensemble", "compact", "synthesis", "analysis", "figures")
UPPER = (*STAGES, "jobs", "api", "cli")  # what io/, models/ and the top-level modules never import


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every compactcortex module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("compactcortex"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("compactcortex"))
    return found


def _part(module: str) -> str:
    """The package part a module belongs to: 'compactcortex.compact.distill' -> 'compact'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_walk_sees_the_package() -> None:
    assert {"compactcortex.jobs.compact", "compactcortex.io.predictions", "compactcortex.compact.distill"} <= set(
        MODULES
    )
    assert "compactcortex.models.compact" in MODULES["compactcortex.compact.distill"]


def test_no_stage_package_imports_another() -> None:
    crossings = sorted(
        f"{module} imports {imported}"
        for module, imports in MODULES.items()
        if _part(module) in STAGES
        for imported in imports
        if _part(imported) in STAGES and _part(imported) != _part(module)
    )
    assert not crossings, "stage packages reach into each other:\n" + "\n".join(crossings)


def test_no_arrow_back_up() -> None:
    """rules -> scripts -> jobs -> stages -> io, models, stimuli, metrics and the other primitives."""
    upward = sorted(
        f"{module} imports {imported}"
        for module, imports in MODULES.items()
        for imported in imports
        if (_part(module) not in UPPER and _part(imported) in UPPER)
        or (_part(module) in STAGES and _part(imported) in ("jobs", "api", "cli"))
        or (_part(module) == "api" and _part(imported) in ("jobs", "cli"))
    )
    assert not upward, "lower layers import upper ones:\n" + "\n".join(upward)


# Reading or writing a file format: only io/ does it, and these, each for a stated reason.
FILE_ACCESS = re.compile(
    r"\b(to_netcdf|open_dataset|to_csv|read_csv|torch\.load|torch\.save|save_torch_atomic|np\.load|np\.savez"
    r"|write_text_atomic|savefig)\("
)
ALLOWED = {
    "compactcortex.atomic": "the atomic writers every format uses",
    "compactcortex.backbones.efficientnet_lite0": "the backbone's shipped ImageNet weights",
    "compactcortex.backbones.resnet50": "the backbone's ImageNet weights",
    "compactcortex.lab.neurons": "the simulator's own population file, saved and loaded by VirtualNeurons",
    "compactcortex.figures.style": "figures as PNG and PDF",
}


def test_file_formats_are_read_and_written_in_io() -> None:
    outside = sorted(
        f"{_module_name(path)}: {match.group(1)}"
        for path in PACKAGE.rglob("*.py")
        if _part(_module_name(path)) != "io" and _module_name(path) not in ALLOWED
        for match in FILE_ACCESS.finditer(path.read_text())
    )
    assert not outside, "file formats read or written outside io/:\n" + "\n".join(outside)


def _rules() -> list[tuple[str, str, str]]:
    """(rule, rule file stem, script path) for every rule with a script."""
    found = []
    for rule_file in sorted((REPOSITORY / "workflow" / "rules").glob("*.smk")):
        blocks = re.split(r"^\s*(?:rule|checkpoint) ", rule_file.read_text(), flags=re.M)[1:]
        for block in blocks:
            name = block.split(":", 1)[0]
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            if script:
                found.append((name, rule_file.stem, script.group(1)))
    return found


RULES = _rules()


def test_every_rule_with_a_script_is_found() -> None:
    assert len(RULES) >= 29
    assert ("compress_neurons", "compact", "../scripts/compress_neurons.py") in RULES


@pytest.mark.parametrize(("rule", "stage", "script"), RULES, ids=[rule for rule, _, _ in RULES])
def test_rule_script_and_job_share_one_name(rule: str, stage: str, script: str) -> None:
    """Rule ``r`` of ``rules/<stage>.smk`` runs ``scripts/r.py``, which calls ``compactcortex.jobs.<stage>.r`` with
    arguments its signature takes."""
    assert Path(script).stem == rule
    source = (REPOSITORY / "workflow" / "rules" / script).resolve()
    tree = ast.parse(source.read_text())
    imports = {
        alias.name: node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert imports.get(rule) == f"compactcortex.jobs.{stage}", f"{source.name} must import {rule} from jobs.{stage}"
    job = getattr(import_module(f"compactcortex.jobs.{stage}"), rule)
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == rule
    ]
    assert len(calls) == 1, f"{source.name} must call {rule} once"
    signature = inspect.signature(job)
    arguments = [object()] * len(calls[0].args)
    keywords = {keyword.arg: object() for keyword in calls[0].keywords}
    signature.bind(*arguments, **keywords)  # raises TypeError where the script and the job disagree


def test_every_job_module_function_is_a_rule_or_private() -> None:
    """A job module holds its rules' jobs; anything else public there is a helper in the wrong place."""
    rules = {rule for rule, _, _ in RULES}
    helpers = sorted(
        f"{module}.{name}"
        for module in MODULES
        if module.startswith("compactcortex.jobs.")
        for name, value in vars(import_module(module)).items()
        if inspect.isfunction(value) and value.__module__ == module and not name.startswith("_") and name not in rules
    )
    assert not helpers, "public functions in job modules that are no rule's job:\n" + "\n".join(helpers)


def test_the_method_document_names_real_files_and_rules() -> None:
    """docs/method.md, the method this project implements: every path it names exists and every rule it names is
    a rule (its section 7 maps the method onto the code)."""
    text = (REPOSITORY / "docs" / "method.md").read_text()
    paths = set(re.findall(r"`(workflow/[^`]+)`", text))
    assert len(paths) > 20
    missing = sorted(path for path in paths if "<" not in path and not (REPOSITORY / path).exists())
    assert not missing, f"docs/method.md names files that do not exist: {missing}"
    rows = [line for line in text[text.index("## 7. Where each step lives") :].splitlines() if ".smk: " in line]
    named = {name.strip() for row in rows for name in row.rstrip(" |").split(".smk: ")[1].split(",")}
    rules = {rule for rule, _, _ in RULES}
    assert len(named) >= 25
    assert named <= rules, f"docs/method.md names rules that do not exist: {sorted(named - rules)}"


def test_parsing_the_workflow_and_preprocessing_never_import_torch() -> None:
    """Snakemake parses the Snakefile once per run and again in every cluster job, and a session is preprocessed
    once per recording: neither pays for importing torch (about 1.5 s a process)."""
    sources = [REPOSITORY / "Snakefile", *(REPOSITORY / "workflow" / "rules").glob("*.smk")]
    imported = sorted(
        {
            module
            for source in sources
            for module in re.findall(r"^from (compactcortex[\w.]*) import", source.read_text(), re.M)
        }
    )
    assert "compactcortex.config" in imported
    modules = [*imported, "compactcortex.jobs.preprocess"]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPOSITORY / "workflow", timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"importing {modules} imports torch"
