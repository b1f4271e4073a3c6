"""The architecture as import-linter contracts (pyproject.toml): they hold for evoart as
it is, and each one catches a violation injected into a copy of the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

# contract id -> (module file to change, the import that breaks the contract)
VIOLATIONS = {
    "layers": ("fitness.py", "from . import runner"),                 # a lower layer importing a higher one
    "no-cli-libraries": ("ga.py", "import click"),                    # the library importing click
    "deap-only-in-ga": ("fitness.py", "import deap"),                 # deap outside ga
    "sqlite-only-in-store": ("runner.py", "import sqlite3"),          # SQL outside store
}


@pytest.fixture
def copy(tmp_path):
    shutil.copytree(REPO / "evoart", tmp_path / "evoart", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(folder: Path, contract: str | None = None) -> subprocess.CompletedProcess:
    args = [str(LINT), "--config", str(folder / "pyproject.toml"), "--no-cache"]
    if contract:
        args += ["--contract", contract]
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder)})


def test_the_contracts_hold_for_evoart(copy):
    result = lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_each_contract_catches_a_violation(copy, contract):
    module, line = VIOLATIONS[contract]
    path = copy / "evoart" / module
    path.write_text(path.read_text() + f"\n{line}  # injected by the test\n")
    result = lint(copy, contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout
