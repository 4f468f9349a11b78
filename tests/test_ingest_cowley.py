"""The published format of Cowley et al. 2023 -> session datasets; its bad files get clear errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from compactcortex.errors import InputDataError
from compactcortex.io.cowley2023 import read_image_zip
from compactcortex.io.session_dataset import open_session_dataset
from compactcortex.jobs.preprocess import ingest_cowley_session
from tests.conftest import PREPROCESS_PARAMS, REPOSITORY


def _jpeg(rng: np.random.Generator, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _fake_published_session(root: Path, session: str, n_images: int = 6, names: list[str] | None = None) -> None:
    """A session in the published layout: zip listing out of order, in a subfolder."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "responses_repeat_averaged").mkdir()
    names = names or [f"images_{session}/image{index:04d}.jpg" for index in range(n_images, 0, -1)]
    with zipfile.ZipFile(root / "images" / f"images_{session}.zip", "w") as archive:
        for name in names:
            archive.writestr(name, _jpeg(rng))
    np.save(root / "responses_repeat_averaged" / f"responses_{session}.npy", rng.gamma(2.0, 2.0, (4, n_images)))


def test_published_layout_converts_in_index_order(tmp_path: Path) -> None:
    _fake_published_session(tmp_path, "999")
    output = tmp_path / "out" / "999.nc"
    ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX")
    averaged = np.load(tmp_path / "responses_repeat_averaged" / "responses_999.npy")
    with open_session_dataset(output) as dataset:
        assert list(dataset["image"].values) == [f"image{index:04d}" for index in range(1, 7)]
        np.testing.assert_array_equal(dataset["responses"].values[..., 0], averaged)
        assert dataset.attrs["response_kind"] == "repeat_averaged"
        assert np.isnan(dataset["spearman_brown_reliability"]).all()
        assert dataset.attrs["monkey"] == "XX"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["image0001.jpg", "image0003.jpg"], "missing images: image0002.jpg"),
        (["image0001.jpg", "sub/image0001.jpg", "image0002.jpg"], "duplicate image ids: image0001"),
        (["readme.txt"], "holds no imageNNNN.jpg files"),
    ],
)
def test_bad_image_zips(tmp_path: Path, names: list[str], message: str) -> None:
    _fake_published_session(tmp_path, "999", names=names)
    with pytest.raises(InputDataError, match=message):
        read_image_zip(tmp_path / "images" / "images_999.zip")


def test_corrupt_and_mismatched_files(tmp_path: Path) -> None:
    _fake_published_session(tmp_path, "999")
    zip_path = tmp_path / "images" / "images_999.zip"
    npy_path = tmp_path / "responses_repeat_averaged" / "responses_999.npy"
    output = tmp_path / "out" / "999.nc"
    good_zip, good_npy = zip_path.read_bytes(), npy_path.read_bytes()

    zip_path.write_bytes(good_zip[: len(good_zip) // 2])
    with pytest.raises(InputDataError, match=r"images_999\.zip: cannot be read as a zip"):
        ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX")
    zip_path.write_bytes(good_zip)

    npy_path.write_bytes(good_npy[: len(good_npy) - 40])
    with pytest.raises(InputDataError, match=r"responses_999\.npy: cannot be read as a \.npy array"):
        ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX")

    np.save(npy_path, np.ones((4, 5)) + np.arange(5))
    with pytest.raises(InputDataError, match="holds 6 images but responses_999.npy has responses to 5"):
        ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX")

    bad = np.load(io.BytesIO(good_npy))
    bad[1, 2] = np.nan
    np.save(npy_path, bad)
    with pytest.raises(InputDataError, match="repeat-averaged responses contain NaN"):
        ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX")
    assert not output.exists() and not list(tmp_path.rglob("*.partial*"))


@pytest.mark.shared_data
def test_raw_session_converts_and_matches_the_published_averages(tmp_path: Path, cowley_dir: Path) -> None:
    output = tmp_path / "210325.nc"
    ingest_cowley_session(cowley_dir, "210325", output, params=PREPROCESS_PARAMS, seed=0, monkey="PE")
    averaged = np.load(cowley_dir / "responses_repeat_averaged" / "responses_210325.npy")
    with open_session_dataset(output) as dataset:
        assert dataset.sizes == {"neuron": 50, "image": 640, "repeat": 10, "y": 112, "x": 112, "channel": 3}
        assert dataset.attrs["response_kind"] == "single_trial"
        np.testing.assert_allclose(dataset["responses"].mean("repeat", skipna=True).values, averaged, atol=1e-5)
        assert dataset["n_repeats"].min() >= 6 and dataset["n_repeats"].max() == 10
        reliability = float(dataset["spearman_brown_reliability"].median())
        assert 0.5 < reliability < 0.95, reliability


COWLEY_SESSIONS = [
    session["id"]
    for session in yaml.safe_load((REPOSITORY / "config" / "cowley2023.yaml").read_text())["sessions"]
    if session["id"] != "210325"  # the raw session, tested above
]


@pytest.mark.shared_data
@pytest.mark.parametrize("session", COWLEY_SESSIONS)
def test_averaged_sessions_convert_to_the_published_averages(tmp_path: Path, cowley_dir: Path, session: str) -> None:
    output = tmp_path / f"{session}.nc"
    ingest_cowley_session(cowley_dir, session, output, params=PREPROCESS_PARAMS, seed=0, monkey="WE")
    averaged = np.load(cowley_dir / "responses_repeat_averaged" / f"responses_{session}.npy")
    with open_session_dataset(output) as dataset:
        assert (dataset.sizes["neuron"], dataset.sizes["image"], dataset.sizes["repeat"]) == (*averaged.shape, 1)
        np.testing.assert_array_equal(dataset["responses"].values[..., 0], averaged)
        with zipfile.ZipFile(cowley_dir / "images" / f"images_{session}.zip") as archive:
            last = f"image{averaged.shape[1]:04d}.jpg"
            name = next(name for name in archive.namelist() if name.endswith(last))
            expected = np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGB"))
        np.testing.assert_array_equal(dataset["images"].values[-1], expected)
        assert dataset.attrs["source_format"] == "cowley2023" and "images_" in dataset.attrs["source_sha256"]
