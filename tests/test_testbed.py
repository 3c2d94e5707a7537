"""benchmarks/testbed.py: its rows name real config fields, and a bad ``--tiny`` change is named in one line."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from sampo_ref.config import TrainConfig
from sampo_ref.presets import PRESETS
from sampo_ref.tiny import tiny_config

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("testbed", ROOT / "benchmarks" / "testbed.py")
testbed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(testbed)


@pytest.mark.parametrize("row", list(testbed.ROWS))
def test_every_row_changes_real_fields(row):
    _, tiny, flags = testbed.ROWS[row]
    tiny_config(tiny)  # a field that does not exist, or a value of the wrong type, raises ConfigError
    flags = dict(flags)
    assert flags.pop("preset", "sampo") in PRESETS
    assert set(flags) <= {f.name for f in dataclasses.fields(TrainConfig)}


def test_a_bad_tiny_change_is_named_in_one_line(monkeypatch):
    monkeypatch.setattr("sys.argv", ["testbed.py", "teacher", "--tiny", "seed=one"])
    with pytest.raises(SystemExit) as err:
        testbed.main()
    message = str(err.value)
    assert "'one' is not a valid int" in message and "\n" not in message
