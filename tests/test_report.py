"""The HTML report the way a person opens it: ``snakemake --report`` on the tiny run lists every item (the figures,
the tables, a page per compact model), each with its caption and its bytes embedded, and headless Chromium renders its
first page (a screenshot is saved beside the report). Without Chromium the browser test skips, saying why. Then the
report's parts on made-up data: a table page, a compact model's page, the noise-ceiling figure."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from compactcortex.figures.compact_model import CompactModelPage, Tile, compact_model_figure, mosaic
from compactcortex.figures.predictions import noise_ceiling_figure
from compactcortex.io.html_tables import HtmlTable, html_page
from tests.conftest import TINY_CONFIG, once, run_snakemake

RESULTS = "results/tiny"
SCREENSHOT = "report_screenshot.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # Debian's package is `chromium` (.ci/run installs it)


@pytest.fixture(scope="session")
def report(tiny_local_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run's report, where `make run` puts it (made once, whichever worker asks first)."""
    path = tiny_local_run / RESULTS / "report.html"
    command = ("--configfile", str(TINY_CONFIG), "--report", str(path))
    once(tmp_path_factory, "tiny_report", lambda: run_snakemake(tiny_local_run, *command))
    return path


def embedded(report: Path, name: str) -> dict:
    """A JSON object the report's page script holds (``var <name> = {...};``): its results and their categories."""
    found = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', report.read_text(), re.DOTALL)
    assert found, f"the report holds no `{name}`"
    return json.loads(found.group(1))


def expected_items(data: Path) -> dict[str, set[str]]:
    """category -> the report items of the tiny run (paths relative to results/tiny)."""
    neurons = pd.read_csv(data / "compact" / "t05" / "models.csv")["neuron"]
    paper = ("fig1_accuracy", "fig2_synthesis", "fig3_compressibility", "fig4_dots")
    checks = ("predictions", "noise_ceiling", "training_curves")
    return {
        "Figures": {f"figures/{name}.png" for name in paper},
        "Accuracy and training": {f"figures/{name}.png" for name in checks},
        "Tables": {f"tables/{name}.html" for name in ("summary", "sessions", "compact_models")},
        "Compact models": {f"figures/compact_models/t05/{neuron}.png" for neuron in neurons},
    }


@pytest.mark.slow
def test_the_report_lists_every_item_with_its_caption(report: Path) -> None:
    data = report.parent
    results, categories = embedded(report, "results"), embedded(report, "categories")
    listed = {
        category: {str(Path(path).relative_to(RESULTS)) for paths in sub.values() for path in paths}
        for category, sub in categories.items()
    }
    expected = expected_items(data)
    assert listed == expected
    assert len(expected["Compact models"]) == 7 and set(categories["Compact models"]) == {"session t05"}
    assert set(results) == {f"{RESULTS}/{item}" for items in expected.values() for item in items}
    for path, entry in results.items():
        assert entry["caption"].strip(), f"{path} has no caption"
        payload = entry["data_uri"].split("base64,", 1)[1]
        assert base64.b64decode(payload) == (report.parents[2] / path).read_bytes(), f"{path} is not embedded whole"
        assert entry["mime_type"] == ("text/html" if path.endswith(".html") else "image/png"), path
    page = results[f"{RESULTS}/figures/compact_models/t05/t05_n000.png"]
    assert page["labels"] == {"neuron": "t05_n000"} and "neuron t05_n000" in page["caption"]
    # the tables hold the run's numbers: the compact models' table one row per model card
    models = (data / "tables" / "compact_models.html").read_text()
    assert models.count("<tr>") == 1 + len(expected["Compact models"]) and "t05_n007" in models
    assert "ensemble: parameters" in (data / "tables" / "summary.html").read_text()
    assert "<td>t05</td>" in (data / "tables" / "sessions.html").read_text()
    # the first page describes the report and names its categories
    text = report.read_text()
    assert "turns recordings of visual-cortex neurons" in text and "Compact models" in text


def browser() -> str | None:
    return next(filter(None, map(shutil.which, BROWSERS)), None)


def open_in_browser(report: Path, profile: Path, screenshot: Path) -> subprocess.CompletedProcess:
    """Headless Chromium on the report (as root it needs --no-sandbox): a virtual-time budget lets the report's scripts
    render the page before its screenshot is saved and its DOM printed."""
    command = [browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1400,1000",
               "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000", f"--screenshot={screenshot}",
               "--dump-dom", report.as_uri()]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def settled_screenshot(report: Path, profile: Path, screenshot: Path, attempts: int = 3) -> tuple[str, np.ndarray]:
    """(the rendered DOM, the screenshot's pixels) once two screenshots in a row agree: the report's styles are made by
    a script after the page is drawn and fade in, so on a busy machine a screenshot can catch them half-way."""
    previous = None
    for _ in range(attempts):
        screenshot.unlink(missing_ok=True)
        result = open_in_browser(report, profile, screenshot)
        assert screenshot.is_file(), f"no screenshot:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=float)
        if previous is not None and np.array_equal(pixels, previous):
            break
        previous = pixels
    return result.stdout, pixels


@pytest.mark.slow
def test_the_report_opens_in_a_browser(report: Path, tmp_path: Path) -> None:
    if browser() is None:
        pytest.skip(
            f"no headless browser ({', '.join(BROWSERS)} not on PATH): .ci/run installs Debian's chromium when it "
            "runs as root; the report was checked without opening it"
        )
    dom, pixels = settled_screenshot(report, tmp_path / "profile", report.parent / SCREENSHOT)
    assert pixels.shape == (1000, 1400, 3)
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "the screenshot is blank"
    # what the page's scripts drew (not in the file itself): the menu lists every category of results
    for category in expected_items(report.parent):
        assert f"<span>{category}</span>" not in report.read_text()
        assert f"<span>{category}</span>" in dom, f"the rendered page does not list {category}"


def test_a_table_page_escapes_its_cells_and_aligns_numbers() -> None:
    page = html_page("run <1>", [HtmlTable("models", ("model", "median r"), [("a <b>", "0.512"), ("c", "1,234")])])
    assert "<title>run &lt;1&gt;</title>" in page and "<td>a &lt;b&gt;</td>" in page
    assert '<td class="number">0.512</td>' in page and '<td class="number">1,234</td>' in page
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        html_page("run", [HtmlTable("models", ("model", "median r"), [("a",)])])


def test_a_compact_model_page_shows_its_images_and_filters() -> None:
    """A page is five axes at fixed places, each part's images tiled into one picture with their labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    stimuli = pd.DataFrame(
        {
            "image": [f"i{k}" for k in range(9)],
            "stimulus": ["maximizing"] * 2 + ["natural_top"] * 2 + ["minimizing"] * 2
            + ["adversarial_up", "adversarial_down", "control"],
            "source": [""] * 6 + ["i8", "i8", ""],
            "index": range(9),
            "response": np.linspace(2, -2, 9),
        }
    )  # fmt: skip
    page = CompactModelPage("t05", "t05_n000", [5, 4, 4, 3, 2], [6] * 5, rng.normal(size=(5, 3, 5, 5)), images,
                            stimuli, {"n_parameters": 1191, "fidelity_r2": 0.5, "r2_er": None})  # fmt: skip
    figure = compact_model_figure(page)
    assert len(figure.axes) == 5
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert any("t05_n000" in text and "1,191" in text and "n/a" in text for text in texts)
    assert {"up -1.00", "down -1.50", "-2.00"} <= set(texts)  # the adversarial pair's labels: made, and its source


def test_a_mosaic_tiles_images_and_places_their_labels() -> None:
    tile = Tile(np.zeros((20, 20, 3), dtype=np.uint8), "0.50")
    picture, places = mosaic([[tile, None, tile], [tile]])
    assert picture.shape == (2 * (20 + 9 + 3), 3 * (20 + 3), 3)  # a label band of 45% of a tile, gaps of 15%
    assert picture[0, 0].tolist() == [0, 0, 0] and picture[0, 23].tolist() == [1, 1, 1]  # the empty place is white
    assert [(x, text) for x, _, text, _ in places] == [(10, "0.50"), (56, "0.50"), (10, "0.50")]


def test_the_noise_ceiling_figure_mixes_single_trial_and_repeat_averaged_sessions(tmp_path: Path) -> None:
    """r2_ER where a session has single trials, r^2 over the ceiling where it has repeat means only."""
    columns = {"reliability": [0.8, 0.6], "r_ensemble": [0.6, 0.3], "r_compact": [0.5, 0.2]}
    single = pd.DataFrame({"neuron": ["a", "b"], **columns, "r2_er_ensemble": [0.5, 0.2], "r2_er_compact": [0.3, 0.1]})
    averaged = single.assign(neuron=["c", "d"], r2_er_ensemble=np.nan, r2_er_compact=np.nan)
    paths = {"s1": tmp_path / "s1.csv", "s2": tmp_path / "s2.csv"}
    single.to_csv(paths["s1"], index=False)
    averaged.to_csv(paths["s2"], index=False)
    figure = noise_ceiling_figure(paths)
    corrected = figure.axes[1].collections[0].get_offsets()[:, 1]  # the ensemble's
    np.testing.assert_allclose(corrected, [0.5, 0.2, 0.36 / 0.8, 0.09 / 0.6])
    assert "without single trials" in figure.axes[1].get_ylabel()
