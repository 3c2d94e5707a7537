"""A gymnasium environment over one TextWorld game file, with strict admissible-action handling.

Observations and actions are strings. Each turn the agent reads the cleaned observation and the
admissible commands (in ``info``) and answers with a command:

* an admissible command (compared after strip + lower-case) is sent to the game engine;
* anything else is *not* sent: the env answers ``INVALID_FEEDBACK`` and the state does not change,
  as ALFWorld does for unknown commands. The turn still counts. This never raises.

reward = ``win_reward`` on the turn the game is won, else 0 (TextWorld's score is cumulative and
rewards sub-goals; it is not used). terminated = won or lost; truncated = the turn limit was
reached first.

The games are deterministic, so the env remembers every transition it has seen: the answer to
(state, command), keyed by the game's logical state (its set of facts), is shared by every env of
the same game in a process (``Transitions``). A remembered step does not run the engine (a
TextWorld step costs ≈4 ms, most of it computing the admissible commands); the engine catches up,
by replaying the episode's commands from a reset, only when a step is new. Observations and infos
are exactly those of the engine (tests/test_toy_envs.py plays both side by side).
"""

from __future__ import annotations

import os
import re
import string
import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import textworld
from gymnasium import spaces
from jericho import UnsupportedGameWarning

from toy_envs.games import check_family_level, game_info

INVALID_FEEDBACK = "Nothing happens."
CHARSET = "".join(c for c in string.printable if c not in "\r\x0b\x0c")  # printable ASCII, tab and newline
MAX_OBS_CHARS = 16_384  # observation space bound; real observations are < 2,000 characters
MAX_ACTION_CHARS = 256  # action space bound, for sampling; longer strings are accepted (and invalid)

# Frotz's random seed. Jericho treats a seed of 0 as "none" and then seeds from the clock.
_FROTZ_SEED = 1234
_REQUEST_INFOS = textworld.EnvInfos(admissible_commands=True, won=True, lost=True, extras=["walkthrough"])
_BANNER_CHARS = set(" _|$\\/<>")  # the "TEXTWORLD" ASCII-art banner of the first observation
_END_QUESTION = "Would you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command?"
_STATUS_MOVES = re.compile(r"(\d+)/\d+(\s*)$")
_END_MOVES = re.compile(r"(You scored \d+ out of a possible \d+, in )\d+ turns?")
MAX_TRANSITIONS = 200_000  # per process; beyond it new transitions are played but not remembered


@dataclass(frozen=True)
class Outcome:
    """What the engine answers in one state: everything the env reads from a TextWorld game state."""

    key: tuple[str, ...]  # the logical state: its facts, sorted
    feedback: str
    admissible: tuple[str, ...]
    won: bool
    lost: bool
    room: str
    walkthrough: tuple[str, ...]

    @classmethod
    def of(cls, state: Any) -> "Outcome":
        return cls(tuple(sorted(map(str, state["_facts"]))), state["feedback"], tuple(state["admissible_commands"]),
                   bool(state["won"]), bool(state["lost"]), _player_room(state), tuple(state["extra.walkthrough"]))


class Transitions:
    """Every (game, state, command) → Outcome seen in this process, and each game's start."""

    def __init__(self, limit: int = MAX_TRANSITIONS):
        self.limit = limit
        self.start: dict[str, Outcome] = {}
        self.step: dict[tuple[str, tuple[str, ...], str], Outcome] = {}

    def remember(self, game: str, key: tuple[str, ...], command: str, outcome: Outcome) -> None:
        if len(self.step) < self.limit:
            self.step[game, key, command] = outcome


TRANSITIONS = Transitions()


def clean_observation(raw: str) -> str:
    """Strip TextWorld's banner, the trailing prompt/status line and padding; normalise whitespace.

    The result uses only `CHARSET` characters; paragraphs are separated by one empty line.
    """
    text = raw.replace(_END_QUESTION, "")
    # The engine ends every answer with ">" + padding + a status line ("-= Kitchen =-0/3").
    lines = text.rstrip().split("\n")
    if lines and lines[-1].startswith(">"):
        lines.pop()
    lines = [" ".join(line.split()) for line in lines if not (line.strip() and set(line) <= _BANNER_CHARS)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return "".join(c if c in CHARSET else "?" for c in text)


class TextGameEnv(gym.Env):
    """One TextWorld game as a gymnasium env: `reset() -> (obs, info)`, `step(cmd) -> (obs, r, term, trunc, info)`.

    `info` keys: admissible_commands (sorted, as the engine spells them: a few names keep capitals),
    won, lost, raw_observation (the engine's text, unmodified), room, anchor, walkthrough (commands
    that solve the game from the start), turn (turns taken).

    anchor = f"{room}\\n{obs}" is GiGPO's state key. The room is part of it because TextWorld answers
    `look` or `inventory` with the same text in different rooms. An invalid action leaves the state,
    and so the anchor, unchanged.
    """

    metadata = {"render_modes": []}

    def __init__(self, game_file: str | os.PathLike, max_turns: int | None = None, win_reward: float = 1.0):
        """Load `game_file` (.z8 with its .json beside it); `max_turns=None` takes the family's default."""
        self.game_file = str(game_file)
        if max_turns is None:
            toy = game_info(self.game_file)
            if not toy:
                raise ValueError(f"{self.game_file} was not made by toy_envs; pass max_turns explicitly")
            max_turns = check_family_level(toy["family"], toy["level"]).max_turns
        self.max_turns = max_turns
        self.win_reward = win_reward
        self.observation_space = spaces.Text(max_length=MAX_OBS_CHARS, min_length=0, charset=CHARSET)
        self.action_space = spaces.Text(max_length=MAX_ACTION_CHARS, min_length=0, charset=CHARSET)
        with warnings.catch_warnings():
            # Jericho only "fully supports" a list of classic games; TextWorld computes what it lacks.
            warnings.simplefilter("ignore", UnsupportedGameWarning)
            self._tw = textworld.start(self.game_file, request_infos=_REQUEST_INFOS)
        self._tw.seed(_FROTZ_SEED)  # applies from the next reset
        self._engine_path: list[str] | None = None  # commands the engine has played since its reset (None: not reset)
        self._path: list[str] = []  # admissible commands of this episode so far
        self._state: Outcome | None = None  # the state the episode is in
        self._engine_state: Outcome | None = None  # the state the engine is in
        self._info: dict[str, Any] = {}
        self._admissible: dict[str, str] = {}  # lower-cased command → the engine's spelling
        self._done = True

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        """Restart the game from its initial state. The game is deterministic: `seed` only seeds `np_random`."""
        super().reset(seed=seed)
        self._done = False
        self._path = []
        outcome = TRANSITIONS.start.get(self.game_file)
        if outcome is None:
            outcome = TRANSITIONS.start[self.game_file] = self._engine_reset()
        return self._observe(outcome, turn=0), self._info_copy()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play one turn; a non-admissible `action` costs the turn and changes nothing."""
        if self._done:
            raise RuntimeError("episode is over (or not started): call reset() before step()")
        turn = self._info["turn"] + 1
        command = self._admissible.get(action.strip().lower()) if isinstance(action, str) else None
        if command is not None:
            outcome = self._transition(command)
            self._path.append(command)
            obs = self._observe(outcome, turn)
        else:
            obs = INVALID_FEEDBACK
            # Same state, so the same anchor: GiGPO groups this turn with the others taken from it.
            self._info.update(raw_observation=INVALID_FEEDBACK, turn=turn)
        terminated = self._info["won"] or self._info["lost"]
        truncated = not terminated and turn >= self.max_turns
        self._done = terminated or truncated
        reward = self.win_reward if self._info["won"] else 0.0  # only an admissible command can win
        return obs, reward, terminated, truncated, self._info_copy()

    def close(self) -> None:
        """Stop the game engine."""
        self._tw.close()

    def _transition(self, command: str) -> Outcome:
        """The outcome of ``command`` in the current state: remembered, else played on the engine."""
        outcome = TRANSITIONS.step.get((self.game_file, self._state.key, command))
        if outcome is not None:
            return outcome
        if self._engine_path != self._path:  # the engine is behind: replay this episode from its start
            self._engine_reset()
            for past in self._path:
                self._engine_step(past)
        return self._engine_step(command)

    def _engine_reset(self) -> Outcome:
        outcome = self._engine_state = Outcome.of(self._tw.reset())
        self._engine_path = []
        return outcome

    def _engine_step(self, command: str) -> Outcome:
        state, _, _ = self._tw.step(command)
        outcome = Outcome.of(state)
        TRANSITIONS.remember(self.game_file, self._engine_state.key, command, outcome)
        self._engine_path.append(command)
        self._engine_state = outcome
        return outcome

    def _observe(self, outcome: Outcome, turn: int) -> str:
        """Take in a game state: update the env's state, info and admissible set, return the observation."""
        self._state = outcome
        # the engine's text counts the moves in two places, the status line ("<score>/<moves>") and the
        # end of the game ("..., in <moves> turns."): this episode's count, whichever episode was remembered
        moves = len(self._path) + 1
        feedback = _END_MOVES.sub(rf"\g<1>{moves} turns", _STATUS_MOVES.sub(rf"\g<1>/{moves}\g<2>", outcome.feedback))
        obs = clean_observation(feedback)
        self._info = {
            "admissible_commands": list(outcome.admissible),
            "won": outcome.won,
            "lost": outcome.lost,
            "raw_observation": feedback,
            "room": outcome.room,
            "anchor": f"{outcome.room}\n{obs}",
            "walkthrough": list(outcome.walkthrough),
            "turn": turn,
        }
        # Some names keep capitals ("take Quote of the Day Calendar"): match lower-cased, send as spelled.
        self._admissible = {c.lower(): c for c in outcome.admissible}
        return obs

    def _info_copy(self) -> dict[str, Any]:
        """A copy of the info that a caller may modify freely."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._info.items()}


def _player_room(state: Any) -> str:
    """The room the player is in, read from TextWorld's logical state: the fact at(P, room)."""
    game = state["game"]
    for fact in state["_facts"]:
        if fact.name == "at" and fact.arguments[0].type == "P":
            return game.infos[fact.arguments[1].name].name
    raise RuntimeError("TextWorld state has no at(P, room) fact")
