"""The command line: help and exit codes, and the one resolution chain as ``train`` shows it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from sampo_ref.algos import ALGORITHMS
from sampo_ref.cli import main
from sampo_ref.presets import PRESETS, ROWS, preset_config, resolve


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``sampo-ref argv…``."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
        if isinstance(stop.code, str):
            print(stop.code, file=__import__("sys").stderr)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [["--help"], ["-h"], []])
def test_help_goes_to_stdout_and_exits_0(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0 and err == ""
    assert all(f"sampo-ref {command}" in out for command in ("train", "eval", "list", "plot", "bench"))


def test_an_unknown_command_exits_2_with_one_line(capsys):
    code, out, err = run(capsys, "trian")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "'trian'" in err


def test_bench_help_shows_every_bench(capsys):
    code, out, _ = run(capsys, "bench", "--help")
    assert code == 0
    assert all(f"  {name} " in out for name in ("rollout", "update", "limits"))


def test_train_help_lists_the_flags_that_choose_the_config(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    assert all(flag in out for flag in ("--preset", "--algo", "--env", "--resume"))
    assert all(name in out for name in PRESETS)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_algo_x_is_preset_x(capsys, algo):
    """``--algo X`` starts from the preset named X, at toy and at full scale, so ``--help`` shows the
    same defaults; by construction: every method has a row of its own name that changes nothing."""
    assert ROWS[algo] == (algo, {})
    assert resolve(algo=algo) == preset_config(algo)
    assert resolve(algo=algo, env="alfworld") == preset_config(f"alfworld-{algo}")
    assert run(capsys, "train", "--algo", algo, "--help") == run(capsys, "train", "--preset", algo, "--help")
    assert (run(capsys, "train", "--algo", algo, "--env", "alfworld", "--help")
            == run(capsys, "train", "--preset", f"alfworld-{algo}", "--help"))


def test_the_chain_puts_each_layer_over_the_one_before():
    """base (GRPO's ε) → method (GSPO: 3e-3) → scale (toy: 3e-2) → flags."""
    assert resolve(algo="grpo").clip_low == 0.2
    assert resolve(algo="gspo", env="alfworld").clip_low == 3e-3
    assert resolve(algo="gspo").clip_low == 3e-2
    assert resolve(algo="gspo", clip_low=0.1).clip_low == 0.1
    assert resolve(preset="dapo_grpo").cold_start_steps == 2 and resolve(preset="alfworld-dapo_grpo").cold_start_steps == 15
    assert resolve().preset == "sampo"


@pytest.mark.parametrize("argv, named", [(["--preset", "dapo_grpo", "--algo", "gigpo"], "algo='gigpo'"),
                                         (["--preset", "alfworld-grpo", "--env", "toy"], "env='toy'"),
                                         (["--algo", "ppo"], "algo='ppo'"), (["--preset", "nope"], "preset='nope'")])
def test_a_bad_or_contradicting_choice_is_one_line(capsys, argv, named):
    code, _, err = run(capsys, "train", *argv)
    assert code == 1 and named in err and len(err.strip().splitlines()) == 1


def test_a_resumed_run_prints_its_own_preset(tmp_path, capsys, monkeypatch):
    import sampo_ref.trainer as trainer

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(preset_config("grpo", run_dir=str(run_dir)).to_dict()))
    scores = {"eval/success": 0.5, "eval/valid_action": 1.0}
    seen = []
    monkeypatch.setattr(trainer, "train", lambda cfg, resume: seen.append((cfg.preset, resume)) or SimpleNamespace(
        eval_before=scores, eval_after=scores, train_before=scores, train_after=scores, run_dir=run_dir))
    code, out, _ = run(capsys, "train", "--resume", str(run_dir))
    assert code == 0 and seen == [("grpo", True)]
    assert "\ngrpo (grpo) on coin level 4" in out
