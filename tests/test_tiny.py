"""The tiny default policy: deterministic, cached, and invisible to the caller's random streams."""

import pytest
import torch
from safetensors.torch import load_file

from sampo_ref.config import ConfigError, TrainConfig
from sampo_ref.policy import load_policy
from sampo_ref.tiny import TinyConfig, build_tiny, tiny_config

CFG = TinyConfig(vocab_size=300, hidden_size=16, layers=1, heads=2, intermediate_size=32, warm_start_examples=64,
                 warm_start_epochs=2, warm_start_batch=16)
EXAMPLES = [(f"goal: find the coin\nroom: r{i % 7}\nactions: go east; look; take coin", ["go east", "look"][i % 2])
            for i in range(64)]


def test_build_is_deterministic_cached_and_leaves_the_random_stream_alone(tmp_path):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build_tiny(CFG, lambda: (EXAMPLES, {}), {"data": "test"}, tmp_path / "a")
    assert torch.equal(torch.get_rng_state(), state), "building must not move the caller's torch RNG"
    b = build_tiny(CFG, lambda: (EXAMPLES, {}), {"data": "test"}, tmp_path / "b")
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert build_tiny(CFG, lambda: pytest.fail("rebuilt a cached policy"), {"data": "test"}, tmp_path / "a") == a
    assert not list((tmp_path / "a").glob(".tmp-*")), "no half-built policy left behind"


def test_build_runs_on_one_thread_and_gives_the_callers_threads_back(tmp_path, monkeypatch):
    """The imitation is sensitive to float rounding (docs/results.md#how-robust-the-warm-start-is):
    on one torch thread the build does not depend on the core count, and the caller keeps its own count."""
    from sampo_ref import tiny

    seen, original = [], tiny.warm_start
    monkeypatch.setattr(tiny, "warm_start", lambda *args: seen.append(torch.get_num_threads()) or original(*args))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        build_tiny(CFG, lambda: (EXAMPLES, {}), {"data": "threads"}, tmp_path)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_two_processes_that_need_the_same_policy_build_it_once(tmp_path):
    """The second caller waits on the build's lock file and reuses the first one's policy."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        built = list(pool.map(_build_counting, [tmp_path] * 2))
    assert built[0][0] == built[1][0] and sorted(n for _, n in built) == [0, 1], built


def _build_counting(root):
    """Build CFG in ``root``; returns (its directory, how many times this process made the examples)."""
    made = []
    path = build_tiny(CFG, lambda: made.append(1) or (EXAMPLES, {}), {"data": "lock"}, root)
    return path, len(made)


@pytest.mark.slow
def test_warm_start_teaches_the_format(tmp_path):
    """After the warm-start the policy answers <action>…</action> with an admissible action."""
    cfg = TinyConfig(**{**CFG.__dict__, "hidden_size": 32, "warm_start_epochs": 30, "warm_start_lr": 1e-2})
    policy = load_policy(str(build_tiny(cfg, lambda: (EXAMPLES, {}), {"data": "test"}, tmp_path)), torch.device("cpu"))
    torch.manual_seed(0)
    gens = policy.generate([EXAMPLES[0][0]] * 8, max_new_tokens=12)
    assert all(g.text.startswith("<action>") and g.text.endswith("</action>") for g in gens)


@pytest.mark.slow  # builds a small policy four times
@pytest.mark.parametrize("name, damage", [("model.safetensors", "truncate"), ("tokenizer.json", "garble"),
                                          ("config.json", "delete")])
def test_a_damaged_tiny_cache_is_built_again(tmp_path, name, damage):
    """A cached policy whose files differ from the SHA-256 recorded at build time is never used:
    it is built again (the same bytes: the build is deterministic)."""
    out = build_tiny(CFG, lambda: (EXAMPLES, {}), {"data": "test"}, tmp_path)
    good = (out / name).read_bytes()
    if damage == "truncate":
        (out / name).write_bytes(good[: len(good) // 2])
    elif damage == "garble":
        (out / name).write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    else:
        (out / name).unlink()
    calls = []
    again = build_tiny(CFG, lambda: calls.append(1) or (EXAMPLES, {}), {"data": "test"}, tmp_path)
    assert again == out and calls == [1] and (out / name).read_bytes() == good


def test_a_runs_tiny_changes_the_recipe_typed_as_its_fields():
    assert tiny_config(["warm_start_lr=1e-3", "seed=1", "warm_start=random", "seed=2"]) == \
        TinyConfig(warm_start_lr=1e-3, seed=2, warm_start="random")  # the last change of a field wins
    assert tiny_config([]) == TinyConfig() == TrainConfig().tiny_config()
    assert TrainConfig(env="alfworld").tiny_config() == TinyConfig(warm_start="random")  # no teacher there
    assert TrainConfig(env="alfworld", tiny=["seed=3"]).tiny_config() == TinyConfig(warm_start="random", seed=3)


@pytest.mark.parametrize("tiny, named", [
    (["lr=1e-3"], "'lr=1e-3' is not allowed: expected KEY=VALUE with KEY one of"),
    (["seed"], "'seed' is not allowed"),
    (["seed=one"], "'one' is not a valid int"),
    (["random_share=1.5"], "random_share=1.5 is not allowed: expected in [0, 1]"),
    (["warm_start=expert"], "warm_start='expert' is not allowed: expected teacher or random"),
    (["warm_start_examples=0"], "warm_start_examples=0 is not allowed: expected ≥ 1"),
])
def test_a_bad_tiny_change_is_named_in_one_line(tiny, named):
    with pytest.raises(ConfigError) as err:
        TrainConfig(tiny=tiny).validate()
    assert named in str(err.value) and "\n" not in str(err.value)


def test_the_teacher_is_refused_on_alfworld():
    with pytest.raises(ConfigError, match="expected warm_start=random"):
        TrainConfig(env="alfworld", tiny=["warm_start=teacher"]).validate()


def test_a_build_without_progress_prints_nothing(tmp_path, capsys):
    """``--no-progress`` (the arena's worker processes) reaches the imitation's bar too."""
    build_tiny(CFG, lambda: (EXAMPLES, {}), {"data": "test"}, tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""
    build_tiny(CFG, lambda: (EXAMPLES, {}), {"data": "test"}, tmp_path / "loud")
    assert "tiny: warm-start" in capsys.readouterr().err
