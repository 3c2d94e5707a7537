"""``--student``: check ``exercises.py`` (the student's file) instead of the reference solutions."""

from __future__ import annotations

import importlib

import pytest


def pytest_addoption(parser):
    parser.addoption("--student", action="store_true", default=False,
                     help="check tutorials/exercises/exercises.py (your solutions) instead of the reference ones")


def pytest_report_header(config):
    if config.getoption("--student"):
        return "exercises: checking YOUR functions in tutorials/exercises/exercises.py"
    return "exercises: checking the reference solutions (sampo_ref); pass --student to check exercises.py"


@pytest.fixture(scope="session")
def impl(request):
    """The module under test: the student's ``exercises`` or the reference ``solutions``."""
    name = "exercises" if request.config.getoption("--student") else "solutions"
    return importlib.import_module(f"{__package__}.{name}")
