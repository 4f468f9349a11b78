"""The distillation pool as a recipe (docs/method.md section 4): image i is a pure function of (seed, session, i),
the held-out half of the session never reaches the pool, and a user's image folder is a source in a documented
order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compactcortex.errors import InputDataError
from compactcortex.io.image_folders import list_images, read_square_image
from compactcortex.io.session_dataset import build_session_dataset, write_session_dataset
from compactcortex.pool import (
    AUGMENTED,
    FOLDER,
    OTHER_SESSIONS,
    Folder,
    PoolRecipe,
    _round_keys,
    heldout_natural_count,
    pool_recipe,
    shuffled_positions,
)

SIZE = 32


def _flat(colour: tuple[int, int, int], n: int, size: int = SIZE) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (n, size, size, 3)).copy()


def _recipe(**overrides: object) -> PoolRecipe:
    settings = {
        "seed": 3,
        "session": "s9",
        "image_size": SIZE,
        "counts": {"natural": 20, "dots": 10, "shapes": 5},
        "augmented": 15,
        "fit_images": np.random.default_rng(0).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8),
        "other_sessions": 0,
        "other_images": np.empty((0, SIZE, SIZE, 3), dtype=np.uint8),
        "folders": (),
        "heldout": 10,
    }
    return PoolRecipe(**{**settings, **overrides})


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_the_shuffle_is_a_bijection(n: int) -> None:
    keys = _round_keys(0, "s9")
    positions = shuffled_positions(np.arange(n), n, keys)
    assert sorted(positions.tolist()) == list(range(n))
    if n >= 64:
        assert np.mean(positions == np.arange(n)) < 0.1  # it does shuffle
    with pytest.raises(IndexError):
        shuffled_positions(np.array([n]), n, keys)


def test_the_shuffle_is_exact_integer_arithmetic() -> None:
    """Fixed values, computed once: pure integer arithmetic gives them on every machine (a pool index means the
    same image wherever a job runs)."""
    keys = np.array([11, 22, 33, 44, 55, 66], dtype=np.uint64)
    found = shuffled_positions(np.array([0, 1, 2, 11_999_999]), 12_000_000, keys)
    assert found.tolist() == [11374090, 7131336, 9942904, 9640044]


def test_any_index_range_regenerates_the_same_bytes() -> None:
    recipe = _recipe()
    whole = recipe.images(np.arange(len(recipe)))
    assert whole.shape == (len(recipe), SIZE, SIZE, 3) and len(recipe) == 50
    rng = np.random.default_rng(1)
    for _ in range(3):
        picked = rng.permutation(len(recipe))[: rng.integers(1, 20)]
        np.testing.assert_array_equal(recipe.images(picked), whole[picked])
    np.testing.assert_array_equal(_recipe().images(np.arange(len(recipe))), whole)  # a new recipe object
    assert not np.array_equal(_recipe(seed=4).images(np.arange(len(recipe))), whole)
    assert not np.array_equal(_recipe(session="s8").images(np.arange(len(recipe))), whole)


def test_sources_hold_their_counts_and_mix_into_the_held_out_part() -> None:
    recipe = _recipe()
    types = recipe.image_types(np.arange(len(recipe)))
    kinds = dict(zip(*np.unique(types, return_counts=True), strict=True))
    assert kinds == {"natural": 20, "dots": 10, "shapes": 5, AUGMENTED: 15}
    split = recipe.split()
    assert split.tolist() == ["train"] * 40 + ["heldout"] * 10
    assert len(set(types[split == "heldout"])) >= 2  # the held-out part is a mixture, not one source


def test_the_held_out_natural_count_from_the_config_is_the_recipes() -> None:
    """What the config check counts without reading an image is what synthesis finds in the recipe."""
    for heldout in (5, 10, 30):
        recipe = _recipe(heldout=heldout)
        pool = {"images": recipe.counts, "augmented": 15, "other_sessions": 0, "folders": [], "heldout": heldout}
        expected = len(recipe.natural_indices(recipe.heldout_start, len(recipe)))
        assert heldout_natural_count(pool, "s9", 3) == expected
    assert heldout_natural_count({**pool, "heldout": 49}, "s9", 3) == 20, "all but one image held out: every crop"


def test_augmented_copies_come_from_the_fit_half_only(tmp_path: Path) -> None:
    """A session whose fit half is red and whose held-out half is blue: no pool image is blue-ish."""
    images = np.concatenate([_flat((200, 20, 20), 6), _flat((20, 20, 200), 6)])
    dataset = _dataset(tmp_path, "s9", images)
    pool = {"images": {"shapes": 2}, "augmented": 40, "other_sessions": 0, "folders": [], "heldout": 5}
    recipe = pool_recipe(str(dataset), [], pool, "s9", seed=0)
    copies = recipe.images(np.flatnonzero(recipe.image_types(np.arange(len(recipe))) == AUGMENTED))
    assert len(copies) == 40
    mean_colour = copies.reshape(40, -1, 3).mean(axis=1)
    assert np.all(mean_colour[:, 0] > mean_colour[:, 2])  # red, never blue


def test_other_sessions_leave_out_this_sessions_held_out_images(tmp_path: Path) -> None:
    mine = np.concatenate([_flat((10, 10, 10), 4), _flat((250, 0, 0), 4)])  # held-out half: pure red
    theirs = np.concatenate([_flat((250, 0, 0), 3), _flat((0, 250, 0), 5)])  # 3 of them equal my held-out ones
    dataset, other = _dataset(tmp_path, "s9", mine), _dataset(tmp_path, "s1", theirs)
    pool = {"images": {"shapes": 2}, "augmented": 0, "other_sessions": 5, "folders": [], "heldout": 2}
    recipe = pool_recipe(str(dataset), [str(other)], pool, "s9", seed=0)
    used = recipe.images(np.flatnonzero(recipe.image_types(np.arange(len(recipe))) == OTHER_SESSIONS))
    assert len(used) == 5 and np.all(used[..., 1] == 250)  # only the green ones
    too_many = {**pool, "other_sessions": 6}
    with pytest.raises(ValueError, match="other_sessions asks for 6"):
        pool_recipe(str(dataset), [str(other)], too_many, "s9", seed=0)


def _jpeg_tree(root: Path) -> list[str]:
    """An ImageNet-style tree: class folders of JPEGs and PNGs of other sizes, a hidden file and a text file."""
    rng = np.random.default_rng(5)
    names = ["n02/b.JPEG", "n02/a.jpg", "n01/z.png", "N00/x.jpeg", "n01/sub/y.jpg"]
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (30 + len(name), 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="PNG" if name.endswith(".png") else "JPEG")
    (root / "n01" / ".hidden.jpg").write_bytes(b"not an image")
    (root / "n01" / "notes.txt").write_text("not an image")
    return names


def test_an_image_folder_is_read_in_its_documented_order(tmp_path: Path) -> None:
    _jpeg_tree(tmp_path / "images")
    files = list_images(tmp_path / "images")
    assert files == ["N00/x.jpeg", "n01/sub/y.jpg", "n01/z.png", "n02/a.jpg", "n02/b.JPEG"]
    image = read_square_image(tmp_path / "images" / files[0], SIZE)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    folder = Folder(tmp_path / "images", tuple(files), 5)
    recipe = _recipe(counts={"shapes": 3}, augmented=0, folders=[folder], heldout=2)
    types = recipe.image_types(np.arange(len(recipe)))
    from_folder = recipe.images(np.flatnonzero(types == FOLDER))
    expected = np.stack([read_square_image(tmp_path / "images" / name, SIZE) for name in files])
    # every file once, whatever order the shuffle puts them in
    assert sorted(map(bytes, from_folder)) == sorted(map(bytes, expected))


def test_bad_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="image folder not found"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="holds no image files"):
        list_images(tmp_path / "empty")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputDataError, match="broken.jpg: cannot be read as an image"):
        read_square_image(tmp_path / "broken.jpg", SIZE)


def test_a_folder_of_user_jpegs_is_a_pool_source_recorded_in_the_provenance(tmp_path: Path) -> None:
    _jpeg_tree(tmp_path / "images")
    images = np.random.default_rng(2).integers(0, 256, (10, SIZE, SIZE, 3), dtype=np.uint8)
    dataset = _dataset(tmp_path, "s9", images)
    pool = {
        "images": {"natural": 4, "dots": 2},
        "augmented": 3,
        "other_sessions": 0,
        "folders": [{"path": str(tmp_path / "images"), "count": 4}],
        "heldout": 3,
    }
    recipe = pool_recipe(str(dataset), [], pool, "s9", seed=0)
    indices = np.arange(len(recipe))
    kinds = dict(zip(*np.unique(recipe.image_types(indices), return_counts=True), strict=True))
    assert kinds == {"natural": 4, "dots": 2, AUGMENTED: 3, FOLDER: 4}
    assert recipe.heldout_start == 10 and recipe.split().tolist() == ["train"] * 10 + ["heldout"] * 3
    folder_images = recipe.images(indices[recipe.image_types(indices) == FOLDER])
    files = list_images(tmp_path / "images")
    expected = {read_square_image(tmp_path / "images" / name, SIZE).tobytes() for name in files}
    assert {image.tobytes() for image in folder_images} <= expected and len(folder_images) == 4
    described = json.loads(recipe.describe())
    assert described["sources"]["folder0"] == 4 and described["folders"][0]["files"] == len(files)
    assert len(described["folders"][0]["listing_sha256"]) == 64


def _dataset(tmp_path: Path, session: str, images: np.ndarray) -> Path:
    n = len(images)
    responses = np.random.default_rng(0).poisson(3.0, (2, n, 2)).astype(float)
    dataset = build_session_dataset(
        source="x", session=session, monkey="M", responses=responses, images=images,
        neuron_ids=np.array([f"{session}_n{k:03d}" for k in range(2)]),
        image_ids=np.array([f"{session}_img{k:05d}" for k in range(n)]), image_types=np.array(["natural"] * n),
        response_kind="single_trial", latency_ms=50, window_ms=100, reliability_splits=5, min_reliability=-2.0,
        seed=0, attrs={"config_sha256": "0" * 64, "code_version": "t"},
    )  # fmt: skip
    path = tmp_path / f"{session}.nc"
    write_session_dataset(dataset, path)
    return path


def test_teacher_labels_are_written_in_order_and_whole_or_not_at_all(tmp_path: Path) -> None:
    from compactcortex.io.teacher_labels import TeacherLabels, TeacherLabelWriter, read_teacher_labels

    path = tmp_path / "teacher.nc"
    labels = np.arange(12, dtype=np.float64).reshape(2, 6) / 7
    with TeacherLabelWriter(path, ["n0", "n1"], 6, 4, {"a": "b"}) as writer:
        writer.write(0, labels[:, :4])
        with pytest.raises(ValueError, match="in order"):
            writer.write(5, labels[:, 5:])
        writer.write(4, labels[:, 4:])
    read, neurons, heldout_start = read_teacher_labels(path)
    np.testing.assert_array_equal(read, labels.astype(np.float32))
    assert neurons.tolist() == ["n0", "n1"] and heldout_start == 4
    with TeacherLabels(path, ["n1"]) as one:  # a compression job reads its own neurons, a range at a time
        np.testing.assert_array_equal(one.read(2, 5), labels[1:, 2:5].astype(np.float32))
        with pytest.raises(IndexError, match="outside the pool"):
            one.read(4, 7)
    with pytest.raises(InputDataError, match=r"teacher.nc: has no labels for \['n7'\]"):
        TeacherLabels(path, ["n0", "n7"])
    unfinished = tmp_path / "unfinished.nc"
    with (
        pytest.raises(ValueError, match="4 of 6 images"),
        TeacherLabelWriter(unfinished, ["n0", "n1"], 6, 4, {}) as writer,
    ):
        writer.write(0, labels[:, :4])
    with pytest.raises(RuntimeError), TeacherLabelWriter(unfinished, ["n0", "n1"], 6, 4, {}):
        raise RuntimeError("killed")
    assert not unfinished.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["teacher.nc"]


def test_a_file_that_is_not_teacher_labels_is_named(tmp_path: Path) -> None:
    from compactcortex.io.teacher_labels import TeacherLabels

    images = np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8)
    dataset = _dataset(tmp_path, "s9", images)  # a session dataset, not labels
    with pytest.raises(InputDataError, match=r"s9.nc: is not a teacher-label file"):
        TeacherLabels(dataset)
    (tmp_path / "broken.nc").write_bytes(b"CDF\x01 truncated")
    with pytest.raises(InputDataError, match="broken.nc: cannot be read as teacher labels"):
        TeacherLabels(tmp_path / "broken.nc")
