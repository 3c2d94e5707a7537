"""Where a run's metrics go: ``metrics.jsonl`` (always; the source of truth for plots and resume),
TensorBoard (``tb/`` in the run directory; ``tensorboard --logdir runs``) and, optionally,
Weights & Biases (``--wandb-project NAME``; ``pip install wandb``).

Every record is written and flushed as soon as it exists, so a killed run keeps everything up to
its last iteration.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sampo_ref.config import ConfigError


class RunLog:
    """Append-only metrics sinks of one run. ``start`` = the last iteration already logged (resume)."""

    def __init__(self, run_dir: Path, config: dict, start: int, tensorboard: bool, wandb_project: str = ""):
        self.jsonl = (run_dir / "metrics.jsonl").open("a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events of iterations after the checkpoint that a resumed run redoes
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)
        self.wandb = None
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise ConfigError(f"wandb_project={wandb_project!r} needs the wandb package: pip install wandb") from None
            self.wandb = wandb.init(project=wandb_project, config=config, dir=str(run_dir), name=run_dir.name,
                                    id=run_dir.name.replace("/", "-"), resume="allow")

    def write(self, record: dict) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        step = record["iteration"]
        scalars = {k: float(v) for k, v in record.items()
                   if k != "iteration" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
