"""SHA-256 manifests of the folders the project writes and later reads back: the tiny policy's
cache folder and every checkpoint. A folder is used only if each of its files matches the hash
recorded when it was written, so a truncated, garbled or missing file is found before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "sha256.json"


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (by relative path), the manifest itself excepted."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != MANIFEST:
            with f.open("rb") as handle:
                out[f.relative_to(folder).as_posix()] = hashlib.file_digest(handle, "sha256").hexdigest()
    return out


def write_manifest(folder: Path) -> None:
    """Record the hashes of ``folder``'s files (call it once the folder is complete, before it is renamed into place)."""
    (folder / MANIFEST).write_text(json.dumps(file_hashes(folder), indent=1))


def manifest_problem(folder: Path) -> str | None:
    """Why ``folder`` must not be used (no manifest, or files that differ from it), or None."""
    try:
        recorded = json.loads((folder / MANIFEST).read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as err:
        return f"{MANIFEST} is missing or unreadable ({type(err).__name__})"
    actual = file_hashes(folder)
    bad = sorted(name for name in recorded.keys() | actual.keys() if recorded.get(name) != actual.get(name))
    if not bad:
        return None
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return f"{', '.join(bad[:3])}{more} differ from the SHA-256 recorded in {MANIFEST} (missing, truncated or changed)"
