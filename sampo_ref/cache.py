"""Where the project caches what it builds, in one place: ``$SAMPO_REF_CACHE``, else ``~/.cache/sampo_ref``.

    games/<family>-L<level>/seed<seed>.z8   the toy games (toy_envs.games)
    policies/tiny-<key>/                    the tiny policy, keyed by what shapes it (sampo_ref.tiny)

A leaf module (no project imports), so that ``toy_envs`` can use it and stay free of the rest.
"""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    """``$SAMPO_REF_CACHE``, else ``~/.cache/sampo_ref`` (read at every call: tests point it elsewhere)."""
    value = os.environ.get("SAMPO_REF_CACHE")
    return Path(value) if value else Path.home() / ".cache" / "sampo_ref"


def games() -> Path:
    return root() / "games"


def policies() -> Path:
    return root() / "policies"
