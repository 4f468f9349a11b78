"""Load the pipeline configuration and validate it against the JSON schema, filling defaults."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

from compactcortex.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config.yaml"  # the embedded default


def _with_defaults(validator_class: type) -> type:
    """A validator class that also fills each property's schema default into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001, ANN202
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if name not in instance and "default" in subschema:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    return f"at '{where}': {error.message}"


def validate_config(config: Mapping[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """Return a validated copy of `config` with the schema's defaults filled in.

    Raises ConfigError naming `source` (the config file) and every problem found.
    """
    filled = copy.deepcopy(dict(config))
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = "; ".join(_describe(error) for error in errors)
        raise ConfigError(source, f"invalid configuration {problems}")
    _check_consistency(filled, source)
    return filled


def _check_consistency(config: dict[str, Any], source: str | Path | None) -> None:
    ids = [session["id"] for session in config["sessions"]]
    duplicated = sorted({sid for sid in ids if ids.count(sid) > 1})
    if duplicated:
        raise ConfigError(source, f"session ids listed more than once: {', '.join(duplicated)}")
    roles = [session["role"] for session in config["sessions"]]
    if roles.count("validation") != 1:
        raise ConfigError(
            source,
            f"exactly one session must have role 'validation' (early stopping); found {roles.count('validation')}",
        )
    for role in ("train", "test"):
        if role not in roles:
            raise ConfigError(source, f"no session has role '{role}'")
    tests = {session["id"] for session in config["sessions"] if session["role"] == "test"}
    not_tests = sorted(set(config["compact"].get("sessions") or []) - tests)
    if not_tests:
        raise ConfigError(source, f"compact.sessions must be test sessions; these are not: {', '.join(not_tests)}")
    compressed = set(config["compact"].get("sessions") or tests)
    not_compressed = sorted(set(config["closed_loop"]["recordings"]) - compressed)
    if not_compressed:
        raise ConfigError(
            source, f"closed_loop.recordings names sessions without compact models: {', '.join(not_compressed)}"
        )
    _check_synthesis_controls(config, sorted(compressed), source)
    kind = config["source"]["kind"]
    if kind == "virtual_lab" and config["closed_loop"]["recordings"]:
        raise ConfigError(
            source, "closed_loop.recordings is for real data: the virtual lab records its own closed loop"
        )
    if kind != "virtual_lab" and not config["source"].get("path"):
        raise ConfigError(source, f"source.path is required when source.kind is '{kind}'")
    _check_session_files(config, source)
    if kind == "virtual_lab":
        fractions = config["virtual_lab"]["kind_fractions"]
        if sum(fractions.values()) <= 0:
            raise ConfigError(source, "virtual_lab.kind_fractions must not all be zero")
        for role in {session["role"] for session in config["sessions"]}:
            if sum(config["virtual_lab"]["roles"][role]["images"].values()) < 2:
                raise ConfigError(source, f"virtual_lab.roles.{role}.images must total at least 2 images")


def _check_session_files(config: dict[str, Any], source: str | Path | None) -> None:
    """A session's own file is for NWB data; source.pattern must tell the sessions' files apart by file name unless
    they are matched by their NWB session_id or each is given its file."""
    kind, pattern = config["source"]["kind"], config["source"]["pattern"]
    given = [session["id"] for session in config["sessions"] if "file" in session]
    if given and kind != "nwb":
        raise ConfigError(source, f"sessions' file is for source kind nwb, not {kind}; given for: {', '.join(given)}")
    others = [session["id"] for session in config["sessions"] if "file" not in session]
    if kind == "nwb" and others and config["source"]["match_by"] == "file_name" and "{session}" not in pattern:
        raise ConfigError(
            source,
            f"source.pattern '{pattern}' has no {{session}}, so it cannot tell the sessions' files apart: put "
            "{session} where the session's id appears in the file names, set source.match_by to session_id (the "
            "session_id stored in each file), or give each session its file in sessions (not given for: "
            f"{', '.join(others)})",
        )


def _check_synthesis_controls(config: dict[str, Any], sessions: Sequence[str], source: str | Path | None) -> None:
    """Synthesis shows every neuron the first held-out natural images of its session's pool as controls: a pool
    with too few is an error now, not hours later in the synthesis jobs."""
    from compactcortex.pool import heldout_natural_count  # the pool's order only: no image is read

    wanted = config["synthesis"]["controls"]
    for session in sessions:
        try:
            found = heldout_natural_count(config["compact"]["pool"], session, config["seed"])
        except ValueError as exc:
            raise ConfigError(source, f"compact.pool: {exc}") from exc
        if found < wanted:
            raise ConfigError(
                source,
                f"the held-out part of session {session}'s distillation pool holds {found} natural images; "
                f"synthesis.controls asks for {wanted} (raise compact.pool.heldout or compact.pool.images.natural)",
            )


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it (see validate_config)."""
    path = Path(path)
    try:
        with open(path) as handle:
            raw = yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(path, "config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(path, "the config must be a mapping of keys to values")
    return validate_config(raw, path)


def sorted_keys(value: Any) -> Any:
    """The same value with every mapping's keys sorted.

    Rules receive config sections through params, and Snakemake reruns a job when its params' text
    changes: sorting makes that text independent of the order keys were written in the YAML.
    """
    if isinstance(value, Mapping):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [sorted_keys(item) for item in value]
    return value


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same values always give the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_sha256(value: Any) -> str:
    """sha256 of the canonical JSON of a config (or of the part of it an output depends on)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def session_roles(config: Mapping[str, Any]) -> dict[str, str]:
    """Session id -> role, in config order."""
    return {session["id"]: session["role"] for session in config["sessions"]}


Settings = TypeVar("Settings")


def settings_from(cls: type[Settings], section: Mapping[str, Any], **context: Any) -> Settings:
    """The one way a config section becomes a stage's settings (a dataclass): each field from ``context`` where given
    there (a seed, a device, nested settings), else from the section's key of the same name (lists become tuples);
    a field named by neither keeps its default. The schema has already checked and defaulted the section."""
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in context:
            values[field.name] = context[field.name]
        elif field.name in section:
            value = section[field.name]
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
