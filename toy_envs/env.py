"""A gymnasium environment over one TextWorld game file, with strict admissible-action handling.

Observations and actions are strings. Each turn the agent reads the cleaned observation and the
admissible commands (in ``info``) and answers with a command:

* an admissible command (compared after strip + lower-case) is sent to the game engine;
* anything else is *not* sent: the env answers ``INVALID_FEEDBACK`` and the state does not change,
  as ALFWorld does for unknown commands. The turn still counts. This never raises.

reward = ``win_reward`` on the turn the game is won, else 0 (TextWorld's score is cumulative and
rewards sub-goals; it is not used). terminated = won or lost; truncated = the turn limit was
reached first.
"""

from __future__ import annotations

import os
import re
import string
import warnings
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
        self._info: dict[str, Any] = {}
        self._admissible: dict[str, str] = {}  # lower-cased command → the engine's spelling
        self._done = True

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        """Restart the game from its initial state. The game is deterministic: `seed` only seeds `np_random`."""
        super().reset(seed=seed)
        self._done = False
        obs = self._observe(self._tw.reset(), turn=0)
        return obs, self._info_copy()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play one turn; a non-admissible `action` costs the turn and changes nothing."""
        if self._done:
            raise RuntimeError("episode is over (or not started): call reset() before step()")
        turn = self._info["turn"] + 1
        command = self._admissible.get(action.strip().lower()) if isinstance(action, str) else None
        if command is not None:
            state, _, _ = self._tw.step(command)
            obs = self._observe(state, turn)
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

    def _observe(self, state: Any, turn: int) -> str:
        """Take in a TextWorld game state: update the env's info and admissible set, return the observation."""
        obs = clean_observation(state["feedback"])
        room = _player_room(state)
        self._info = {
            "admissible_commands": list(state["admissible_commands"]),
            "won": bool(state["won"]),
            "lost": bool(state["lost"]),
            "raw_observation": state["feedback"],
            "room": room,
            "anchor": f"{room}\n{obs}",
            "walkthrough": list(state["extra.walkthrough"]),
            "turn": turn,
        }
        # Some names keep capitals ("take Quote of the Day Calendar"): match lower-cased, send as spelled.
        self._admissible = {c.lower(): c for c in self._info["admissible_commands"]}
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
