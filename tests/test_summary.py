"""The run summary's per-session blocks, and the README table generated from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compactcortex import summary as summary_module
from compactcortex.errors import InputDataError
from compactcortex.io.readme_blocks import END_MARKER, replace_block, start_marker
from compactcortex.summary_table import session_table
from tests.conftest import REPOSITORY

MODELS = ("ensemble", "task_driven", "compact", "published_compact")


def _evaluation(path: Path, session: str, r: dict[str, list[float]]) -> Path:
    """An evaluation table of repeat-averaged data (no r2_ER), as evaluate_session writes it."""
    n = len(r["ensemble"])
    table = {"neuron": [f"{session}_n{i:03d}" for i in range(n)], "reliability": np.nan}
    for model in [model for model in MODELS if model in r]:  # a model that predicts nothing has no columns
        table[f"r2_er_{model}"] = np.nan
        table[f"r_{model}"] = r[model]
        table[f"r_to_truth_{model}"] = np.nan
    pd.DataFrame(table).to_csv(path / f"{session}.csv", index=False)
    return path / f"{session}.csv"


def _real_data_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Two test sessions: both have published compact models, only the first is compressed."""
    monkeypatch.setattr(summary_module, "read_member", lambda path: {"validation_score": 0.5})
    monkeypatch.setattr(summary_module, "ensemble_parameters", lambda members: 1000)
    first = _evaluation(
        tmp_path,
        "190923",
        {
            "ensemble": [0.6, 0.7, 0.5],
            "task_driven": [0.5, 0.5, 0.4],
            "compact": [0.3, 0.6, 0.45],
            "published_compact": [0.65, 0.6, 0.7],
        },
    )
    second = _evaluation(
        tmp_path,
        "201025",
        {"ensemble": [0.4, 0.6], "task_driven": [0.5, 0.3], "published_compact": [0.7, 0.68]},
    )
    return summary_module.model_summaries(["member0.pt"], [first, second], simulated=False)


def test_each_model_has_per_session_medians_where_it_predicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _real_data_summary(tmp_path, monkeypatch)
    assert blocks["ensemble"]["sessions"]["190923"]["median_r"] == pytest.approx(0.6)
    assert blocks["task_driven"]["sessions"]["201025"]["median_r"] == pytest.approx(0.4)
    assert list(blocks["compact"]["sessions"]) == ["190923"], "a session not compressed has no compact block"
    assert blocks["compact"]["sessions"]["190923"]["median_r"] == pytest.approx(0.45)
    assert blocks["published_compact"]["sessions"]["201025"]["median_r"] == pytest.approx(0.69)
    assert blocks["compact"]["median_r"] == pytest.approx(0.45), "pooled over the neurons it predicts"
    # repeat-averaged data: the gain is the ratio of median r squared
    assert blocks["ensemble"]["sessions"]["190923"]["over_task_driven"] == pytest.approx((0.6 / 0.5) ** 2)
    assert blocks["ensemble"]["sessions"]["201025"]["over_task_driven"] == pytest.approx((0.5 / 0.4) ** 2)
    assert blocks["ensemble"]["sessions"]["190923"]["median_r2_er"] is None


def test_accuracy_gain_prefers_r2_er() -> None:
    assert summary_module.accuracy_gain({"median_r2_er": 0.6}, {"median_r2_er": 0.5}) == pytest.approx(1.2)
    repeat_averaged = {"median_r2_er": None, "median_r": 0.5}
    gain = summary_module.accuracy_gain({**repeat_averaged, "median_r": 0.6}, repeat_averaged)
    assert gain == pytest.approx(1.44)
    assert summary_module.accuracy_gain({"median_r": 0.6}, {}) is None


def test_the_session_table_is_generated_from_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _real_data_summary(tmp_path, monkeypatch)
    summary["compact"]["sessions"]["190923"].update(
        {"median_fidelity_r2": 0.9123, "median_params": 12345, "accuracy_vs_ensemble": 0.75}
    )
    summary["data"] = {
        "sessions": {
            "190923": {"monkey": "WE", "n_reliable_neurons": 3},
            "201025": {"monkey": "PE", "n_reliable_neurons": 2},
        }
    }
    rows = session_table(summary).splitlines()
    assert rows[0].startswith("| session | monkey | neurons | ensemble r | task-driven r |") and len(rows) == 4
    assert rows[2] == "| 190923 | WE | 3 | 0.600 | 0.500 | 1.44 | 0.450 | 0.75 | 0.912 | 12,345 | 0.650 |"
    assert rows[3] == "| 201025 | PE | 2 | 0.500 | 0.400 | 1.56 | not compressed |  |  |  | 0.690 |"

    text = f"before\n{start_marker('cowley2023')}\nold table\n{END_MARKER}\nafter\n"
    filled = replace_block(text, "cowley2023", "new\n", "README.md")
    assert filled == f"before\n{start_marker('cowley2023')}\nnew\n{END_MARKER}\nafter\n"
    assert replace_block(filled, "cowley2023", "new\n", "README.md") == filled
    with pytest.raises(InputDataError, match=r"README\.md: no block '<!-- summary-table virtual_v4 -->'"):
        replace_block(text, "virtual_v4", "new\n", "README.md")


def test_the_readme_holds_the_generated_real_data_table() -> None:
    """The README's real-data table sits in its generated block, with the generator's header."""
    readme = (REPOSITORY / "README.md").read_text()
    block = readme.split(start_marker("cowley2023"))[1].split(END_MARKER)[0]
    header = session_table({"ensemble": {"sessions": {}}, "data": {"sessions": {}}})
    assert block.lstrip("\n").startswith(header)
    rows = block.strip("\n").splitlines()[2:]
    assert rows and all(row.count("|") == header.splitlines()[0].count("|") for row in rows), rows
