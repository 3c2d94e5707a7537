"""Bad config values stop before any work with one line naming the field, the value and what is allowed."""

import pytest

from sampo_ref.cli import main
from sampo_ref.config import ConfigError, TrainConfig


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("algo", "ppo-but-not-really", "one of"),
        ("family", "zork", "one of"),
        ("level", 9, "one of"),
        ("group_size", 1, "≥ 2"),
        ("lr", -1e-3, "> 0"),
        ("clip_low", 1.5, "in [0, 1]"),
        ("dual_clip", 1.0, "> 1"),
        ("loss_agg", "mean", "one of"),
        ("micro_batch_size", 1000, "in [1, mini_batch_size"),
        ("train_games", 4, "≥ tasks_per_iter"),
        ("temperature", 0.0, "> 0"),
        ("top_p", 0.0, "in (0, 1]"),
        ("mini_batch_size", 100_000, "the most turn-rows a rollout batch can hold"),
        ("model", "./no-such-model-dir", "an existing save_pretrained directory"),
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
