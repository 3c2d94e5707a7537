"""sampo-ref plot: several runs side by side, seeds of one setting as mean ± std."""

import json

import pytest

from sampo_ref.cli import main
from sampo_ref.config import TrainConfig
from sampo_ref.plots import _labels, _setting, draw_runs


def fake_run(path, seed, lr, values):
    path.mkdir()
    (path / "config.json").write_text(json.dumps(TrainConfig(seed=seed, lr=lr).to_dict()))
    records = [{"iteration": 0, "eval/success": 0.2}]
    records += [{"iteration": i + 1, "rollout/success": v, "actor/grad_norm": 1.0, "loss/kl": 0.01 * i}
                for i, v in enumerate(values)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"iteration": 9, "tor')
    return path


@pytest.mark.slow
def test_plot_writes_a_png_and_groups_seeds(tmp_path):
    runs = [fake_run(tmp_path / "a0", 0, 5e-4, [0.1, 0.5]), fake_run(tmp_path / "a1", 1, 5e-4, [0.3, 0.7]),
            fake_run(tmp_path / "b0", 0, 1e-3, [0.2, 0.2])]
    out = tmp_path / "cmp.png"
    main(["plot", *map(str, runs), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    settings = [_setting(r) for r in runs]
    assert settings[0] == settings[1] != settings[2]  # the seed is not part of the setting
    assert _labels([settings[0], settings[2]]) == ["grpo · coin L4, lr=0.0005", "grpo · coin L4, lr=0.001"]


def test_plot_names_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(SystemExit, match="expected a run directory"):
        main(["plot", str(tmp_path), "--out", str(tmp_path / "x.png")])


def test_iteration_ticks_are_whole_numbers(tmp_path):
    """Two iterations must not be labelled 1.5, 2.5: every panel's x ticks are integers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw_runs([fake_run(tmp_path / "a0", 0, 5e-4, [0.1, 0.5])])
    fig.canvas.draw()
    for ax in fig.axes:
        if not ax.lines:
            continue
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
    plt.close(fig)
