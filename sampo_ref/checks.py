"""One-line problems with what a user gives: the error every layer raises, and the model check.

A leaf module (no project imports), so that the checkpoint and policy code below the config can
use them; ``sampo_ref.config`` re-exports both.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # a Hugging Face hub id, owner/name


def model_problem(model: str) -> str | None:
    """Why ``model`` cannot be loaded as a policy, or None: 'tiny', a save_pretrained folder (its
    config.json names a model_type) or a hub id."""
    expected = "'tiny', a save_pretrained directory or a hub id 'owner/name'"
    path = Path(model).expanduser()
    if model == "tiny":
        return None
    if path.is_dir():
        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type")
        except (OSError, ValueError, AttributeError):
            model_type = None
        if model_type:
            return None
        run = f" (a run directory? its policy is {path / 'policy'})" if (path / "policy" / "config.json").is_file() else ""
        return f"{expected}; this folder holds no config.json naming a model_type{run}"
    if not model.startswith((".", "/", "~")) and HUB_ID.fullmatch(model):
        return None
    return f"{expected}; there is no such folder"


class ConfigError(ValueError):
    """A bad config value or run file; the one-line message names the field or the file, the value and
    what is expected (the command line prints it instead of a traceback)."""


def check_fields(obj, checks: list[tuple[str, bool, str]], prefix: str = "") -> None:
    """Raise ``ConfigError`` for the first ``(field, ok, allowed)`` that is not ok, naming the field of
    ``obj``, its value and what is allowed, in one line (``prefix`` says whose field it is)."""
    for name, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"{prefix}{name}={getattr(obj, name)!r} is not allowed: expected {allowed}")
