"""benchmarks/arena.py: per-run summary, collapse rule, results table and report, on synthetic metrics."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from sampo_ref.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("arena", ROOT / "benchmarks" / "arena.py")
arena = importlib.util.module_from_spec(spec)
spec.loader.exec_module(arena)


def records(evals, grad=(0.5, 0.7), fmt=(1.0, 0.9), kl=None, finished=True):
    """A metrics log: held-out evaluations at iterations 0, 2, 4, …; training records in between."""
    out = [{"iteration": 0, "train_games/success": 0.2}]
    for i, success in enumerate(evals):
        last = finished and i == len(evals) - 1
        out.append({"iteration": 2 * i, "eval/success": success, "eval/valid_action": 0.8, **({"final": True} if last else {})})
        if not last:
            train = {"iteration": 2 * i + 1, "rollout/success": success, "rollout/success_all": success / 2,
                     "groups/uniform_return": 0.25 * (i + 1), "actor/grad_norm_max": grad[i % len(grad)],
                     "actor/skipped_steps": 0, "rollout/valid_format": fmt[i % len(fmt)]}
            train.update({k: (v(i) if callable(v) else v) for k, v in (kl or {}).items()})
            out.append(train)
    if finished:
        out.append({"iteration": 2 * (len(evals) - 1), "final": True, "train_games/success": evals[-1]})
    return out


def test_summary_numbers():
    s = arena.summarize(records([0.2, 0.6, 0.5], grad=(0.5, 3.0), fmt=(1.0, 0.8)))
    assert (s["initial"], s["final"], s["best"], s["best_iteration"]) == (0.2, 0.5, 0.6, 2)
    assert s["drop"] == pytest.approx(-0.1)
    assert (s["grad_norm_max"], s["valid_format_min"]) == (3.0, 0.8)
    assert s["grad_norm_median"] == pytest.approx(1.75)  # the two training records: 0.5 and 3.0
    assert not s["collapsed"]
    assert math.isnan(s["kl_ref/neg_down_max"])  # a log without the KL split
    assert s["first_rollouts_success"] == pytest.approx((0.1 + 0.3) / 2)  # every episode, iterations 1-2
    assert s["uniform_groups_mean"] == pytest.approx(0.375) and s["final_train_games"] == 0.5


def test_summary_needs_a_final_evaluation():
    with pytest.raises(ValueError, match="final held-out evaluation"):
        arena.summarize(records([0.2, 0.6], finished=False))
    assert not arena.finished(records([0.2, 0.6], finished=False)) and arena.finished(records([0.2, 0.6]))


@pytest.mark.parametrize("evals, fmt, expected", [
    ([0.2, 0.8, 0.3], (1.0,), True),    # fell 0.5 from its peak, to below half of it
    ([0.2, 0.8, 0.55], (1.0,), False),  # fell 0.25, but kept more than half of the peak
    ([0.1, 0.3, 0.12], (1.0,), False),  # below half of the peak, but only 0.18 down: within noise
    ([0.2, 0.3, 0.3], (1.0, 0.4), True),  # the answer format broke in a training rollout
    ([0.2, 0.3, 0.3], (1.0, 0.5), False),
    ([0.06, 0.0, 0.0, 0.0, 0.0], (1.0,), True),  # never rose, but the last 3 rollouts won nothing
    ([0.06, 0.0, 0.0, 0.1, 0.0], (1.0,), False),  # one of the last 3 rollouts won something
])
def test_collapse_rule(evals, fmt, expected):
    assert arena.summarize(records(evals, fmt=fmt))["collapsed"] is expected


def test_table_mean_std_and_kl_columns():
    kl = {"kl_ref/pos_up": 0.01, "kl_ref/pos_down": 0.02, "kl_ref/neg_up": float("nan"),
          "kl_ref/neg_down": lambda i: 0.1 * (i + 1)}
    runs = {"grpo": [arena.summarize(records([0.2, 0.4])), arena.summarize(records([0.2, 0.6]))],
            "cispo": [arena.summarize(records([0.2, 0.8, 0.1], kl=kl))]}
    lines = arena.table(runs).splitlines()
    assert lines[0].count("|") == 14 and len(lines) == 4
    grpo, cispo = (line.split(" | ") for line in lines[2:])
    assert grpo[1:7] == ["2", "50.0% ± 14.1%", "50.0% ± 14.1%", "0.0 ± 0.0 pt", "0/2", "0/2"]
    assert grpo[7:9] == ["0.50 ± 0.00", "0.50 ± 0.00"]  # one training record each
    assert grpo[10:] == ["80.0% ± 0.0%", "–", "– |"]  # no KL split logged
    assert cispo[2:7] == ["10.0% ± 0.0%", "80.0% ± 0.0%", "-70.0 ± 0.0 pt", "1/1", "1/1"]  # ended below its 20 %
    assert cispo[7:9] == ["0.70 ± 0.00", "0.60 ± 0.00"]  # max and median of the per-iteration maxima 0.5, 0.7
    assert cispo[11:] == ["0.200 ± 0.000", "0.020 ± 0.000 |"]  # max of neg_down over iterations; NaN bins ignored


def test_table_without_any_kl_split_has_no_kl_columns():
    assert "KL-ref" not in arena.table({"grpo": [arena.summarize(records([0.2, 0.4]))]})


def fake_arena(out: Path, presets, seeds, kl=True):
    for preset in presets:
        for seed in seeds:
            path = arena.run_dir(out, preset, seed)
            path.mkdir(parents=True)
            (path / "config.json").write_text(json.dumps(TrainConfig(seed=seed).to_dict()))
            split = {k: 0.01 * (seed + 1) for k in arena.KL_BINS} if kl else None
            log = records([0.2, 0.3 + 0.1 * seed, 0.4], kl=split)
            (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))


@pytest.mark.slow
def test_report_writes_table_json_and_figures(tmp_path):
    fake_arena(tmp_path / "runs", ["grpo", "cispo", "cispo_sm"], [0, 1])
    (tmp_path / "runs" / "cispo-s2").mkdir()  # an unfinished run is left out
    text = arena.report(tmp_path / "runs", ["grpo", "cispo", "cispo_sm"], [0, 1, 2], {}, tmp_path / "report",
                        {"command": "x"})
    assert (tmp_path / "report" / "results.md").read_text() == text + "\n"
    summary = json.loads((tmp_path / "report" / "results.json").read_text())
    assert sorted(summary["runs"]["cispo"]) == ["s0", "s1"] and summary["command"] == "x"
    assert summary["arena"]["tiny"] == arena.ARENA["tiny"] == ["random_share=0.85"]
    assert summary["versus_grpo"]["cispo"]["seeds"] == ["s0", "s1"] and "− GRPO (paired by seed)" in text
    assert list(summary["versus_unmasked"]) == ["cispo_sm"] and "mask − no mask (paired by seed)" in text
    for name in ("success.png", "kl_split.png", "stability.png", "versus_grpo.png", "versus_unmasked.png"):
        assert (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG"


def test_report_without_finished_runs_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no finished run"):
        arena.report(tmp_path, ["grpo"], [0], {}, tmp_path / "report", {})


@pytest.mark.slow
def test_report_only_trains_nothing(tmp_path, monkeypatch):
    fake_arena(tmp_path / "runs", ["grpo"], [0])
    monkeypatch.setattr(arena, "run_all", lambda *a, **k: pytest.fail("--report-only started training"))
    arena.main(["--report-only", "--presets", "grpo", "--seeds", "0", "--out", str(tmp_path / "runs"),
                "--report", str(tmp_path / "report")])
    assert (tmp_path / "report" / "results.md").exists()


def test_unknown_preset_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"--presets \['grpo_x'\] is not allowed"):
        arena.main(["--presets", "grpo_x", "--out", str(tmp_path)])


def test_arena_presets_are_the_papers_rows_plus_extras():
    from sampo_ref.presets import PRESETS

    assert set(arena.PRESETS) <= set(PRESETS)
    assert arena.PRESETS[:10] == ["grpo", "grpo_st", "soft_sapo", "cispo", "gspo", "gigpo", "empg", "dapo_grpo",
                                  "dapo_gigpo", "sampo"]  # docs/dimensions.md#presets, the table's order


def test_a_finished_run_is_skipped(tmp_path):
    fake_arena(tmp_path, ["grpo"], [0])
    assert arena.run_one(tmp_path, "grpo", 0, {}) == ("grpo", 0, 0.0, "skipped")


def test_every_run_records_the_arenas_weaker_warm_start(tmp_path):
    """The runs' config (config.json) carries the arena's recipe of the tiny policy: the default's, with
    85 % of the imitation examples from random play."""
    from sampo_ref.presets import preset_config
    from sampo_ref.tiny import TinyConfig

    cfg = preset_config("grpo", **arena.ARENA, seed=0, run_dir=str(tmp_path / "grpo-s0"))
    built, default = cfg.tiny_config(), TinyConfig()
    assert built.random_share == 0.85 != default.random_share
    assert {k: v for k, v in vars(built).items() if k != "random_share"} == \
        {k: v for k, v in vars(default).items() if k != "random_share"}
    assert TrainConfig.from_dict(cfg.to_dict()).tiny == ["random_share=0.85"]


def test_paired_bootstrap_matches_the_exact_bootstrap_distribution():
    import itertools

    diffs = [0.10, -0.05, 0.30, 0.20, 0.05]
    mean, low, high = arena.paired_bootstrap(diffs)
    assert mean == pytest.approx(0.12)
    # every one of the 5^5 equally likely resamples, enumerated: the exact percentile interval
    exact = sorted(sum(c) / 5 for c in itertools.product(diffs, repeat=5))
    assert low == pytest.approx(exact[int(0.025 * len(exact))], abs=0.01)
    assert high == pytest.approx(exact[int(0.975 * len(exact))], abs=0.01)
    assert arena.paired_bootstrap([0.1] * 5) == pytest.approx((0.1, 0.1, 0.1))
    assert arena.paired_bootstrap(diffs) == (mean, low, high)  # a fixed generator: the report is reproducible


@pytest.mark.parametrize("low, high, expected", [(0.01, 0.2, "↑"), (-0.2, -0.01, "↓"), (-0.1, 0.1, "≈"), (0.0, 0.1, "≈")])
def test_direction_needs_the_whole_interval_on_one_side(low, high, expected):
    assert arena.direction(low, high) == expected


def test_versus_grpo_pairs_by_seed_and_reads_the_papers_direction():
    per_run = {"grpo": {"s0": {"final": 0.4}, "s1": {"final": 0.5}, "s2": {"final": 0.9}},
               "sampo": {"s0": {"final": 0.7}, "s1": {"final": 0.8}},  # s2 missing: compared on s0, s1 only
               "cispo": {"s0": {"final": 0.5}, "s1": {"final": 0.4}, "s2": {"final": 0.9}},
               "sapo": {"s0": {"final": 0.1}}}  # not a row of the paper's table
    c = arena.versus_grpo(per_run)
    assert set(c) == {"sampo", "cispo", "sapo"}
    assert c["sampo"]["seeds"] == ["s0", "s1"] and c["sampo"]["diff"] == pytest.approx(0.3)
    assert (c["sampo"]["ours"], c["sampo"]["paper"], c["sampo"]["agrees"]) == ("↑", "↑", True)
    assert (c["cispo"]["ours"], c["cispo"]["paper"], c["cispo"]["agrees"]) == ("≈", "↓", None)  # +0.1, −0.1, 0
    assert (c["sapo"]["ours"], c["sapo"]["paper"], c["sapo"]["agrees"]) == ("↓", None, None)
    text = arena.versus_table(per_run, c)
    rows = [line.split(" | ") for line in text.splitlines()[2:6]]
    assert [r[1] for r in rows] == ["sampo", "grpo", "cispo", "sapo"]  # ranked by mean final success
    assert rows[0][3:8] == ["+30.0 pt", "[+30.0, +30.0] pt", "↑", "↑ +48.7 %", "yes |"]
    assert rows[2][7] == "not resolved |"
    assert "reproduced on 1 of 2 rows against GRPO; 1 of the 2 intervals exclude zero" in text


def test_versus_unmasked_pairs_each_masked_preset_with_its_unmasked_one():
    def runs(*finals, collapsed=False):
        return {f"s{i}": {"final": f, "collapsed": collapsed} for i, f in enumerate(finals)}

    per_run = {"grpo": runs(0.4, 0.5), "cispo": runs(0.0, 0.1, 0.0, collapsed=True),
               "cispo_sm": runs(0.3, 0.4, 0.2), "grpo_sm": runs(0.5, 0.4), "soft_sapo_sm": runs(0.2)}  # no soft_sapo
    c = arena.versus_unmasked(per_run)
    assert set(c) == {"grpo_sm", "cispo_sm"} and c["cispo_sm"]["reference"] == "cispo"
    assert c["cispo_sm"]["diff"] == pytest.approx(0.8 / 3) and c["cispo_sm"]["seeds"] == ["s0", "s1", "s2"]
    assert (c["cispo_sm"]["ours"], c["cispo_sm"]["paper"], c["cispo_sm"]["agrees"]) == ("↑", "↑", True)
    assert (c["grpo_sm"]["ours"], c["grpo_sm"]["paper"], c["grpo_sm"]["agrees"]) == ("≈", None, None)  # +0.1, −0.1
    rows = [line.split(" | ") for line in arena.unmasked_table(per_run, c).splitlines()[2:]]
    assert rows[1][:6] == ["| cispo_sm", "30.0% ± 10.0%", "0/3", "cispo", "3.3% ± 5.8%", "3/3"]
    assert rows[1][6:] == ["+26.7 pt", "[+20.0, +30.0] pt", "↑", "↑", "yes |"]
    assert rows[0][-2:] == ["–", "– |"]
