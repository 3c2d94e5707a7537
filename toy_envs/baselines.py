"""Reference success rates for every toy family × level: a uniformly random policy and the walkthrough.

    python -m toy_envs.baselines [--games 32] [--episodes 4] [--families coin treasure] [--json out.json]

The random policy picks a uniformly random admissible command every turn (seeded). It is the
floor a trained agent must beat, and what the tiny policy's ``random`` warm-start imitates. The
explorer (``explorer_action``, noise 0.5) is the generic, imperfect teacher whose won episodes the
default ``teacher`` warm-start imitates. The
walkthrough row checks that every generated game is solvable within its turn limit.
Standard errors are over games (each game's success rate averaged over its episodes), because
episodes of one game are not independent.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import time
from typing import Any, Sequence

from toy_envs.env import TextGameEnv
from toy_envs.games import LEVELS, ensure_games


def play_random(env: TextGameEnv, rng: random.Random) -> tuple[dict[str, Any], list[int], list[int]]:
    """One episode of uniformly random admissible commands: (last info, #admissible per turn, obs length per turn)."""
    obs, info = env.reset()
    n_admissible, obs_chars = [], []
    while True:
        n_admissible.append(len(info["admissible_commands"]))
        obs_chars.append(len(obs))
        obs, _, terminated, truncated, info = env.step(rng.choice(info["admissible_commands"]))
        if terminated or truncated:
            return info, n_admissible, obs_chars


NO_OP_VERBS = ("look", "inventory", "examine")  # commands that never change a toy game's state
REVERSE = {"north": "south", "south": "north", "east": "west", "west": "east"}


def explorer_action(commands: list[str], last_action: str | None, rng: random.Random, noise: float = 0.5) -> str:
    """A generic explorer, good but imperfect (the tiny policy's warm-start teacher).

    With probability ``noise`` a uniformly random admissible command; otherwise a uniformly random
    one among those that can change the state (no look / inventory / examine), never walking
    straight back through the exit it just came in by (unless nothing else is left). It knows
    nothing of where the goal is: in a coin game it takes the coin only when its draw picks it.
    """
    if rng.random() < noise:
        return rng.choice(commands)
    useful = [c for c in commands if not c.startswith(NO_OP_VERBS)] or commands
    last = (last_action or "").split()
    back = f"go {REVERSE[last[1]]}" if len(last) == 2 and last[0] == "go" and last[1] in REVERSE else None
    return rng.choice([c for c in useful if c != back] or useful)


def play_explorer(env: TextGameEnv, rng: random.Random, noise: float = 0.5) -> bool:
    """One episode of `explorer_action`: won?"""
    _, info = env.reset()
    last = None
    while True:
        last = explorer_action(info["admissible_commands"], last, rng, noise)
        _, _, terminated, truncated, info = env.step(last)
        if terminated or truncated:
            return info["won"]


def play_walkthrough(env: TextGameEnv) -> tuple[bool, int]:
    """Play the game's walkthrough (stopping at the turn limit): (won, walkthrough length)."""
    _, info = env.reset()
    walkthrough = info["walkthrough"]
    for command in walkthrough:
        _, _, terminated, truncated, info = env.step(command)
        if terminated or truncated:
            break
    return info["won"], len(walkthrough)


def measure(family: str, level: int, games: int, episodes: int, seed: int = 0, workers: int = 2) -> dict[str, Any]:
    """Random and walkthrough success on games seed 0..games-1 of (family, level); one row of the table."""
    rng = random.Random(f"{seed}-{family}-{level}")
    explorer_rng = random.Random(f"{seed}-{family}-{level}-explorer")  # its own stream: the random column stays as it was
    per_game, losses, walk_wins, walk_lengths, n_admissible, obs_chars, explorer = [], [], [], [], [], [], []
    for game_file in ensure_games(family, level, range(games), workers=workers):
        env = TextGameEnv(game_file)
        wins = 0
        for _ in range(episodes):
            info, admissible, chars = play_random(env, rng)
            wins += info["won"]
            losses.append(info["lost"])
            n_admissible += admissible
            obs_chars += chars
        per_game.append(wins / episodes)
        explorer.append(statistics.mean(play_explorer(env, explorer_rng) for _ in range(episodes)))
        won, length = play_walkthrough(env)
        walk_wins.append(won)
        walk_lengths.append(length)
        env.close()
    return {
        "family": family,
        "level": level,
        "max_turns": LEVELS[family][level].max_turns,
        "games": games,
        "episodes": episodes,
        "random_success": statistics.mean(per_game),
        "random_stderr": statistics.stdev(per_game) / math.sqrt(games) if games > 1 else float("nan"),
        "random_lost": statistics.mean(losses),
        "explorer_success": statistics.mean(explorer),
        "explorer_stderr": statistics.stdev(explorer) / math.sqrt(games) if games > 1 else float("nan"),
        "walkthrough_success": statistics.mean(walk_wins),
        "walkthrough_length": statistics.mean(walk_lengths),
        "admissible": statistics.mean(n_admissible),
        "obs_chars": statistics.mean(obs_chars),
        "summary": LEVELS[family][level].summary,
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of `measure` as a markdown table."""
    lines = [
        "| family | level | turn limit | random success % | random lost % | explorer success % "
        "| walkthrough success % | walkthrough length | #admissible | obs chars | what it is |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['level']} | {r['max_turns']} "
            f"| {100 * r['random_success']:.1f} ± {100 * r['random_stderr']:.1f} | {100 * r['random_lost']:.0f} "
            f"| {100 * r['explorer_success']:.1f} ± {100 * r['explorer_stderr']:.1f} "
            f"| {100 * r['walkthrough_success']:.0f} | {r['walkthrough_length']:.1f} "
            f"| {r['admissible']:.1f} | {r['obs_chars']:.0f} | {r['summary']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: measure every requested family × level and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=32, help="games per family × level (seeds 0..games-1)")
    parser.add_argument("--episodes", type=int, default=4, help="random-policy episodes per game")
    parser.add_argument("--families", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--levels", nargs="+", type=int, default=None, help="default: every level of the family")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random policy")
    parser.add_argument("--workers", type=int, default=2, help="processes generating missing games")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows = [measure(family, level, args.games, args.episodes, args.seed, args.workers)
            for family in args.families for level in (args.levels or LEVELS[family])]
    wall = time.perf_counter() - start
    print(format_table(rows))
    print(f"\n{args.games} games × {args.episodes} random episodes per row; wall time {wall:.0f} s on "
          f"{platform.machine()}, Python {platform.python_version()} (generating the games not yet cached included).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "wall_s": wall, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
