"""The configuration is validated against the schema before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compactcortex.config import config_sha256, load_config, validate_config
from compactcortex.errors import ConfigError
from tests.conftest import REPOSITORY, TINY_CONFIG

SESSIONS = [{"id": "s1", "role": "train"}, {"id": "s2", "role": "validation"}, {"id": "s3", "role": "test"}]
MINIMAL = {"dataset": "d", "source": {"kind": "virtual_lab"}, "sessions": SESSIONS}


@pytest.mark.parametrize("path", ["config.yaml", "config/cowley2023.yaml", "tests/config/tiny.yaml"])
def test_shipped_configs_are_valid(path: str) -> None:
    config = load_config(REPOSITORY / path)
    assert config["sessions"]


def test_defaults_are_filled_from_the_schema() -> None:
    config = validate_config(MINIMAL)
    assert config["seed"] == 0
    assert config["preprocess"]["window_ms"] == 100
    assert config["virtual_lab"]["timing"]["latency_ms"] == 50
    assert config["virtual_lab"]["roles"]["test"]["images"]["natural"] > 0
    assert MINIMAL["source"] == {"kind": "virtual_lab"}, "the caller's dict is not modified"


def test_unknown_key_is_an_error_naming_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "preprocess": {"window_ms": 100, "windwo_ms": 3}}))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "windwo_ms" in str(error.value) and "preprocess" in str(error.value)


def test_wrong_type_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"at 'seed'.*not of type 'integer'"):
        validate_config({**MINIMAL, "seed": "twelve"})
    with pytest.raises(ConfigError, match=r"sessions/0/role"):
        validate_config({**MINIMAL, "sessions": [{**SESSIONS[0], "role": "training"}, *SESSIONS[1:]]})


def test_inconsistent_values_are_errors() -> None:
    with pytest.raises(ConfigError, match="more than once: s1"):
        validate_config({**MINIMAL, "sessions": [*SESSIONS, {"id": "s1", "role": "test"}]})
    with pytest.raises(ConfigError, match="exactly one session must have role 'validation'.*found 0"):
        validate_config({**MINIMAL, "sessions": [SESSIONS[0], SESSIONS[2]]})
    with pytest.raises(ConfigError, match="no session has role 'test'"):
        validate_config({**MINIMAL, "sessions": SESSIONS[:2]})
    with pytest.raises(ConfigError, match="source.path is required"):
        validate_config({**MINIMAL, "source": {"kind": "nwb"}})
    nwb = {"kind": "nwb", "path": "/data"}
    with pytest.raises(ConfigError, match="closed_loop.recordings names sessions without compact models: s1"):
        validate_config({**MINIMAL, "source": nwb, "closed_loop": {"recordings": {"s1": "/data/next.nwb"}}})
    with pytest.raises(ConfigError, match="the virtual lab records its own closed loop"):
        validate_config({**MINIMAL, "closed_loop": {"recordings": {"s3": "/data/next.nwb"}}})
    assert validate_config({**MINIMAL, "source": nwb, "closed_loop": {"recordings": {"s3": "/data/next.nwb"}}})


def test_nwb_files_are_found_by_pattern_session_id_or_file() -> None:
    """The flat folder by default; a DANDI tree by pattern or by the NWB session_id; a session's own file."""
    nwb = {"kind": "nwb", "path": "/data"}
    source = validate_config({**MINIMAL, "source": nwb})["source"]
    assert (source["pattern"], source["match_by"]) == ("{session}.nwb", "file_name")
    dandi = {**nwb, "pattern": "sub-*/sub-*_ses-{session}_*.nwb"}
    assert validate_config({**MINIMAL, "source": dandi})
    assert validate_config({**MINIMAL, "source": {**nwb, "pattern": "sub-*/*.nwb", "match_by": "session_id"}})
    given = [{**SESSIONS[0], "file": "sub-M1/sub-M1_ses-1_ecephys.nwb"}, *SESSIONS[1:]]
    assert validate_config({**MINIMAL, "source": dandi, "sessions": given})
    with pytest.raises(ConfigError, match=r"at 'source/match_by': 'name' is not one of"):
        validate_config({**MINIMAL, "source": {**nwb, "match_by": "name"}})
    with pytest.raises(ConfigError, match=r"sessions/0/file"):
        validate_config({**MINIMAL, "source": nwb, "sessions": [{**SESSIONS[0], "file": ""}, *SESSIONS[1:]]})
    with pytest.raises(ConfigError, match=r"sessions' file is for source kind nwb, not virtual_lab; given for: s1"):
        validate_config({**MINIMAL, "sessions": given})
    with pytest.raises(
        ConfigError, match=r"source.pattern 'sub-\*/\*.nwb' has no \{session\}.*\(not given for: s2, s3\)"
    ):
        validate_config({**MINIMAL, "source": {**nwb, "pattern": "sub-*/*.nwb"}, "sessions": given})


def test_a_pool_too_small_for_the_synthesis_controls_is_an_error_before_anything_runs() -> None:
    """The first real-data pool tried here (300 natural crops among 11,900 images, 800 held out) leaves about 30
    held-out natural images for 60 controls: the config says so at once, not in the synthesis jobs hours later."""
    pool = {"images": {"natural": 300}, "other_sessions": 10000, "augmented": 1600, "heldout": 800}
    config = {**MINIMAL, "source": {"kind": "nwb", "path": "/data"}, "compact": {"pool": pool}}
    with pytest.raises(ConfigError, match=r"session s3's distillation pool holds \d+ natural images; synthesis"):
        validate_config({**config, "synthesis": {"controls": 60}})
    assert validate_config({**config, "synthesis": {"controls": 10}})
    with pytest.raises(ConfigError, match=r"compact.pool: the held-out part \(20000\) must be between"):
        validate_config({**config, "compact": {"pool": {**pool, "heldout": 20000}}})


def test_unreadable_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_config_hash_depends_on_values_not_key_order() -> None:
    assert config_sha256({"a": 1, "b": [1, 2]}) == config_sha256({"b": [1, 2], "a": 1})
    assert config_sha256({"a": 1}) != config_sha256({"a": 2})


def test_tiny_config_is_small() -> None:
    config = load_config(TINY_CONFIG)
    roles = config["virtual_lab"]["roles"]
    assert all(sum(role["images"].values()) <= 200 for role in roles.values())
