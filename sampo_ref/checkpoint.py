"""Checkpoints that a crash cannot corrupt, and the metrics log a resume continues.

Layout inside a run directory:

    checkpoints/it-000010/policy/      save_pretrained of the policy
    checkpoints/it-000010/state.pt     iteration, optimiser state, every random-number state
    checkpoints/it-000010/sha256.json  the SHA-256 of each file above, checked before anything is loaded
    checkpoints/latest                 the name of the newest complete checkpoint

A checkpoint is written into a temporary folder, renamed into place, and only then named in
``latest`` (itself replaced atomically); older checkpoints are deleted after that. A run killed at
any instant therefore resumes from its last complete checkpoint and loses at most the iterations
after it. ``metrics.jsonl`` is trimmed back to that checkpoint on resume, so no iteration is
logged twice and a half-written last line (killed mid-write) is dropped.

Reading back trusts nothing: ``latest`` must name a checkpoint folder inside the run directory,
``state.pt`` is loaded with ``weights_only=True`` (plain tensors, numbers and lists: no pickled
code runs) and checked field by field, and any file that cannot be read gives one line naming it
and what to do (a ``ConfigError``). Leftover ``.tmp-*`` folders of a save that was killed are
removed at the next save and at resume.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import re
import tempfile
from pathlib import Path

import torch

from sampo_ref.checks import ConfigError
from sampo_ref.manifest import manifest_problem, write_manifest

NAME = re.compile(r"it-\d{6}")  # a checkpoint folder's name
RESTART = "delete its checkpoints/ folder to start it again from iteration 0 with --resume"


def save(run_dir: Path, iteration: int, policy, optimizer, rng: random.Random, gen: torch.Generator,
         full: tuple[dict, dict] | None = None) -> Path:
    """Write checkpoint ``iteration`` atomically and make it the latest; returns its folder.
    ``full``: the (model, optimiser) state dicts of a sharded (FSDP) run, gathered by every rank."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(run_dir)
    name = f"it-{iteration:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    policy.save(tmp / "policy", full and full[0])
    version, mt_state, gauss = rng.getstate()
    state = {  # only tensors, numbers and lists: loadable with weights_only=True
        "iteration": iteration,
        "optimizer": full[1] if full else optimizer.state_dict(),
        "rng": [version, list(mt_state), gauss],
        "gen": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    torch.save(state, tmp / "state.pt")
    write_manifest(tmp)
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


def remove_leftovers(run_dir: Path) -> None:
    """Delete the temporary folders and pointer of saves that were killed (only one run writes a run directory)."""
    root = run_dir / "checkpoints"
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    (root / ".latest.tmp").unlink(missing_ok=True)


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None; refuses a pointer that leads elsewhere."""
    root = run_dir / "checkpoints"
    pointer = root / "latest"
    if not pointer.exists():
        return None
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{pointer}: cannot be read ({err}); {RESTART}") from None
    ckpt = root / name
    if not NAME.fullmatch(name) or ckpt.resolve().parent != root.resolve():
        raise ConfigError(f"{pointer} names {name[:80]!r}; expected a checkpoint folder it-NNNNNN inside "
                          f"{root} (nothing outside the run directory is loaded); {RESTART}")
    problem = manifest_problem(ckpt) if ckpt.is_dir() else "the folder is missing"
    if problem:
        raise ConfigError(f"{ckpt}: {problem}; the checkpoint is damaged: {RESTART}")
    return ckpt


def restore(ckpt: Path, optimizer, rng: random.Random, gen: torch.Generator) -> int:
    """Load optimiser and random states from ``ckpt``; returns its iteration (the policy is loaded apart)."""
    path = ckpt / "state.pt"
    try:  # weights_only: a crafted file cannot run code, it can only fail to load
        state = torch.load(path, weights_only=True, map_location="cpu")
        iteration, (version, mt_state, gauss) = state["iteration"], state["rng"]
        if not isinstance(iteration, int) or f"it-{iteration:06d}" != ckpt.name:
            raise ValueError(f"iteration {iteration!r} does not match the folder's name")
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate((version, tuple(mt_state), gauss))
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    except Exception as err:  # noqa: BLE001 -- whatever is wrong with the file, one line names it
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{path}: not a readable checkpoint state ({type(err).__name__}: {reason}); {RESTART}") from None
    return iteration


def read_metrics(path: Path, up_to: int | None = None) -> list[dict]:
    """The records of ``metrics.jsonl``, optionally only iterations ≤ up_to (and no final records).

    Only the last line may be torn (a kill in the middle of a write: it is skipped); a file that is
    not text, or a bad line before the last, is a damaged log and gives one line naming it.
    """
    records = []
    if not path.exists():
        return records
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read as text ({type(err).__name__}); the metrics log is damaged: "
                          "restore it or start a new run") from None
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("iteration"), int):
                raise ValueError("not a record with an integer 'iteration'")
        except ValueError as err:
            if number == len(lines):
                continue  # a line cut by a kill
            raise ConfigError(f"{path}: line {number} is not a metrics record ({err}); the metrics log is damaged: "
                              "restore it or start a new run") from None
        if up_to is None or record["iteration"] <= up_to and not record.get("final"):
            records.append(record)
    return records


def trim_metrics(path: Path, up_to: int) -> list[dict]:
    """Rewrite ``metrics.jsonl`` atomically with only the records of iterations ≤ ``up_to``; refuses a
    log that lacks iterations the checkpoint has (the run's summary and plots are made from it)."""
    records = read_metrics(path, up_to)
    logged = {r["iteration"] for r in records if "rollout/success" in r}
    missing = sorted(set(range(1, up_to + 1)) - logged)
    if not any("eval/success" in r for r in records if r["iteration"] == 0) or missing:
        what = f"iterations {missing[0]}..{missing[-1]}" if missing else "the evaluation before training"
        raise ConfigError(f"{path}: {'missing' if not path.exists() else f'lacks {what}'}, though the checkpoint "
                          f"is at iteration {up_to}; restore the log, or {RESTART}")
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)
    return records
