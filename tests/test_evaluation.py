"""``sampo-ref eval``: per-category summaries, and evaluating a run reproduces its final held-out figure."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

import pytest

from sampo_ref.cli import main
from sampo_ref.config import TrainConfig
from sampo_ref.evaluation import summarise
from sampo_ref.trainer import train


def traj(won: bool, ret: float, valid: list[int]):
    return NS(won=won, episode_return=ret, turns=[NS(valid=v, format_valid=1) for v in valid])


def test_summarise_by_hand():
    trajs = [traj(True, 10.0, [1, 1]), traj(False, -0.2, [0, 1, 0, 1]), traj(True, 9.9, [0, 1, 1])]
    out = summarise(trajs, ["heat", "heat", "cool"])
    # all: success 2/3, return (10 − 0.2 + 9.9)/3, turns (2 + 4 + 3)/3, valid 6/9 (over turns, not episodes)
    assert out["all"] == {"episodes": 3, "success": pytest.approx(2 / 3), "return": pytest.approx(19.7 / 3),
                          "turns": 3.0, "valid_action": pytest.approx(6 / 9)}
    assert out["heat"]["success"] == 0.5 and out["heat"]["valid_action"] == pytest.approx(4 / 6)
    assert out["cool"] == {"episodes": 1, "success": 1.0, "return": 9.9, "turns": 3.0, "valid_action": pytest.approx(2 / 3)}
    assert list(summarise(trajs, ["coin-L1"] * 3)) == ["all"]  # one category: no repeat of "all"


@pytest.mark.slow
def test_eval_of_a_run_reproduces_its_final_held_out_success(tmp_path, user_cache, capsys):
    cfg = TrainConfig(iterations=1, train_games=16, eval_games=8, tasks_per_iter=2, group_size=2, mini_batch_size=64,
                      micro_batch_size=64, eval_every=0, save_every=0, seed=3, progress=False, tensorboard=False,
                      run_dir=str(tmp_path / "run"))
    result = train(cfg)
    main(["eval", str(tmp_path / "run")])
    results = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert results["sampling"]["seed"] == 3  # the run's own seed by default
    assert results["tasks"]["coin-L4"]["all"]["success"] == result.eval_after["eval/success"]
    assert results["tasks"]["coin-L4"]["all"]["episodes"] == 8
    assert "| coin-L4 | all | 8 |" in capsys.readouterr().out
    # a save_pretrained folder is a model, not a run (its config.json names a model_type)
    main(["eval", str(tmp_path / "run" / "policy"), "--games", "2", "--out", str(tmp_path / "model.json")])
    results = json.loads((tmp_path / "model.json").read_text())
    assert not results["run"] and results["tasks"]["coin-L4"]["all"]["episodes"] == 2


@pytest.mark.parametrize("target, is_run", [("tiny", False), ("Qwen/Qwen3-0.6B", False), ("run", True)])
def test_eval_takes_a_run_a_model_or_a_hub_id(tmp_path, monkeypatch, target, is_run):
    from sampo_ref.evaluation import run_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(TrainConfig(seed=4).to_dict()))
    assert (run_config(target) == TrainConfig(seed=4)) if is_run else run_config(target) is None


@pytest.mark.parametrize("target", ["runs", "docs"])
def test_eval_of_a_folder_that_is_neither_run_nor_model_says_so(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    (tmp_path / target).mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", target])
    assert exit_info.value.code.startswith(f"sampo-ref eval: target={target!r} is not allowed: expected a run")
    assert "\n" not in exit_info.value.code


def test_eval_of_a_folder_without_policy_says_so(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    with pytest.raises(SystemExit, match="holds no policy/ and no checkpoint"):
        main(["eval", str(tmp_path)])
