"""Learning: the default toy experiment, shortened, must raise success on its training games.

The threshold comes from the measured 3-seed results in docs/results.md (the full demo run);
this shorter run (fewer games and iterations, one seed) must clear a smaller, stated margin.
"""

from __future__ import annotations

import pytest

from sampo_ref.config import TrainConfig
from sampo_ref.trainer import train
from conftest import USER_CACHE

# The shortened run below, measured over seeds 0-2 on the 2-core CPU (docs/results.md).
MIN_TRAIN_GAIN = 0.15  # training-game success must rise by at least 15 points


@pytest.mark.slow
def test_default_experiment_learns(tmp_path, monkeypatch):
    # the user's cache (games and the tiny policy are shared with `make demo`), not a test folder
    if USER_CACHE is None:
        monkeypatch.delenv("SAMPO_REF_CACHE", raising=False)
    else:
        monkeypatch.setenv("SAMPO_REF_CACHE", USER_CACHE)
    cfg = TrainConfig(iterations=12, train_games=16, eval_games=32, eval_every=0, seed=0,
                      run_dir=str(tmp_path / "run"), progress=False)
    result = train(cfg)
    gain = result.train_after["eval/success"] - result.train_before["eval/success"]
    assert gain >= MIN_TRAIN_GAIN, f"training-game success rose by {gain:.2f} < {MIN_TRAIN_GAIN}"
    # the run directory holds what the README promises
    for name in ("config.json", "metrics.jsonl", "learning_curve.png", "samples.txt", "policy/config.json"):
        assert (result.run_dir / name).exists(), name
