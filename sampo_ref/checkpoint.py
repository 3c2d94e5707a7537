"""Checkpoints that a crash cannot corrupt, and the metrics log a resume continues.

Layout inside a run directory:

    checkpoints/it-000010/policy/      save_pretrained of the policy
    checkpoints/it-000010/state.pt     iteration, optimiser state, every random-number state
    checkpoints/latest                 the name of the newest complete checkpoint

A checkpoint is written into a temporary folder, renamed into place, and only then named in
``latest`` (itself replaced atomically); older checkpoints are deleted after that. A run killed at
any instant therefore resumes from its last complete checkpoint and loses at most the iterations
after it. ``metrics.jsonl`` is trimmed back to that checkpoint on resume, so no iteration is
logged twice and a half-written last line (killed mid-write) is dropped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch


def save(run_dir: Path, iteration: int, policy, optimizer, rng: random.Random, gen: torch.Generator) -> Path:
    """Write checkpoint ``iteration`` atomically and make it the latest; returns its folder."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"it-{iteration:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    policy.save(tmp / "policy")
    state = {
        "iteration": iteration,
        "optimizer": optimizer.state_dict(),
        "rng": rng.getstate(),
        "gen": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    torch.save(state, tmp / "state.pt")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / ".latest.tmp"
    pointer.write_text(name)
    os.replace(pointer, root / "latest")  # the commit point
    for old in root.glob("it-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None."""
    pointer = run_dir / "checkpoints" / "latest"
    return run_dir / "checkpoints" / pointer.read_text().strip() if pointer.exists() else None


def restore(ckpt: Path, optimizer, rng: random.Random, gen: torch.Generator) -> int:
    """Load optimiser and random states from ``ckpt``; returns its iteration (the policy is loaded apart)."""
    state = torch.load(ckpt / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    rng.setstate(state["rng"])
    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["iteration"]


def read_metrics(path: Path, up_to: int | None = None) -> list[dict]:
    """The records of ``metrics.jsonl`` (a torn last line is skipped), optionally only iterations ≤ up_to."""
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if up_to is None or record.get("iteration", 0) <= up_to and not record.get("final"):
                records.append(record)
    return records


def trim_metrics(path: Path, up_to: int) -> list[dict]:
    """Rewrite ``metrics.jsonl`` atomically with only the records of iterations ≤ ``up_to``."""
    records = read_metrics(path, up_to)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)
    return records
