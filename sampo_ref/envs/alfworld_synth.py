"""Small synthetic ALFWorld games, written in ALFWorld's own file format (docs/alfworld.md#1-install-and-get-the-data), for offline use.

The real ALFWorld data (3,553 training games) is downloaded from github.com with
``alfworld-download``, which this project's machines cannot reach. The real ``alfworld``
machinery (loader, demangler, grammar, PDDL engine, handcoded expert, fast-downward planner)
runs unchanged on games that follow the same layout::

    <data>/logic/alfred.pddl, alfred.twl2                        (copied from the alfworld wheel)
    <data>/json_2.1.1/<split>/<task_type>-<Object>-None-<Recep>-<scene>/trial_T<n>/
        initial_state.pddl   the PDDL problem (domain ``alfred``), ALFRED-style mangled names
        traj_data.json       task_type, task_id, pddl_params, turk_annotations, scene
        game.tw-pddl         {pddl_domain, grammar (task filled in), pddl_problem, solvable, walkthrough}

Every game is one kitchen-like room with a fixed set of receptacles; a seeded draw places the
objects, the agent and the task's target. The goal is ALFWorld's own goal formula for the task
type (``alfworld.gen.goal_library``) and the task sentence comes from ALFWorld's own templates
(``add_task_to_grammar``), so a game reads like a real one:
"-= Welcome to TextWorld, ALFRED! =- … Your task is to: put a apple in cabinet."

    python -m sampo_ref.envs.alfworld_synth DIR [--games-per-type 2]   writes a small data folder
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "valid_seen", "valid_unseen")

# receptacle type → (how many, openable)
RECEPTACLES = {
    "CounterTop": (2, False), "Cabinet": (2, True), "Drawer": (1, True), "DiningTable": (1, False),
    "Fridge": (1, True), "Microwave": (1, True), "SinkBasin": (1, False), "SideTable": (1, False),
}
# object type → (instances, properties)
OBJECTS = {
    "Apple": (1, ("cleanable", "heatable", "coolable")), "Mug": (1, ("cleanable", "heatable", "coolable")),
    "Egg": (1, ("heatable", "coolable")), "Potato": (1, ("cleanable", "heatable", "coolable")),
    "Book": (2, ()), "CellPhone": (2, ()),
}
LAMP = "DeskLamp"  # the toggleable object of look_at_obj_in_light, always on the side table
# where a loose object may start (not inside a fridge or microwave, so "cool"/"heat" is never done already)
START_RECEPTACLES = ("CounterTop", "Cabinet", "Drawer", "DiningTable", "SideTable")


@dataclass(frozen=True)
class TaskSpec:
    """Which objects and target receptacles a task type may draw."""

    objects: tuple[str, ...]
    receptacles: tuple[str, ...]  # parent_target choices ("" for look_at_obj_in_light)


TASKS = {
    "pick_and_place_simple": TaskSpec(("Apple", "Mug", "Book", "CellPhone"), ("Cabinet", "Drawer", "DiningTable", "CounterTop")),
    "look_at_obj_in_light": TaskSpec(("Book", "CellPhone", "Mug"), ("",)),
    "pick_clean_then_place_in_recep": TaskSpec(("Apple", "Mug", "Potato"), ("Cabinet", "DiningTable", "CounterTop")),
    "pick_heat_then_place_in_recep": TaskSpec(("Egg", "Apple", "Potato", "Mug"), ("CounterTop", "DiningTable")),
    "pick_cool_then_place_in_recep": TaskSpec(("Apple", "Egg", "Potato", "Mug"), ("DiningTable", "Cabinet", "CounterTop")),
    "pick_two_obj_and_place": TaskSpec(("Book", "CellPhone"), ("Drawer", "Cabinet", "DiningTable")),
}


def mangle(kind: str, rng: random.Random) -> str:
    """An ALFRED-style id, e.g. ``Apple_bar__plus_00_dot_97_bar__minus_02_dot_64_bar__plus_01_dot_10``
    (``Apple|+00.97|-02.64|+01.10``), which alfworld's demangler turns into "apple 1"."""
    coords = [f"{rng.uniform(-3, 3):+06.2f}" for _ in range(3)]
    text = "|".join([kind, *coords])
    if kind == "SinkBasin":  # ALFRED names a basin after its sink: Sink|…|SinkBasin
        text = "|".join(["Sink", *coords, "SinkBasin"])
    return text.replace("|", "_bar_").replace("+", "_plus_").replace("-", "_minus_").replace(".", "_dot_")


def location(rng: random.Random) -> str:
    """An ALFRED-style location id, e.g. ``loc_bar_4_bar__minus_3_bar_1_bar_45``."""
    parts = [str(rng.randint(-8, 8)), str(rng.randint(-8, 8)), str(rng.randint(0, 3)), str(rng.choice([0, 30, 45, 60]))]
    return "loc_bar_" + "_bar_".join(p.replace("-", "_minus_") for p in parts)


def problem_text(task_type: str, obj: str, recep: str, rng: random.Random) -> str:
    """The PDDL problem of one game: a room, its objects, and ALFWorld's goal for ``task_type``."""
    from alfworld.gen import goal_library

    while True:  # fresh ids and locations until all are distinct
        recs = {mangle(kind, rng): kind for kind, (n, _) in RECEPTACLES.items() for _ in range(n)}
        objs = {mangle(kind, rng): kind for kind, (n, _) in OBJECTS.items() for _ in range(n)}
        lamp = mangle(LAMP, rng)
        locs = [location(rng) for _ in range(len(recs) + 1)]
        if len(recs) + len(objs) + 1 == len({*recs, *objs, lamp}) and len(set(locs)) == len(locs):
            break
    rec_loc = dict(zip(recs, locs[1:]))
    by_type = {kind: [r for r, k in recs.items() if k == kind] for kind in RECEPTACLES}
    # every instance of the target object starts outside receptacles of the target type
    start_choices = [r for r, k in recs.items() if k in START_RECEPTACLES and k != recep]
    placement = {o: rng.choice(start_choices if k == obj else [r for r, k2 in recs.items() if k2 in START_RECEPTACLES])
                 for o, k in objs.items()}
    placement[lamp] = by_type["SideTable"][0]

    otypes = sorted({*OBJECTS, LAMP})
    objects = [f"{o} - object" for o in [*objs, lamp]] + [f"{r} - receptacle" for r in recs]
    objects += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in RECEPTACLES]
    objects += [f"{loc} - location" for loc in locs] + ["agent1 - agent"]
    init = [f"(atLocation agent1 {locs[0]})"]
    for r, kind in recs.items():
        init += [f"(receptacleType {r} {kind}Type)", f"(receptacleAtLocation {r} {rec_loc[r]})"]
        init += [f"(openable {r})"] if RECEPTACLES[kind][1] else []
    for o, kind in [*objs.items(), (lamp, LAMP)]:
        init += [f"(objectType {o} {kind}Type)", f"(inReceptacle {o} {placement[o]})",
                 f"(objectAtLocation {o} {rec_loc[placement[o]]})"]
        init += [f"({prop} {o})" for prop in OBJECTS.get(kind, (0, ()))[1]]
        init += [f"(pickupable {o})"] if kind != LAMP else [f"(toggleable {o})"]
    init += [f"(canContain {r}Type {o}Type)" for r in RECEPTACLES for o in OBJECTS]
    goal = goal_library.gdict[task_type]["pddl"].format(obj=obj, recep=recep, toggle=LAMP).replace("#", "-")
    indent = "\n        "
    return (f"(define (problem synthetic_{task_type})\n    (:domain alfred)\n    (:objects{indent}"
            + indent.join(objects) + f"\n    )\n    (:init{indent}" + indent.join(init) + "\n    )\n" + goal.strip() + "\n")


def task_sentence_grammar(grammar: str, traj_data: dict, seed: int) -> str:
    """alfworld's ``add_task_to_grammar`` (it draws a template with the global ``random``), made
    deterministic: the global stream is seeded for the call and restored afterwards."""
    from alfworld.agents.utils.misc import add_task_to_grammar

    state = random.getstate()
    random.seed(seed)
    try:
        return add_task_to_grammar(grammar, traj_data)
    finally:
        random.setstate(state)


def write_game(data_dir: Path, split: str, task_type: str, index: int, seed: int) -> Path:
    """Write one trial; returns its ``game.tw-pddl`` path. Same arguments, same bytes."""
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    if task_type not in TASKS:
        raise ValueError(f"task_type={task_type!r} is not allowed: expected one of {sorted(TASKS)}")
    rng = random.Random(f"{split}/{task_type}/{index}/{seed}")
    spec = TASKS[task_type]
    obj, recep = rng.choice(spec.objects), rng.choice(spec.receptacles)
    scene = rng.randint(1, 30)
    trial = data_dir / "json_2.1.1" / split / f"{task_type}-{obj}-None-{recep or LAMP}-{scene}" / f"trial_T{index:05d}_{seed}"
    trial.mkdir(parents=True, exist_ok=True)
    problem = problem_text(task_type, obj, recep, rng)
    traj_data = {
        "task_type": task_type,
        "task_id": f"trial_T{index:05d}_{seed}",
        "pddl_params": {"object_target": obj, "parent_target": recep, "toggle_target": LAMP if not recep else "",
                        "mrecep_target": "", "object_sliced": False},
        "turk_annotations": {"anns": [{"task_desc": f"Synthetic {task_type.replace('_', ' ')} task."}]},
        "scene": {"floor_plan": f"FloorPlan{scene}", "scene_num": scene},
    }
    grammar = task_sentence_grammar(Path(ALFRED_TWL2_PATH).read_text(), traj_data, rng.randint(0, 2**31))
    game = {"pddl_domain": Path(ALFRED_PDDL_PATH).read_text(), "grammar": grammar, "pddl_problem": problem,
            "solvable": True, "walkthrough": None}
    (trial / "initial_state.pddl").write_text(problem)
    (trial / "traj_data.json").write_text(json.dumps(traj_data, indent=2))
    (trial / "game.tw-pddl").write_text(json.dumps(game))
    return trial / "game.tw-pddl"


def write_games(data_dir: str | Path, games_per_type: int | dict[str, int] = 1,
                task_types: tuple[str, ...] = tuple(TASKS), seed: int = 0) -> dict[str, list[Path]]:
    """A data folder with ``games_per_type`` games of each task type in each split (or a dict
    split → count), plus ``logic/``. Returns the game files per split."""
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    data_dir = Path(data_dir)
    os.environ.setdefault("ALFWORLD_DATA", str(data_dir))  # else importing alfworld creates ~/.cache/alfworld
    counts = games_per_type if isinstance(games_per_type, dict) else {s: games_per_type for s in SPLITS}
    (data_dir / "logic").mkdir(parents=True, exist_ok=True)
    shutil.copy(ALFRED_PDDL_PATH, data_dir / "logic" / "alfred.pddl")
    shutil.copy(ALFRED_TWL2_PATH, data_dir / "logic" / "alfred.twl2")
    return {split: [write_game(data_dir, split, t, i, seed) for t in task_types for i in range(n)]
            for split, n in counts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sampo_ref.envs.alfworld_synth", description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path, help="folder to write (use it as ALFWORLD_DATA / --alfworld-data)")
    parser.add_argument("--games-per-type", type=int, default=2, help="games of each task type in each split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    games = write_games(args.data_dir, args.games_per_type, seed=args.seed)
    print(", ".join(f"{split}: {len(g)} games" for split, g in games.items()) + f" in {args.data_dir}")


if __name__ == "__main__":
    main()
