"""MkDocs hook: vendor MathJax 3 into the site, so the built docs render math with no network.

Before every build it makes sure ``docs/javascripts/tex-mml-svg.js`` (git-ignored) is the file
``es5/tex-mml-svg.js`` of the npm package ``mathjax@3.2.2``. The package tarball is fetched once
with ``npm pack`` (the ordinary npm client and registry) into ``$SAMPO_REF_CACHE/npm`` (default
``~/.cache/sampo_ref/npm``) and checked against a pinned SHA-256, so every build serves the same
bytes. ``tex-mml-svg.js`` is one self-contained file: TeX input, SVG output, fonts included.

Any failure (no npm, no registry, a changed tarball) stops the build with a message that says
what to do; the site is never built without its MathJax.

Run by ``mkdocs build`` (``hooks:`` in ``mkdocs.yml``); ``python docs/_hooks/mathjax.py`` vendors
the file by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

PACKAGE = "mathjax@3.2.2"
TARBALL = "mathjax-3.2.2.tgz"  # the name ``npm pack`` gives it
TARBALL_SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
MEMBER = "package/es5/tex-mml-svg.js"
FILE_SHA256 = "1f17a7ed95ff4a4b27d16bf0fb5f80b915686ee8673e82983a2876ecf8cb9fae"
TARGET = Path("javascripts") / "tex-mml-svg.js"  # relative to docs_dir; mkdocs.yml loads it


class VendorError(RuntimeError):
    """MathJax could not be put into the docs."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_dir() -> Path:
    """Where the npm tarball is kept: ``$SAMPO_REF_CACHE/npm``, else ``~/.cache/sampo_ref/npm``."""
    root = os.environ.get("SAMPO_REF_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "sampo_ref") / "npm"


def fetch_tarball(cache: Path) -> Path:
    """The pinned tarball in ``cache``, downloaded with ``npm pack`` if it is not there yet."""
    tarball = cache / TARBALL
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise VendorError(f"npm is not installed: it is needed once to fetch {PACKAGE} "
                              f"(or put {TARBALL} into {cache} by hand)")
        cache.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", str(cache)],
                             capture_output=True, text=True)
        if run.returncode != 0 or not tarball.exists():
            raise VendorError(f"`npm pack {PACKAGE}` failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
    digest = _sha256(tarball.read_bytes())
    if digest != TARBALL_SHA256:
        raise VendorError(f"{tarball} has sha256 {digest}, expected {TARBALL_SHA256}; delete it to fetch it again")
    return tarball


def vendor(docs_dir: Path) -> Path:
    """Make ``docs_dir/javascripts/tex-mml-svg.js`` the pinned MathJax file; returns its path."""
    target = docs_dir / TARGET
    if target.exists() and _sha256(target.read_bytes()) == FILE_SHA256:
        return target
    with tarfile.open(fetch_tarball(cache_dir())) as tar:
        data = tar.extractfile(MEMBER).read()
    if _sha256(data) != FILE_SHA256:
        raise VendorError(f"{MEMBER} in {TARBALL} has sha256 {_sha256(data)}, expected {FILE_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)  # atomic: a concurrent build never reads half a file
    return target


def on_pre_build(config, **kwargs) -> None:
    """MkDocs event, before the docs files are collected."""
    from mkdocs.exceptions import PluginError

    try:
        vendor(Path(config["docs_dir"]))
    except VendorError as err:
        raise PluginError(f"MathJax could not be vendored: {err}") from err


if __name__ == "__main__":
    print(vendor(Path(__file__).resolve().parents[1]))
