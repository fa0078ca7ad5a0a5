"""What users install: the wheel, its metadata, `wattui --version`, and the `import wattui`
shim that a script launched with another Python gets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pythons import ROOT, found, runs, without_wattui

import wattui
from wattui.record.report_shim import ensure_shim

tomllib = pytest.importorskip("tomllib")

CHILD = """\
import sys
import wattui
names = sorted(n for n in vars(wattui) if not n.startswith("__"))
print("CHILD", wattui.__file__, sys.version_info[0], sys.version_info[1], names, flush=True)
print("HEAVY", sorted(m for m in ("textual", "polars", "psutil", "pynvml") if m in sys.modules))
for e in range(3):
    wattui.report(accuracy=0.6 + e / 10, epoch=e + 1, total_epochs=3)
"""


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_is_single_sourced_and_printed():
    meta = pyproject()
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wattui.__version__"}
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "--version"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and p.stdout.strip() == f"wattui {wattui.__version__}"


def test_metadata_users_rely_on():
    meta = pyproject()
    proj = meta["project"]
    assert proj["license"] == "MIT" and "LICENSE" in proj["license-files"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert any(
        r.replace(" ", "").startswith("setuptools>=77") for r in meta["build-system"]["requires"]
    )
    assert (ROOT / "wattui" / "py.typed").exists()
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["wattui"]
    # the classifiers name the Pythons the pty test runs, from requires-python's floor up
    tested = {
        c.rsplit(" ", 1)[-1]
        for c in proj["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert tested == {"3.10", "3.11", "3.12", "3.13"} and proj["requires-python"] == ">=3.10"
    assert not any(
        c.startswith("License ::") for c in proj["classifiers"]
    )  # PEP 639: the SPDX field
    assert proj["keywords"] and proj["urls"]
    deps = {d.split(">")[0].split("=")[0].split("<")[0].strip(): d for d in proj["dependencies"]}
    assert "numpy" not in deps  # only [torch] (calibrate's fits) needs it
    assert "==" not in deps["textual"] and "<" in deps["textual"]  # a range, not a pin
    extras = proj["optional-dependencies"]
    assert any(r.startswith("numpy") for r in extras["torch"])
    # no two extras alike, and none repeats a requirement another extra lists
    seen: dict[str, str] = {}
    for name, reqs in extras.items():
        for r in reqs:
            if not r.startswith("wattui["):
                assert r not in seen, f"{r} is in both [{seen.get(r)}] and [{name}]"
                seen[r] = name


def run_bare(
    py: str, code: str, pythonpath: str, *flags: str, cwd: Path | str = "/"
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = pythonpath
    # outside the checkout, whose wattui/ the current directory would offer
    return subprocess.run(
        [py, *flags, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_shim_gives_only_the_report_api(tmp_path):
    """The shim is wattui's __init__ and the CLIENT_MODULES, which must be standard library
    only: run under a bare Python it imports no third-party module and exposes every public
    name of the real package."""
    shim = ensure_shim(tmp_path)
    assert ensure_shim(tmp_path) == shim  # written once per content
    assert sorted(p.name for p in (shim / "wattui").iterdir()) == sorted(
        ["__init__.py", *(f"{m}.py" for m in wattui.CLIENT_MODULES)]
    )
    names = "print(sorted(n for n in vars(wattui) if not n.startswith('_')))\n"
    real = subprocess.run(
        [sys.executable, "-c", "import wattui\n" + names],
        capture_output=True,
        text=True,
        timeout=60,
    )
    public = eval(real.stdout)  # the real package's public names, freshly imported
    code = (
        "import sys, wattui\n"
        "print(wattui.__file__)\n"
        + names
        + "print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names and m != '__main__'))\n"
        "wattui.report(accuracy=0.5)\n"
    )
    p = run_bare(sys.executable, code, str(shim), "-S")  # -S: no site-packages
    assert p.returncode == 0, p.stderr
    where, names, foreign = p.stdout.splitlines()
    assert where.startswith(str(shim))
    assert names == str(public) and "report" in public and "watch" in public
    assert foreign == str(sorted(["wattui", *(f"wattui.{m}" for m in wattui.CLIENT_MODULES)]))


@pytest.mark.slow
def test_shim_steps_aside_for_the_environments_own_wattui(tmp_path):
    """A script whose environment has its own wattui gets that one, whole."""
    py = next((p for v in ("3.10", "3.12", "3.13", "3.11") for p in found(v)), None)
    if py is None:
        pytest.skip("no Python interpreter found to make a venv with")
    venv = tmp_path / "venv"
    subprocess.run([py, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site,) = venv.glob("lib/python3.*/site-packages")
    (tmp_path / "cwd" / "wattui").mkdir(parents=True)  # a directory that only shares the name
    (site / "wattui").mkdir()
    (site / "wattui" / "__init__.py").write_text("OWN = True\n")
    (site / "wattui" / "integrations.py").write_text("CALLBACK = 1\n")
    (tmp_path / "channel").mkdir(mode=0o700)
    shim = ensure_shim(tmp_path / "channel")
    p = run_bare(
        str(venv / "bin" / "python"),
        "import wattui, wattui.integrations; print(wattui.OWN, wattui.integrations.CALLBACK, wattui.__file__)",
        str(shim),
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:2] == ["True", "1"] and p.stdout.split()[2].startswith(str(site))
    # with no wattui of its own, a directory named wattui in the way does not hide the shim
    shutil.rmtree(site / "wattui")
    p = run_bare(
        str(venv / "bin" / "python"),
        "import sys, wattui; sys.path.insert(0, 'x'); wattui.report(accuracy=1); print(wattui.__file__)",
        str(shim),
        cwd=tmp_path / "cwd",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith(str(shim))


@pytest.mark.slow
def test_launched_script_of_another_python_imports_wattui(store, tmp_path):
    """The dev install runs the recorder; the script runs under a Python with no wattui."""
    other = without_wattui(exclude=f"{sys.version_info[0]}.{sys.version_info[1]}")
    if other is None:
        pytest.skip("no other Python without wattui on this machine")
    record_and_check(sys.executable, ["-m", "wattui"], other, store, tmp_path)


def record_and_check(
    py: str, wattui_cmd: list[str], child_py: str, store: Path, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(CHILD)
    channel = tmp_path / "channel"
    channel.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(WATTUI_HOME=str(store), WATTUI_CHANNEL_DIR=str(channel))
    p = subprocess.run(
        [py, *wattui_cmd, "record", "--simulate", "--", child_py, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    (child_line,) = [ln for ln in p.stdout.splitlines() if ln.startswith("CHILD")]
    assert str(channel) in child_line  # the shim, not some other wattui
    assert "['CLIENT_MODULES', 'Measurement', '_measure', '_report', 'measure', 'report', 'watch']" in child_line
    assert "HEAVY []" in p.stdout
    show = subprocess.run(
        [py, *wattui_cmd, "show", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rec = json.loads(show.stdout)
    assert rec["accuracy"] == pytest.approx(0.8) and rec["epochs_done"] == 3


@pytest.mark.slow
def test_wheel_in_a_fresh_312_venv(tmp_path):
    """A wheel built from the repo, installed (not editable) into a fresh 3.12 venv:
    `wattui --version`, and a script run by another Python under `wattui record
    --simulate` imports wattui and its accuracy lands in the session."""
    py312 = next(iter(found("3.12")), None)
    if py312 is None:
        pytest.skip("no Python 3.12 on this machine")
    other = without_wattui(exclude="3.12")
    if other is None:
        pytest.skip("no Python other than 3.12 without wattui on this machine")
    dist = tmp_path / "dist"
    # built by 3.12 itself: the wheel holds the native ticker compiled for that Python
    subprocess.run(
        [py312, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    (wheel,) = dist.glob("wattui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wattui/py.typed" in names and not any(n.startswith("tests/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    if shutil.which("cc") or shutil.which("gcc"):
        assert any(n.startswith("wattui/sources/_ticker.cpython-312") for n in names), names
    venv = tmp_path / "venv"
    subprocess.run([py312, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        check=True,
        timeout=900,
        capture_output=True,
    )
    # (run outside the repo: `python -c` puts the working directory first on sys.path)
    assert runs(
        str(venv / "bin" / "python"),
        f"import sys; sys.exit(any('{ROOT}' in str(p) for p in __import__('wattui').__path__))",
        cwd=tmp_path,
    )
    if shutil.which("cc") or shutil.which("gcc"):
        assert runs(
            str(venv / "bin" / "python"),
            "import sys; from wattui.sources import native_ticks; sys.exit(not native_ticks.available())",
            cwd=tmp_path,
        )
    v = subprocess.run(
        [str(venv / "bin" / "wattui"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert v.stdout.strip() == f"wattui {wattui.__version__}"
    record_and_check(str(venv / "bin" / "wattui"), [], other, tmp_path / "store", tmp_path)


def test_sdist_leaves_the_tests_out_on_purpose(tmp_path):
    """The sdist builds and documents the package; the tests need the repository (sample
    store, snapshots, NVML stand-in, other Pythons), so MANIFEST.in leaves them out."""
    code = f"from setuptools import build_meta as b; print(b.build_sdist({str(tmp_path)!r}))"
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    import tarfile

    (sdist,) = tmp_path.glob("wattui-*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "wattui/py.typed",
        "wattui/data/getzner/LICENSE-MIT",
    } <= names
    assert {"wattui/record/report_shim.py", "wattui/tui/wattui.tcss", "docs/session-format.md"} <= names
    assert "wattui/sources/_ticker.c" in names  # an install from the sdist compiles it
    assert not any(n.endswith(".so") for n in names)
    assert not any(n.startswith(("tests/", "bench/", "sample_runs/", "scripts/")) for n in names)
    assert "prune tests" in (ROOT / "MANIFEST.in").read_text()
