"""``--student``: check ``exercises.py`` (the student's file) instead of the reference solutions."""

from __future__ import annotations

import functools
import importlib
import types

import pytest

HANDOUT_CHECKS = ("test_exercise_signature_matches_the_solution", "test_the_handout_is_blank")


def pytest_addoption(parser):
    parser.addoption("--student", action="store_true", default=False,
                     help="check tutorials/exercises/exercises.py (your solutions) instead of the reference ones")


def pytest_report_header(config):
    if config.getoption("--student"):
        return "exercises: checking YOUR functions in exercises.py"
    return "exercises: checking the reference solutions (sampo_ref); pass --student to check exercises.py"


def pytest_collection_modifyitems(config, items):
    """With --student, only the exercises themselves run: the checks of the handout are for CI."""
    if not config.getoption("--student"):
        return
    kept = [item for item in items if item.originalname not in HANDOUT_CHECKS]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def _not_done_is_one_line(name: str, fn):
    """An exercise not written yet fails in one line, not with a traceback into the handout."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as err:
            reason = str(err)
        pytest.fail(f"{name}: not written yet ({reason})", pytrace=False)

    return call


@pytest.fixture(scope="session")
def impl(request):
    """The module under test: the student's ``exercises`` or the reference ``solutions``."""
    name = "exercises" if request.config.getoption("--student") else "solutions"
    try:
        module = importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        pytest.fail("this handout has no solutions: check your exercises.py with --student", pytrace=False)
    from .test_exercises import NAMES

    return types.SimpleNamespace(**{n: _not_done_is_one_line(n, getattr(module, n)) for n in NAMES})


def pytest_sessionfinish(session):
    """``make handout``: write the reference values the checkers used, for a handout without solutions."""
    from . import test_exercises

    if test_exercises.RECORD_TO and test_exercises.recording:
        import torch

        torch.save(test_exercises.recording, test_exercises.RECORD_TO)
