"""The tutorials: each runs as a notebook on CPU, shows its figures inline and writes them; each is a script too.

Each tutorial is executed once, as a notebook (jupytext → nbclient, the ipykernel of this Python):
that is the stricter of the two ways to run it (figures must appear inline, and nothing may print
tqdm's "IProgress not found" or transformers' loading noise), and the code is the same as the
script's. ``test_tutorial_runs_as_a_script`` runs the fastest one as ``python tutorials/….py``.

Every tutorial asserts the claims its text makes (variance drop, the worked example's numbers, zero
gradients where clipping says so, …), so a run that ends without error has checked them.
Figures go to a temporary folder through ``SAMPO_REF_TUTORIAL_OUT``. Games and the tiny policy
come from the user's cache, shared with ``make demo`` and tests/test_learning.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from conftest import USER_CACHE

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("[0-9][0-9]_*.py"))


def test_the_six_tutorials_are_there():
    assert len(TUTORIALS) >= 6, [p.name for p in TUTORIALS]


NOISE = ("IProgress not found", "Loading weights", "Writing model shards", "Traceback")


def _env(tmp_path: Path) -> dict:
    env = {**os.environ, "SAMPO_REF_TUTORIAL_OUT": str(tmp_path / "out"), "OMP_NUM_THREADS": "1"}
    env.pop("MPLBACKEND", None)  # a notebook draws inline; a script without a display falls back to Agg
    env.pop("SAMPO_REF_CACHE", None)  # a fixture may point it at a test folder: use the user's cache
    if USER_CACHE is not None:
        env["SAMPO_REF_CACHE"] = USER_CACHE
    return env


@pytest.mark.slow  # each runs a tutorial end to end (the last one trains): seconds to a minute each
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_as_a_notebook_with_inline_figures(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = jupytext.read(path)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    inline = sum("image/png" in o.get("data", {}) for o in outputs)
    assert inline >= 1, f"{path.name}: no figure shown inline"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    noise = [n for n in NOISE if n in text]
    assert not noise, f"{path.name} prints {noise}:\n{text[-2000:]}"
    assert list((tmp_path / "out").rglob("*.png")), f"{path.name} wrote no figure under SAMPO_REF_TUTORIAL_OUT"
    assert not list(tmp_path.glob("runs")), f"{path.name} wrote outside SAMPO_REF_TUTORIAL_OUT"


@pytest.mark.slow
def test_tutorial_runs_as_a_script(tmp_path):
    path = TUTORIALS[1]  # group advantages: seconds
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert list((tmp_path / "out").rglob("*.png")), f"{path.name} wrote no figure under SAMPO_REF_TUTORIAL_OUT"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_is_a_notebook(path):
    """Percent format: jupytext reads it into markdown and code cells, opening with the title."""
    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and notebook.cells[0].source.startswith(f"# Tutorial {int(path.stem[:2])} ")
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, kinds
    assert not any(cell.source.lstrip().startswith("# %%") for cell in notebook.cells), "a cell marker was not parsed"
