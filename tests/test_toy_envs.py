"""Tests of toy_envs: offline game generation and caching, the strict gymnasium env, the batch env.

Games are generated once per session into a temporary cache (coin level 1, two seeds, by two
worker processes: ≈8 s on 2 cores, mostly TextWorld's start-up in each worker).
"""

from __future__ import annotations

import json
import random

import pytest
from gymnasium.utils.env_checker import check_env

from sampo_ref.task import BatchEnv
from toy_envs import INVALID_FEEDBACK, LEVELS, TextGameEnv, ensure_games, game_info, game_path
from toy_envs import env as toy_env
from toy_envs import games as games_module

INVALID_ACTIONS = ["", "   ", "\\", "\\\\", "x" * 10_000, "é漢字", "go nowhere", "take coin please"]


@pytest.fixture
def env(coin_games):
    env = TextGameEnv(coin_games[0])
    yield env
    env.close()


def test_games_are_cached_at_their_path_with_metadata(coin_games):
    assert coin_games == [game_path("coin", 1, 0), game_path("coin", 1, 1)]
    assert coin_games[0].parent.name == "coin-L1" and coin_games[0].name == "seed0.z8"
    assert coin_games[0].read_bytes() != coin_games[1].read_bytes()
    assert game_info(coin_games[1]) == {"family": "coin", "level": 1, "seed": 1, "settings": LEVELS["coin"][1].settings}
    assert not list(coin_games[0].parent.glob(".tmp*")), "temporary build folders must be gone"


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_across_processes(coin_games, tmp_path, monkeypatch):
    # The pool's workers ran with other PYTHONHASHSEEDs than this process; the files must not care.
    monkeypatch.setenv("SAMPO_REF_CACHE", str(tmp_path))
    [again] = ensure_games("coin", 1, [1], workers=1, progress=False)
    assert again == tmp_path / "games/coin-L1/seed1.z8"
    for suffix in (".z8", ".json", ".ni"):
        assert coin_games[1].with_suffix(suffix).read_bytes() == again.with_suffix(suffix).read_bytes(), suffix


def test_cached_games_are_reused_and_half_or_stale_games_regenerated(coin_games, monkeypatch):
    generated = []
    monkeypatch.setattr(games_module, "generate_game", lambda family, level, seed: generated.append(seed))
    stamps = [path.stat().st_mtime_ns for path in coin_games]
    assert ensure_games("coin", 1, [1, 0], workers=1, progress=False) == coin_games[::-1]
    assert generated == [] and [path.stat().st_mtime_ns for path in coin_games] == stamps
    # A run killed between moving the side files and the .z8 leaves a .json alone: not a game.
    half = game_path("coin", 1, 7).with_suffix(".json")
    half.write_text("{}")
    # A game made before the LEVELS table was edited.
    stale = game_path("coin", 1, 8)
    stale.write_bytes(coin_games[0].read_bytes())
    stale.with_suffix(".json").write_text(json.dumps({"metadata": {"toy_envs": {"settings": {"level": 99}}}}))
    ensure_games("coin", 1, [0, 8, 7], workers=1, progress=False)
    assert generated == [7, 8]


@pytest.mark.parametrize("family, level, bad", [("nope", 1, "'nope'"), ("coin", 9, "9"), ("cooking", 0, "0")])
def test_unknown_family_or_level_is_named_in_the_error(family, level, bad):
    with pytest.raises(ValueError, match=bad):
        ensure_games(family, level, [0])


def test_reset_returns_clean_observation_and_all_info_keys(env):
    obs, info = env.reset()
    assert set(info) >= {"admissible_commands", "won", "lost", "raw_observation", "anchor", "room",
                         "walkthrough", "turn"}
    assert info["admissible_commands"] == sorted(info["admissible_commands"]) and "look" in info["admissible_commands"]
    assert info["turn"] == 0 and not info["won"] and not info["lost"]
    assert "$$" in info["raw_observation"] and "$$" not in obs, "the ASCII banner is stripped"
    assert info["raw_observation"].rstrip().endswith("0/1") and not obs.endswith("0/1"), "status line stripped"
    assert "  " not in obs and "\n\n\n" not in obs and obs == obs.strip()
    assert info["anchor"] == f"{info['room']}\n{obs}" and info["room"]
    assert env.observation_space.contains(obs)
    assert env.max_turns == LEVELS["coin"][1].max_turns


def test_anchor_tells_rooms_apart_when_the_text_is_the_same(env):
    _, info = env.reset()
    first = env.step("inventory")
    env.step(info["walkthrough"][0])  # a move to the next room
    second = env.step("inventory")
    assert first[0] == second[0], "TextWorld answers the same text in both rooms"
    assert first[4]["room"] != second[4]["room"] and first[4]["anchor"] != second[4]["anchor"]


def test_look_keeps_the_anchor_only_where_the_room_text_was_already_the_last_observation(env):
    """What tutorials 2 and 5 state: the anchor is the room + the last observation text."""
    _, info = env.reset()
    intro = info["anchor"]
    after_look = env.step("look")[4]["anchor"]
    assert after_look != intro, "on the first turn `look` replaces the intro text: a new anchor"
    assert env.step("look")[4]["anchor"] == after_look, "a second `look` brings the same text back"
    walked_in = env.step(info["walkthrough"][0])[4]["anchor"]  # into the next room
    assert env.step("look")[4]["anchor"] == walked_in, "`look` right after walking in: the same anchor"
    assert env.step("inventory")[4]["anchor"] != walked_in, "`inventory` brings new text: a new anchor"


@pytest.mark.parametrize("win_reward", [1.0, 2.5])
def test_walkthrough_wins_with_reward_exactly_once(coin_games, win_reward):
    env = TextGameEnv(coin_games[1], win_reward=win_reward)
    _, info = env.reset()
    results = [env.step(command) for command in info["walkthrough"]]
    assert [r[1] for r in results] == [0.0] * (len(results) - 1) + [win_reward]
    assert [r[2] for r in results] == [False] * (len(results) - 1) + [True]
    assert not any(r[3] for r in results)
    assert results[-1][4]["won"] and results[-1][4]["turn"] == len(results)
    with pytest.raises(RuntimeError, match="reset"):
        env.step("look")
    env.close()


@pytest.mark.parametrize("action", INVALID_ACTIONS)
def test_invalid_action_is_not_sent_and_changes_nothing(env, action, monkeypatch):
    monkeypatch.setattr(toy_env, "TRANSITIONS", toy_env.Transitions())  # nothing remembered: every step is played
    _, before = env.reset()
    sent = []
    engine_step = env._tw.step
    monkeypatch.setattr(env._tw, "step", lambda command: sent.append(command) or engine_step(command))
    obs, reward, terminated, truncated, info = env.step(action)
    assert (obs, reward, terminated, truncated, sent) == (INVALID_FEEDBACK, 0.0, False, False, [])
    assert info["turn"] == 1 and info["raw_observation"] == INVALID_FEEDBACK
    for key in ("admissible_commands", "room", "anchor", "won", "lost"):
        assert info[key] == before[key], key
    # The state is unchanged: the full walkthrough still wins.
    for command in before["walkthrough"]:
        *_, info = env.step(command)
    assert info["won"] and sent == before["walkthrough"]


def test_remembered_transitions_answer_exactly_as_the_engine(coin_games, monkeypatch):
    """Random episodes on two envs of one game: one answers from the transition memory (filled by
    earlier episodes, so most steps are remembered), the other always from the engine. Every
    observation, reward, flag and info (the raw text with its move counts included) is equal."""
    memory = toy_env.Transitions()
    monkeypatch.setattr(toy_env, "TRANSITIONS", memory)
    remembered, played = TextGameEnv(coin_games[0]), TextGameEnv(coin_games[0])
    rng, steps, hits = random.Random(0), 0, 0
    for _ in range(12):
        assert remembered.reset() == played.reset()
        info, done = remembered._info, False
        while not done:
            action = rng.choice(info["admissible_commands"] + ["go nowhere"])
            hits += (remembered.game_file, remembered._state.key, action) in memory.step
            result = remembered.step(action)
            with monkeypatch.context() as m:
                m.setattr(toy_env, "TRANSITIONS", toy_env.Transitions())
                assert played.step(action) == result, (steps, action)
            info, done, steps = result[4], result[2] or result[3], steps + 1
    assert steps > 100 and hits > steps / 2, "most steps came from the memory"
    # a new step after remembered ones: the engine catches up (reset, replay), then plays it
    monkeypatch.setattr(toy_env, "TRANSITIONS", toy_env.Transitions())
    sent = []
    engine_step = remembered._tw.step
    monkeypatch.setattr(remembered._tw, "step", lambda command: sent.append(command) or engine_step(command))
    _, info = remembered.reset()
    first = info["walkthrough"][0]
    remembered.step(first)  # new: played
    remembered.step("look")  # new: played
    remembered.reset()
    remembered.step(first)  # remembered: the engine is not asked
    assert sent == [first, "look"]
    result = remembered.step("inventory")  # new in that state, and the engine is one step ahead
    assert sent == [first, "look", first, "inventory"]
    played.reset()
    played.step(first)
    assert played.step("inventory") == result


def test_admissible_commands_are_matched_after_strip_and_lower_case(env):
    _, info = env.reset()
    obs, *_, after = env.step("  " + info["walkthrough"][0].upper() + " \n")
    assert obs != INVALID_FEEDBACK and after["room"] != info["room"]


def test_turn_limit_truncates(coin_games):
    env = TextGameEnv(coin_games[0], max_turns=3)
    env.reset()
    flags = [env.step(action)[2:4] for action in ["look", "not a command", "inventory"]]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError):
        env.step("look")
    env.reset()  # a new episode starts from turn 0
    assert env.step("look")[4]["turn"] == 1
    env.close()


def test_passes_gymnasium_env_checker(env):
    check_env(env, skip_render_check=True)


def test_batch_env_steps_copies_independently_and_skips_none(coin_games):
    batch = BatchEnv([TextGameEnv(f, max_turns=10) for f in (coin_games[0], coin_games[0], coin_games[1])])
    first = batch.reset()
    assert len(first) == len(batch) == 3 and first[0] == first[1]
    walkthrough = first[0][1]["walkthrough"]
    results = batch.step([walkthrough[0], "look", None])
    assert results[2] is None
    assert results[0][4]["room"] != results[1][4]["room"], "copies of one game have their own engines"
    for command in walkthrough[1:]:
        results = batch.step([command, None, None])
    assert results[0][4]["won"] and results[1:] == [None, None]
    with pytest.raises(ValueError, match="2 actions for 3 envs"):
        batch.step(["look", "look"])
    assert [obs for obs, _ in batch.reset()] == [obs for obs, _ in first], "reset reuses the engines"
    batch.close()


def test_explorer_never_walks_straight_back_nor_idles():
    """The warm-start teacher without noise: no look/inventory/examine, never the reverse of its last move."""
    import random

    from toy_envs.baselines import explorer_action

    rng = random.Random(0)
    commands = ["examine coin", "go east", "go west", "inventory", "look", "take coin"]
    assert {explorer_action(commands, "go east", rng, noise=0.0) for _ in range(200)} == {"go east", "take coin"}
    assert {explorer_action(commands, None, rng, noise=0.0) for _ in range(200)} == {"go east", "go west", "take coin"}
    assert {explorer_action(["go west", "look"], "go east", rng, noise=0.0) for _ in range(20)} == {"go west"}
    assert {explorer_action(commands, "go east", rng, noise=1.0) for _ in range(400)} == set(commands)


def test_teacher_data_comes_from_won_episodes(coin_games):
    """The warm-start data keeps the turns of won episodes only."""
    from sampo_ref.envs.toy import ToyTask, play

    task = ToyTask("coin", 1, train_games=2, eval_games=0, progress=False)

    follow = {}

    def act(info, past, rng):  # each episode either plays the walkthrough (wins) or idles (never wins)
        if not past:
            follow["now"] = rng.random() < 0.5
        return info["walkthrough"][len(past)] if follow["now"] else "look"

    pairs, success = play(task, task.train_pool, 40, act, seed=0, won_only=True)
    assert len(pairs) == 40 and 0 < success < 1
    assert all(action != "look" for _, action in pairs), "a turn of a lost episode was kept"


def test_the_warm_start_pool_does_not_depend_on_the_runs_pool(coin_games):
    """A smaller run plays the same warm-start games as a larger one: seeds 0 .. n-1, never held out."""
    from sampo_ref.envs.toy import ToyTask

    small = ToyTask("coin", 1, train_games=1, eval_games=1, progress=False)
    large = ToyTask("coin", 1, train_games=2, eval_games=0, progress=False)
    assert small.warm_start_pool(2) == large.warm_start_pool(2) == large.train_pool
    assert small.warm_start_pool(1) == small.train_pool and small.eval_pool[0] not in large.train_pool


def test_the_env_cache_is_bounded_and_a_remade_env_plays_alike(coin_games):
    """At most ``limit`` envs are kept (least recently used games go first, never one of the batch
    asked for); an env made again after its eviction plays exactly as the one that was dropped."""
    from sampo_ref.task import EnvCache

    def play(env) -> list:
        obs, info = env.reset()
        return [obs] + [env.step(action)[:4] for action in ["dance"] + info["walkthrough"]]

    made = []
    cache = EnvCache(lambda game: made.append(game) or TextGameEnv(game), limit=2)
    first = cache.batch([coin_games[0]], 2).envs
    assert len(cache) == 2 and cache.batch([coin_games[0]], 2).envs == first  # reused
    cache.batch([coin_games[1]], 2)
    assert len(cache) == 2  # game 0's envs were dropped
    again = cache.batch([coin_games[0]], 2).envs
    assert not set(map(id, again)) & set(map(id, first)) and len(made) == 6
    assert play(again[0]) == play(TextGameEnv(coin_games[0])) == play(again[1])
    assert len(cache.batch(coin_games, 3)) == 6 and len(cache) == 6  # a batch larger than the limit is kept whole


def test_damaged_cached_games_are_made_again(coin_games, monkeypatch):
    """A garbled .z8 would be played (empty reset text, 'Emulator halted'): the story file's checksum
    finds it, and a damaged .json, so both are made again instead of used."""
    import random

    from toy_envs.games import z8_problem

    assert all(z8_problem(game) is None for game in coin_games)
    good = coin_games[0].read_bytes()
    rng = random.Random(0)
    damaged = {}
    for seed in range(20, 40):  # 2 % of the bytes garbled, at random places
        data = bytearray(good)
        for i in rng.sample(range(len(data)), len(data) // 50):
            data[i] = rng.randrange(256)
        damaged[seed] = bytes(data)
    damaged[40] = good[: len(good) // 2]  # truncated
    damaged[41] = good[:0x300] + bytes([good[0x300] ^ 1]) + good[0x301:]  # one bit
    for seed, data in damaged.items():
        path = game_path("coin", 1, seed)
        path.write_bytes(data)
        path.with_suffix(".json").write_bytes(coin_games[0].with_suffix(".json").read_bytes())
    garbled_json = game_path("coin", 1, 42)
    garbled_json.write_bytes(good)
    garbled_json.with_suffix(".json").write_bytes(b"\x00{not json")
    generated = []
    monkeypatch.setattr(games_module, "generate_game", lambda family, level, seed: generated.append(seed))
    ensure_games("coin", 1, [0, *damaged, 42], workers=1, progress=False)
    assert generated == [*damaged, 42]


def test_toy_prompt_reads_goal_last_actions_and_the_shuffled_list_but_no_room(coin_games):
    """docs/environments.md: the goal, the last H actions, the admissible list in a fresh order;
    the room name (a handle to memorise the training games by) is not shown."""
    from sampo_ref.envs.toy import toy_prompt
    from sampo_ref.task import PromptInput

    env = TextGameEnv(coin_games[0])
    obs, info = env.reset()
    past = []
    for command in info["walkthrough"][:2]:
        past.append((obs, info, command))
        obs, *_, info = env.step(command)
    lines = toy_prompt(PromptInput(obs, obs, info, past, 2), random.Random(0), "coin", history=1).split("\n")
    assert lines[0] == "goal: find the coin and take it"
    assert lines[1] == f"history: {past[-1][2]}"
    assert lines[2].startswith("actions: ") and sorted(lines[2][9:].split("; ")) == sorted(info["admissible_commands"])
    assert len(lines) == 3 and info["room"].lower() not in "\n".join(lines)
    orders = {toy_prompt(PromptInput(obs, obs, info, past, 2), random.Random(s), "coin") for s in range(8)}
    assert len(orders) > 1, "the list is shuffled"
    env.close()
