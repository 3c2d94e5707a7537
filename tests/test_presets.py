"""Presets: docs/dimensions.md#presets's rows, valid configs, and the docs table that cannot drift from the code."""

from pathlib import Path

import pytest

from sampo_ref.algos import ALGORITHMS
from sampo_ref.presets import PRESETS, axes, preset_config, table

ARLARENA_ROWS = ["grpo", "grpo_st", "soft_sapo", "cispo", "gspo", "gigpo", "empg", "dapo_grpo", "dapo_gigpo", "sampo"]


def test_every_row_of_the_main_table_is_a_preset():
    assert set(ARLARENA_ROWS) <= set(PRESETS)


@pytest.mark.parametrize("name", [n for n in PRESETS if not n.startswith("alfworld-")])
def test_every_preset_is_a_valid_config(name):
    preset_config(name).validate()  # ALFWorld presets need game data: tests/test_alfworld.py


def test_every_row_has_an_alfworld_preset():
    assert {f"alfworld-{n}" for n in PRESETS if not n.startswith("alfworld-")} == {n for n in PRESETS if n.startswith("alfworld-")}


def test_spec_section_9_choices():
    assert axes(preset_config("grpo_st"))["aggregation"] == "seq-mean-token-mean"
    assert preset_config("cispo").clip_low == 1.0 and preset_config("cispo").clip_high == 0.2
    assert (preset_config("soft_sapo").tau_pos, preset_config("soft_sapo").tau_neg) == (1.0, 1.05)
    assert preset_config("dapo_grpo").filter_groups and preset_config("dapo_grpo").algo == "grpo"
    assert preset_config("dapo_gigpo").filter_groups and preset_config("dapo_gigpo").algo == "gigpo"
    sampo = preset_config("sampo")
    assert ALGORITHMS[sampo.algo].filter is not None and sampo.loss_agg == "seq-mean-token-mean"
    assert axes(preset_config("gspo"))["aggregation"] == "PG seq-mean-token-mean; KL/entropy token-mean"
    for name in ("grpo_sm", "soft_sapo_sm", "cispo_sm"):
        assert preset_config(name).seq_mask and preset_config(name).seq_mask_delta == 3e-3


def test_docs_table_is_the_code_table():
    docs = (Path(__file__).parent.parent / "docs" / "dimensions.md").read_text()
    assert table() in docs, "docs/dimensions.md is stale: paste the output of `sampo-ref list`"
