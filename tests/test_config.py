"""Bad config values stop before any work with one line naming the field, the value and what is allowed."""

import pytest
import torch

from sampo_ref.cli import main
from sampo_ref.config import ConfigError, TrainConfig


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("algo", "ppo-but-not-really", "one of"),
        ("family", "zork", "one of"),
        ("level", 9, "one of"),
        ("group_size", 1, "≥ 2"),
        ("lr", -1e-3, "in (0, 1)"),
        ("lr", 10.0, "in (0, 1)"),
        ("lr", float("inf"), "a finite number"),
        ("win_reward", float("nan"), "a finite number"),
        ("win_reward", float("inf"), "a finite number"),
        ("win_reward", -1.0, "> 0"),
        ("invalid_penalty", float("inf"), "a finite number"),
        ("invalid_penalty", -0.1, "≥ 0"),
        ("kl_coef", float("inf"), "a finite number"),
        ("kl_coef", -0.01, "≥ 0"),
        ("entropy_coef", float("inf"), "a finite number"),
        ("entropy_coef", -0.001, "≥ 0"),
        ("empg_k", float("nan"), "a finite number"),
        ("empg_k", -1.0, "≥ 0"),
        ("empg_k_f", float("nan"), "a finite number"),
        ("empg_k_f", -1.0, "≥ 0"),
        ("temperature", float("inf"), "a finite number"),
        ("eval_games", 0, "≥ 1"),
        ("samples", -1, "≥ 0"),
        ("device", "banana", "a device of this machine"),
        ("device", f"cuda:{torch.cuda.device_count()}", "a device of this machine"),  # one past the last
        ("ref_device", "cuda:abc", "a device of this machine"),
        ("run_dir", "/dev/null/x", "a directory that can be created and written"),
        ("model", "/etc", "holds no config.json naming a model_type"),
        ("model", "docs", "holds no config.json naming a model_type"),
        ("clip_low", 1.5, "in [0, 1]"),
        ("dual_clip", 1.0, "> 1"),
        ("loss_agg", "mean", "one of"),
        ("micro_batch_size", 1000, "in [1, mini_batch_size"),
        ("train_games", 4, "≥ tasks_per_iter"),
        ("temperature", 0.0, "> 0"),
        ("top_p", 0.0, "in (0, 1]"),
        ("mini_batch_size", 100_000, "the most turn-rows a rollout batch can hold"),
        ("model", "./no-such-model-dir", "there is no such folder"),
        ("model", "gpt-nonsense", "a hub id 'owner/name'"),
    ],
)
def test_bad_value_names_field_value_and_allowed(field, value, expected):
    cfg = TrainConfig(**{field: value})
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    message = str(err.value)
    assert message.startswith(f"{field}={value!r}") and expected in message and "\n" not in message


def test_cli_prints_the_message_and_exits(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--group-size", "1"])
    assert "group_size=1 is not allowed" in str(exit_info.value.code)


def test_unknown_fields_are_rejected():
    with pytest.raises(ConfigError, match="unknown config field"):
        TrainConfig.from_dict({"lr": 1e-3, "learning_rate": 1e-3})


def test_a_run_directory_is_never_overwritten(tmp_path):
    from sampo_ref.trainer import train

    (tmp_path / "metrics.jsonl").write_text('{"iteration": 0}\n')
    with pytest.raises(ConfigError, match="already holds a run"):
        train(TrainConfig(run_dir=str(tmp_path)))
    assert (tmp_path / "metrics.jsonl").read_text() == '{"iteration": 0}\n'


def test_missing_alfworld_data_dir_says_how_to_get_it(tmp_path):
    from sampo_ref.envs.alfworld import data_problem

    if data_problem(tmp_path).startswith("env='alfworld' needs the alfworld package"):
        pytest.skip("alfworld is not installed (the dev extra installs it)")
    cfg = TrainConfig(env="alfworld", alfworld_data=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"alfworld_data='.*nowhere' has no json_2.1.1/train: .*alfworld-download"):
        cfg.validate()


def test_a_config_round_trips_exactly():
    cfg = TrainConfig(algo="sampo", lr=1e-3, seq_mask=False, run_dir="runs/x")
    d = cfg.to_dict()
    assert d["config_version"] >= 1 and TrainConfig.from_dict(d) == cfg


def _config_file(tmp_path, edit):
    import json

    d = TrainConfig(algo="sampo").to_dict()
    content = edit(d)
    if isinstance(content, bytes):
        (tmp_path / "config.json").write_bytes(content)
    else:
        (tmp_path / "config.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return tmp_path


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: {k: v for k, v in d.items() if k != "algo"}, "field 'algo' is missing"),
        (lambda d: {**d, "seq_mask": "false"}, "seq_mask='false' is not allowed: expected true or false"),
        (lambda d: {**d, "lr": "0.001"}, "lr='0.001' is not allowed: expected a number"),
        (lambda d: {**d, "group_size": 8.0}, "group_size=8.0 is not allowed: expected an integer"),
        (lambda d: {**d, "run_dir": 3}, "run_dir=3 is not allowed: expected a string or null"),
        (lambda d: {k: v for k, v in d.items() if k != "config_version"}, "config_version=None is not allowed"),
        (lambda d: {**d, "config_version": 99}, "config_version=99 is not allowed"),
        (lambda d: list(d.items()), "a config is a JSON object of fields; got a list"),
        (lambda d: __import__("json").dumps(d)[:200], "not readable JSON"),
        (lambda d: b"\xff\xfe\x00 not text", "not readable JSON"),
    ],
)
def test_a_run_config_that_cannot_be_read_exactly_is_refused(tmp_path, edit, expected):
    """No default fills a gap: a SAMPO run whose config lost a field would otherwise resume as GRPO."""
    _config_file(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        TrainConfig.read(tmp_path)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "config.json")) and expected in message and "\n" not in message


def test_resume_of_a_bad_config_prints_one_line(tmp_path):
    _config_file(tmp_path, lambda d: {**d, "seq_mask": "false"})
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", str(tmp_path)])
    assert "seq_mask='false' is not allowed" in exit_info.value.code and "\n" not in exit_info.value.code


def test_a_bad_model_leaves_no_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "docs", "--run-dir", str(run_dir)])
    assert "model='docs' is not allowed" in exit_info.value.code and not run_dir.exists()
