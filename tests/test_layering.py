"""The layering of docs/architecture.md, enforced: interfaces at the bottom, tools at the top.

A module imports only modules of its own layer or of a lower one (function-level imports
included), so no core module imports the trainer, the CLI, a benchmark or ``toy_envs``; only the
toy adapter (and the benchmark tools) import ``toy_envs``, which itself uses nothing of the
library but the cache paths.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# bottom to top; the same table is in docs/architecture.md
LAYERS = [
    ("contract and maths", ["task", "cache", "checks", "parsing", "algos"]),
    ("machinery", ["policy", "engine", "distributed", "rollout", "tiny", "diagnostics", "manifest", "checkpoint", "plots"]),
    ("environment adapters", ["envs"]),
    ("configuration", ["config", "presets"]),
    ("set-up", ["setup", "evaluation", "runlog"]),
    ("tools", ["trainer", "bench", "bench_limits"]),
    ("command line", ["cli"]),
]
# the toy adapter, the rollout benchmark's worker processes, and the ALFWorld adapter (its --env-workers
# use toy_envs.batch.ProcessBatchEnv, a generic worker pool)
TOY_ENVS_USERS = {"sampo_ref.envs.toy", "sampo_ref.bench", "sampo_ref.envs.alfworld"}
TOY_ENVS_MAY_USE = {"sampo_ref", "sampo_ref.cache"}


def layer_of(module: str) -> int | None:
    """The layer index of a ``sampo_ref.…`` module (its first name part after the package)."""
    parts = module.split(".")
    for i, (_, names) in enumerate(LAYERS):
        if len(parts) > 1 and parts[1] in names:
            return i
    return None


def imports(source: str, module: str) -> set[str]:
    """Every module ``source`` imports, anywhere in it; ``from pkg import name`` counts as ``pkg.name``
    when ``pkg.name`` is a module of this repository, else as ``pkg``."""
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                is_module = (ROOT / Path(*name.split("."))).with_suffix(".py").exists() or (ROOT / Path(*name.split("."))).is_dir()
                out.add(name if is_module else base)
    return out


def modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def violations(module: str, imported: set[str]) -> list[str]:
    """Why ``module`` may not import some of ``imported``, one line each."""
    problems = []
    own = layer_of(module)
    for name in sorted(imported):
        top = name.split(".")[0]
        if top == "benchmarks":
            problems.append(f"{module} imports the benchmark {name}")
        elif top == "toy_envs" and module not in TOY_ENVS_USERS:
            problems.append(f"{module} imports {name}: only {sorted(TOY_ENVS_USERS)} may use toy_envs")
        elif top == "sampo_ref" and name != "sampo_ref":
            theirs = layer_of(name)
            if theirs is None:
                problems.append(f"{module} imports {name}, which has no layer")
            elif own is not None and theirs > own:
                problems.append(f"{module} ({LAYERS[own][0]}) imports {name} ({LAYERS[theirs][0]}), a higher layer")
    return problems


def test_every_library_module_has_a_layer():
    unplaced = [m for m in modules("sampo_ref") if m != "sampo_ref" and layer_of(m) is None]
    assert not unplaced, f"modules with no layer in tests/test_layering.py and docs/architecture.md: {unplaced}"


def test_no_module_imports_a_higher_layer():
    bad = [p for name, path in modules("sampo_ref").items() for p in violations(name, imports(path.read_text(), name))]
    assert not bad, "\n".join(bad)


def test_toy_envs_is_one_implementation_and_uses_only_the_cache_paths():
    bad = {name: sorted(i for i in imports(path.read_text(), name) if i.startswith("sampo_ref") and i not in TOY_ENVS_MAY_USE)
           for name, path in modules("toy_envs").items()}
    assert not {k: v for k, v in bad.items() if v}


def test_only_the_cli_and_the_benchmarks_import_the_trainer():
    users = {name for name, path in modules("sampo_ref").items() if "sampo_ref.trainer" in imports(path.read_text(), name)}
    assert users <= {"sampo_ref.cli", "sampo_ref.bench"}, users


@pytest.mark.parametrize("module, source, expected", [
    ("sampo_ref.rollout", "from sampo_ref.trainer import train", "higher layer"),
    ("sampo_ref.algos.grpo", "def f():\n    import sampo_ref.cli", "higher layer"),
    ("sampo_ref.config", "from toy_envs import LEVELS", "may use toy_envs"),
    ("sampo_ref.setup", "from benchmarks import arena", "benchmark"),
    ("sampo_ref.policy", "import sampo_ref.nowhere", "no layer"),
])
def test_the_checker_catches_each_kind_of_violation(module, source, expected):
    found = violations(module, imports(source, module))
    assert len(found) == 1 and expected in found[0], found
