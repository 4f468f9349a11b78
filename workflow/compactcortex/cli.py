"""The ``compactcortex`` command: predict, inspect, synthesise and export with a model, and show a run's summary.

MODEL is a compact model's card (``results/<dataset>/compact/<session>/models/<chunk>/<neuron>.json``) or a
published Cowley et al. 2023 model (``compact_models_torch/compact_model_<session>_neuron<k>.pt``); ``predict``
also takes a run's results folder with ``--session`` for the ensemble.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import click

from compactcortex.errors import ConfigError, InputDataError

PATH = click.Path(path_type=Path)


def _clear_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input ends the command with its message (naming the file) and exit status 2, not a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (InputDataError, ConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc

    return run


@contextmanager
def _progress_to_stderr() -> Iterator[None]:
    """The package's progress lines (``progress``) on the terminal's stderr while a long command runs."""
    logger = logging.getLogger("compactcortex")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compactcortex")
def main() -> None:
    """Compact and ensemble models of visual-cortex neurons (Cowley, Stan, Pillow & Smith)."""


@main.command()
@click.argument("model", type=PATH)
@click.argument("images", type=PATH, nargs=-1, required=True)
@click.option("-o", "--output", type=PATH, help="Write the responses to this CSV file (default: the terminal).")
@click.option("--session", help="With MODEL a run's results/<dataset> folder: predict with the ensemble mapped to it.")
@_clear_errors
def predict(model: Path, images: tuple[Path, ...], output: Path | None, session: str | None) -> None:
    """Predict the neurons' responses to IMAGES (PNG, JPEG, ...: any size; centre-cropped to a square and resized as
    the model expects). One row per image, one column per neuron, in the model's units (the CSV's header comment)."""
    from compactcortex.api import load_compact_model, load_ensemble
    from compactcortex.api.images import read_image_files
    from compactcortex.io.tables import responses_table_text, write_responses_table

    if session is not None:
        loaded: Any = load_ensemble(model, session)
    elif model.is_dir():
        raise click.UsageError(f"{model} is a folder: to predict with a run's ensemble, name the session (--session)")
    else:
        loaded = load_compact_model(model)
    responses = loaded.predict(read_image_files(images))
    names = [str(path) for path in images]
    if output is None:
        click.echo(responses_table_text(names, loaded.neurons, responses, loaded.units), nl=False)
    else:
        write_responses_table(output, names, loaded.neurons, responses, loaded.units)
        click.echo(f"{len(names)} images x {len(loaded.neurons)} neurons ({loaded.units}) -> {output}", err=True)


@main.command()
@click.argument("model", type=PATH)
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
@_clear_errors
def info(model: Path, as_json: bool) -> None:
    """The model's architecture, filters per layer, parameters, fidelity and accuracy, and provenance."""
    from compactcortex.api import load_compact_model

    details = load_compact_model(model).info()
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, item in value.items():
                click.echo(f"  {inner}: {item if isinstance(item, str) else json.dumps(item)}")
        else:
            click.echo(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")


@main.command()
@click.argument("model", type=PATH)
@click.option("-o", "--output", type=PATH, default=Path("maximizing.png"), show_default=True, help="PNG to write.")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Gradient steps.")
@click.option("--starts", type=click.IntRange(min=1), default=4, show_default=True, help="White-noise starts.")
@click.option("--size", type=click.IntRange(min=4), help="Image side in pixels (default: the model's input size).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the white-noise starts.")
@_clear_errors
def synthesize(model: Path, output: Path, steps: int, starts: int, size: int | None, seed: int) -> None:
    """Synthesise the image that drives the model most (gradient ascent from white noise, the best of STARTS)."""
    from compactcortex.api import load_compact_model, maximizing_image
    from compactcortex.io.image_folders import write_png

    loaded = load_compact_model(model)
    with _progress_to_stderr():
        image, response = maximizing_image(loaded, steps=steps, starts=starts, size=size, seed=seed)
    write_png(output, image)
    click.echo(f"{output}: {image.shape[0]} x {image.shape[1]} px; response {response:.4g} ({loaded.units})")


@main.command()
@click.argument("model", type=PATH)
@click.option("--onnx", "onnx_path", type=PATH, required=True, help="The ONNX file to write.")
@_clear_errors
def export(model: Path, onnx_path: Path) -> None:
    """Export the model to ONNX: input float32 (image, S, S, 3) pixels in 0..255, output (image, neuron)."""
    from compactcortex.api import export_onnx, load_compact_model

    loaded = load_compact_model(model)
    export_onnx(loaded, onnx_path)
    click.echo(f"{onnx_path}: input (image, {loaded.image_size}, {loaded.image_size}, 3), output in {loaded.units}")


@main.command()
@click.argument("results", type=PATH)
@_clear_errors
def summary(results: Path) -> None:
    """The headline figures and the per-session table of a run (RESULTS: results/<dataset>, or its summary.json)."""
    from compactcortex.io.summary import read_summary
    from compactcortex.summary_table import headline_table, session_table

    path = results / "summary.json" if results.is_dir() else results
    run = read_summary(path)
    click.echo(headline_table(run))
    click.echo()
    click.echo(session_table(run), nl=False)


if __name__ == "__main__":
    sys.exit(main())
