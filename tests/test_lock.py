"""The test environment is the lock: what `scripts/setup` installed is what requirements.lock
pins, so a fresh machine gets the versions the expectations were measured with."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="runs in an environment of the user's own, not the one scripts/setup "
                           "builds from the lock")
def test_the_environment_holds_exactly_the_locked_versions() -> None:
    locked = dict(line.split("==", 1) for line in (ROOT / "requirements.lock").read_text()
                  .splitlines() if line and not line.startswith("#"))
    locked = {_canonical(name): version for name, version in locked.items()}
    installed = {_canonical(d.metadata["Name"]): d.version
                 for d in importlib.metadata.distributions()}
    installed.pop("modelport")
    assert installed == locked, "run scripts/lock after changing the dependencies"
