"""MkDocs hook: vendor the two JavaScript files the site needs, so the built docs work with no network.

* ``docs/javascripts/tex-mml-svg.js``: the file ``es5/tex-mml-svg.js`` of the npm package
  ``mathjax@3.2.2``, one self-contained file (TeX input, SVG output, fonts included) that renders
  the math;
* ``docs/javascripts/iframe-worker-shim.js``: the file ``shim/index.js`` of ``iframe-worker@1.0.4``,
  which Material's offline plugin needs so that search runs in a page opened from disk
  (``file://``, where browsers refuse web workers). mkdocs.yml lists it under ``extra.polyfills``,
  so the plugin does not fetch it from unpkg.com.

Both are git-ignored. Before every build each package tarball is fetched once with ``npm pack``
(the ordinary npm client and registry) into ``$SAMPO_REF_CACHE/npm`` (default
``~/.cache/sampo_ref/npm``) and checked against a pinned SHA-256, so every build serves the same
bytes. Any failure (no npm, no registry, a changed tarball) stops the build with a message that
says what to do; the site is never built without them.

Run by ``mkdocs build`` (``hooks:`` in ``mkdocs.yml``); ``python docs/_hooks/vendor.py`` vendors
the files by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Vendored:
    """One file taken from a pinned npm tarball."""

    package: str  # what ``npm pack`` is given
    tarball: str  # the name ``npm pack`` gives the tarball
    tarball_sha256: str
    member: str  # the file inside the tarball
    file_sha256: str
    target: Path  # relative to docs_dir; mkdocs.yml loads it


FILES = [
    Vendored("mathjax@3.2.2", "mathjax-3.2.2.tgz",
             "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09", "package/es5/tex-mml-svg.js",
             "1f17a7ed95ff4a4b27d16bf0fb5f80b915686ee8673e82983a2876ecf8cb9fae", Path("javascripts") / "tex-mml-svg.js"),
    Vendored("iframe-worker@1.0.4", "iframe-worker-1.0.4.tgz",
             "e8c5d12d87829c503afba01d67772ea9f4aba5b7ae57a0c98e1917711030efbb", "package/shim/index.js",
             "e8e412dbcfea9b7e31b5ffa288d7b6035915e714c542f4176a0cdbe262fc9609",
             Path("javascripts") / "iframe-worker-shim.js"),
]
MATHJAX = FILES[0]


class VendorError(RuntimeError):
    """A file could not be put into the docs."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_dir() -> Path:
    """Where the npm tarballs are kept: ``$SAMPO_REF_CACHE/npm``, else ``~/.cache/sampo_ref/npm``."""
    root = os.environ.get("SAMPO_REF_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "sampo_ref") / "npm"


def fetch_tarball(item: Vendored, cache: Path) -> Path:
    """The pinned tarball in ``cache``, downloaded with ``npm pack`` if it is not there yet."""
    tarball = cache / item.tarball
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise VendorError(f"npm is not installed: it is needed once to fetch {item.package} "
                              f"(or put {item.tarball} into {cache} by hand)")
        cache.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["npm", "pack", item.package, "--pack-destination", str(cache)],
                             capture_output=True, text=True)
        if run.returncode != 0 or not tarball.exists():
            raise VendorError(f"`npm pack {item.package}` failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
    digest = _sha256(tarball.read_bytes())
    if digest != item.tarball_sha256:
        raise VendorError(f"{tarball} has sha256 {digest}, expected {item.tarball_sha256}; delete it to fetch it again")
    return tarball


def vendor(item: Vendored, docs_dir: Path) -> Path:
    """Make ``docs_dir / item.target`` the pinned file; returns its path."""
    target = docs_dir / item.target
    if target.exists() and _sha256(target.read_bytes()) == item.file_sha256:
        return target
    with tarfile.open(fetch_tarball(item, cache_dir())) as tar:
        data = tar.extractfile(item.member).read()
    if _sha256(data) != item.file_sha256:
        raise VendorError(f"{item.member} in {item.tarball} has sha256 {_sha256(data)}, expected {item.file_sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)  # atomic: a concurrent build never reads half a file
    return target


def on_pre_build(config, **kwargs) -> None:
    """MkDocs event, before the docs files are collected."""
    from mkdocs.exceptions import PluginError

    for item in FILES:
        try:
            vendor(item, Path(config["docs_dir"]))
        except VendorError as err:
            raise PluginError(f"{item.package} could not be vendored: {err}") from err


if __name__ == "__main__":
    for item in FILES:
        print(vendor(item, Path(__file__).resolve().parents[1]))
