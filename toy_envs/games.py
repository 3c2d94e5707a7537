"""Toy TextWorld games, generated offline and cached on disk by (family, level, seed).

TextWorld 1.7.0 bundles the Inform7 compilers, so every game is made in-process with
``textworld.challenges.<family>.make`` and compiled to a ``.z8`` story file (``.ulx`` is not
supported in 1.7.0). The cache layout is::

    $SAMPO_REF_CACHE/games/<family>-L<level>/seed<seed>.z8   (default cache: ~/.cache/sampo_ref)
                                            /seed<seed>.json  (TextWorld's game data: walkthrough, ...)
                                            /seed<seed>.ni    (the Inform7 source)

A game is built in a temporary folder next to its final place and moved there with
``os.replace``, ``.z8`` last, so a killed run never leaves a half-written game behind (at most a
hidden ``.tmp-*`` folder). The game's .json records the settings it was made with; a cached game
whose settings differ from ``LEVELS`` (the table was edited) is made again, and so is one whose
.json does not parse or whose .z8 fails the story file's own checksum (the Z-machine header holds
the sum of every byte from 0x40 to the declared length, written by the compiler). The same seed gives
byte-identical files, on any day and under any PYTHONHASHSEED (see the last two helpers).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from sampo_ref import cache  # the one place that says where caches live (a leaf module)

# family → TextWorld challenge name.
FAMILIES: dict[str, str] = {
    "coin": "tw-coin_collector",  # walk along a chain of rooms to the coin, take it
    "treasure": "tw-treasure_hunter",  # find the named object in a small maze and take it; taking the wrong one loses
    "cooking": "tw-cooking",  # fetch the ingredients, prepare the meal, eat it; burning or eating an ingredient loses
}


@dataclass(frozen=True)
class Level:
    """One difficulty level of a family: what TextWorld is asked for, and the episode length."""

    settings: dict[str, Any]  # passed as-is to textworld.challenges.<family>.make
    max_turns: int  # default turn limit of an episode
    summary: str  # what the level is, in words


# The difficulty table. Random-policy and walkthrough success rates are measured by
# `python -m toy_envs.baselines` and published in docs/toy_baselines.md.
LEVELS: dict[str, dict[int, Level]] = {
    "coin": {  # TextWorld level n ≤ 100: a chain of n rooms; 100 + n: the chain plus a dead-end room off each
        1: Level({"level": 3}, 20, "chain of 3 rooms"),
        2: Level({"level": 103}, 20, "chain of 3 rooms, a dead end off each (6 rooms)"),
        3: Level({"level": 105}, 20, "chain of 5 rooms, a dead end off each (10 rooms)"),
        4: Level({"level": 8}, 20, "chain of 8 rooms"),
    },
    "treasure": {  # TextWorld levels 1-10: 5 open rooms, quest of 1-5 moves; 11-20: 10 rooms with doors and containers
        1: Level({"level": 1}, 20, "5 rooms, the object is in the start room"),
        2: Level({"level": 8}, 20, "5 rooms, a 4-command quest (3 moves, then take)"),
        3: Level({"level": 15}, 30, "10 rooms with closed doors and containers, a ~6-command quest"),
    },
    "cooking": {  # skills of tw-cooking: recipe = #ingredients, take = #to fetch, go = #rooms, open = closed doors
        1: Level({"recipe": 1, "take": 1, "go": 1, "split": "train", "recipe_seed": 0}, 20,
                 "kitchen only: fetch 1 ingredient, prepare and eat the meal"),
        2: Level({"recipe": 1, "take": 1, "go": 6, "split": "train", "recipe_seed": 0}, 30,
                 "6 rooms: find the kitchen, fetch 1 ingredient"),
        3: Level({"recipe": 2, "take": 2, "go": 6, "open": True, "split": "train", "recipe_seed": 0}, 40,
                 "6 rooms with closed doors: fetch 2 ingredients"),
    },
}

_GENERATION_ATTEMPTS = 10  # treasure hunter may find no quest for a seed (5 of 16 at its level 10): retry


def check_family_level(family: str, level: int) -> Level:
    """Return the `Level` of (family, level); raise a ValueError naming the bad value."""
    if family not in LEVELS:
        raise ValueError(f"unknown toy game family {family!r}; expected one of {sorted(LEVELS)}")
    if level not in LEVELS[family]:
        raise ValueError(f"unknown level {level!r} for family {family!r}; expected one of {sorted(LEVELS[family])}")
    return LEVELS[family][level]


def cache_dir() -> Path:
    """The game cache: `$SAMPO_REF_CACHE/games`, else `~/.cache/sampo_ref/games` (`sampo_ref.cache`)."""
    return cache.games()


def game_path(family: str, level: int, seed: int) -> Path:
    """Where the `.z8` file of (family, level, seed) lives in the cache (it may not exist yet)."""
    check_family_level(family, level)
    return cache_dir() / f"{family}-L{level}" / f"seed{seed}.z8"


def game_info(game_file: str | os.PathLike) -> dict[str, Any]:
    """The toy_envs metadata of a generated game: {"family", "level", "seed", "settings"}, or {} for other games."""
    data = json.loads(Path(game_file).with_suffix(".json").read_text())
    return data.get("metadata", {}).get("toy_envs", {})


def ensure_games(family: str, level: int, seeds: Iterable[int], workers: int = 2,
                 progress: bool = True) -> list[Path]:
    """Generate the games of `seeds` missing from the cache; return all their paths, in the order of `seeds`.

    Missing (or stale) games are compiled in a pool of `workers` processes (in-process when one worker
    or one game suffices), with a tqdm progress bar showing rate and ETA. Cached games are reused.
    Two processes that need the same games make them once: the second waits on a lock file beside
    them, then finds them cached.
    """
    seeds = [int(seed) for seed in seeds]
    paths = [game_path(family, level, seed) for seed in seeds]
    settings = check_family_level(family, level).settings
    if not any(_cache_problem(path, settings) for path in paths):
        return paths
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    with FileLock(paths[0].parent / ".lock"):
        _make_missing(family, level, seeds, paths, settings, workers, progress)
    return paths


def _make_missing(family: str, level: int, seeds: list[int], paths: list[Path], settings: dict, workers: int,
                  progress: bool) -> None:
    problems = {seed: _cache_problem(path, settings) for seed, path in zip(seeds, paths)}
    missing = sorted(seed for seed, problem in problems.items() if problem)
    for seed in missing:
        if problems[seed] != "not cached":
            tqdm.write(f"games: {game_path(family, level, seed)} {problems[seed]}; making it again")
    bar = tqdm(total=len(missing), desc=f"games {family}-L{level}", unit="game", disable=not progress or not missing)
    with bar:
        if workers <= 1 or len(missing) <= 1:
            for seed in missing:
                generate_game(family, level, seed)
                bar.update()
        else:
            # spawn, not fork: the parent may hold torch threads or a loaded frotz library.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(missing)), mp_context=context) as pool:
                for future in as_completed([pool.submit(generate_game, family, level, s) for s in missing]):
                    future.result()  # re-raise a worker's error here
                    bar.update()


def generate_game(family: str, level: int, seed: int) -> Path:
    """Generate and compile one game into the cache (atomically), overwriting any previous copy."""
    # Imported here: `import textworld` costs ≈0.7 s and only generation needs these modules.
    import textworld
    import textworld.challenges
    from jericho import UnsupportedGameWarning
    from textworld.generator import QuestGenerationError
    from textworld.generator.game import GameOptions

    final = game_path(family, level, seed)
    final.parent.mkdir(parents=True, exist_ok=True)
    make = textworld.challenges.CHALLENGES[FAMILIES[family]][1]
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".tmp-seed{seed}-") as tmp:
        for attempt in range(_GENERATION_ATTEMPTS):
            options = GameOptions()
            options.path = str(Path(tmp) / final.name)
            options.seeds = int(seed) if attempt == 0 else _derived_seeds(seed, attempt)
            try:
                with warnings.catch_warnings():  # coin collector plays its walkthrough in Jericho to check it
                    warnings.simplefilter("ignore", UnsupportedGameWarning)
                    game = make(dict(LEVELS[family][level].settings), options)
                break
            except QuestGenerationError:
                continue
        else:
            raise RuntimeError(f"no {family}-L{level} game for seed {seed} after {_GENERATION_ATTEMPTS} attempts")
        game.metadata["toy_envs"] = {"family": family, "level": level, "seed": seed,
                                     "settings": LEVELS[family][level].settings}
        _make_deterministic(game)
        compiled = Path(textworld.generator.compile_game(game, options))
        _clear_serial_number(compiled)
        # A game counts as cached once its .z8 exists: remove an old one first, move the new one last.
        final.unlink(missing_ok=True)
        for side in sorted(Path(tmp).iterdir()):
            if side.suffix != ".z8":
                os.replace(side, final.parent / side.name)
        os.replace(compiled, final)
    return final


def _cache_problem(path: Path, settings: dict[str, Any]) -> str | None:
    """Why the game at `path` must be made (again), or None if a whole, intact game made with `settings` is there.
    (A killed run may leave a .json without its .z8.)"""
    if not path.is_file() or not path.with_suffix(".json").is_file():
        return "not cached"
    try:
        made_with = game_info(path).get("settings")
    except (OSError, ValueError, AttributeError):  # a .json that is not JSON, or not an object
        return "has a damaged .json"
    return "was made with other settings" if made_with != settings else z8_problem(path)


def z8_problem(path: Path) -> str | None:
    """Why the story file at `path` is not an intact Z-machine version 8 file, or None.

    The header's length field (word 0x1A, in units of 8 bytes) and checksum (word 0x1C: the sum
    of the bytes from 0x40 to that length, modulo 0x10000) are written by the compiler; a
    truncated or garbled file fails them. Inform pads the file to a multiple of 512 bytes.
    """
    data = path.read_bytes()
    if len(data) < 0x40 or data[0] != 8:
        return "is not a Z-machine version 8 story file"
    length = int.from_bytes(data[0x1A:0x1C], "big") * 8
    if not 0x40 <= length <= len(data) < length + 512:
        return f"has {len(data)} bytes where its header declares {length}"
    checksum = int(np.frombuffer(data, dtype=np.uint8, count=length - 0x40, offset=0x40).sum(dtype=np.uint64)) % 0x10000
    return None if checksum == int.from_bytes(data[0x1C:0x1E], "big") else "fails its Z-machine checksum"


def _derived_seeds(seed: int, attempt: int) -> dict[str, int]:
    """Deterministic retry seeds for (seed, attempt), one per TextWorld random stream."""
    rng = np.random.RandomState([seed, attempt])
    return {key: int(rng.randint(65635)) for key in ("map", "objects", "quest", "grammar")}


def _make_deterministic(game: Any) -> None:
    """Sort the one list TextWorld builds from a set, so the saved .json does not depend on PYTHONHASHSEED."""
    if game.grammar is not None:
        game.grammar.options.names_to_exclude = sorted(game.grammar.options.names_to_exclude, key=str)


def _clear_serial_number(z8_file: Path) -> None:
    """Inform stamps the compile date (YYMMDD) into header bytes 0x12-0x17; zero it so builds on any day match.

    The Z-machine checksum covers bytes from 0x40 on, so the story file stays valid.
    """
    data = bytearray(z8_file.read_bytes())
    data[0x12:0x18] = b"000000"
    z8_file.write_bytes(bytes(data))
