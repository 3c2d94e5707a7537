"""The tutorials: each runs as a plain script on CPU and writes its figures; each is a valid notebook.

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
TRAINS = {"06_grpo_gspo_sampo"}  # runs the trainer: the slow one (about a minute on 2 CPU cores)


def test_the_six_tutorials_are_there():
    assert len(TUTORIALS) >= 6, [p.name for p in TUTORIALS]


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in TRAINS else [])
                                  for p in TUTORIALS])
def test_tutorial_runs_and_writes_its_figures(path, tmp_path):
    env = {**os.environ, "SAMPO_REF_TUTORIAL_OUT": str(tmp_path / "out"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("SAMPO_REF_CACHE", None)  # a fixture may point it at a test folder: use the user's cache
    if USER_CACHE is not None:
        env["SAMPO_REF_CACHE"] = USER_CACHE
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    figures = list((tmp_path / "out").rglob("*.png"))
    assert figures, f"{path.name} wrote no figure under SAMPO_REF_TUTORIAL_OUT"
    assert not list(tmp_path.glob("runs")), f"{path.name} wrote outside SAMPO_REF_TUTORIAL_OUT"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_is_a_notebook(path):
    """Percent format: jupytext reads it into markdown and code cells, opening with the title."""
    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and notebook.cells[0].source.startswith(f"# Tutorial {int(path.stem[:2])} ")
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, kinds
    assert not any(cell.source.lstrip().startswith("# %%") for cell in notebook.cells), "a cell marker was not parsed"
