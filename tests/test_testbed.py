"""benchmarks/testbed.py: its rows name real config fields, and ``--tiny`` parses typed overrides
or names the bad one."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from sampo_ref.config import TrainConfig
from sampo_ref.presets import PRESETS
from sampo_ref.tiny import TinyConfig

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("testbed", ROOT / "benchmarks" / "testbed.py")
testbed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(testbed)


@pytest.mark.parametrize("row", list(testbed.ROWS))
def test_every_row_changes_real_fields(row):
    _, tiny, flags = testbed.ROWS[row]
    TinyConfig(**tiny)  # a field that does not exist raises TypeError
    flags = dict(flags)
    assert flags.pop("preset", "sampo") in PRESETS
    assert set(flags) <= {f.name for f in dataclasses.fields(TrainConfig)}


def test_tiny_overrides_are_typed_as_the_fields():
    assert testbed.tiny_overrides(["warm_start_lr=1e-3", "seed=1", "warm_start=random"]) == \
        {"warm_start_lr": 1e-3, "seed": 1, "warm_start": "random"}
    assert testbed.tiny_overrides([]) == {}


@pytest.mark.parametrize("pair, named", [("lr=1e-3", "'lr=1e-3'"), ("seed", "'seed'"), ("seed=one", "'one' is not a valid int")])
def test_a_bad_override_is_named_in_one_line(pair, named):
    with pytest.raises(SystemExit) as err:
        testbed.tiny_overrides([pair])
    message = str(err.value)
    assert named in message and "\n" not in message
