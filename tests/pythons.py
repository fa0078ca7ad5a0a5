"""Find the Python interpreters on this machine, by version (for the tests that run wattui,
or a script under it, with other Pythons)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
DEPS = "import textual, polars, psutil, pynvml"


def _is_version(version: str) -> str:
    return (
        f"import sys; sys.exit(f'{{sys.version_info[0]}}.{{sys.version_info[1]}}' != '{version}')"
    )


def runs(py: str, code: str, **kw) -> bool:
    try:
        return (
            subprocess.run([py, "-c", code], capture_output=True, timeout=60, **kw).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def candidates(version: str) -> list[str]:
    """Every executable that may be Python ``version``: this test run's own, the venv that
    ``scripts/pythons`` set up, pyenv's, ``pythonX.Y`` on PATH."""
    out = []
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        out.append(sys.executable)
    venvs = Path(os.environ.get("WATTUI_PYTHONS_DIR") or ROOT / ".venvs")
    out.append(str(venvs / version / "bin" / "python"))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    out += sorted(str(p / "bin" / "python") for p in pyenv.glob(f"{version}.*"))
    out.append(shutil.which(f"python{version}") or "")
    return [c for c in dict.fromkeys(out) if c and os.access(c, os.X_OK)]


@functools.cache
def found(version: str) -> tuple[str, ...]:
    """The candidates that really are Python ``version``."""
    return tuple(c for c in candidates(version) if runs(c, _is_version(version)))


@functools.cache
def with_deps(version: str) -> str | None:
    """An interpreter of ``version`` that can import wattui's dependencies."""
    return next((py for py in found(version) if runs(py, DEPS)), None)


def interpreter(version: str) -> str:
    """An interpreter of ``version`` that can run wattui; else skip, or fail when
    ``$WATTUI_REQUIRE_PYTHONS`` (comma-separated versions) names it."""
    py = with_deps(version)
    if py:
        return py
    have = found(version)
    why = (
        f"Python {version} ({have[0]}) has no environment with wattui's dependencies; "
        f"`scripts/pythons {version}` sets one up"
        if have
        else f"no Python {version} on this machine"
    )
    if version in os.environ.get("WATTUI_REQUIRE_PYTHONS", "").split(","):
        pytest.fail(f"$WATTUI_REQUIRE_PYTHONS names {version}, but: {why}")
    pytest.skip(why)


def without_wattui(exclude: str = "") -> str | None:
    """A Python of another version than ``exclude`` that cannot ``import wattui`` by
    itself (nor textual): what a training project's interpreter looks like to wattui."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for version in VERSIONS:
        if version == exclude:
            continue
        for py in found(version):
            if not runs(py, "import wattui", env=env, cwd="/") and not runs(
                py, "import textual", env=env
            ):
                return py
    return None
