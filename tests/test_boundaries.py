"""Measurement, storage and analysis never import Textual; `import wattui` stays cheap."""

import subprocess
import sys

import pytest

CORE = [
    "wattui.sources.base",
    "wattui.sources.simulated",
    "wattui.sources.process",
    "wattui.sampler",
    "wattui.record.recorder",
    "wattui.store.reader",
    "wattui.store.writer",
    "wattui.sessions",
    "wattui.cli",
]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual(module):
    mods = _modules_after(f"import {module}")
    assert "textual" not in mods
    assert not any(m.startswith("wattui.tui") for m in mods)


def test_recording_and_reading_a_session_does_not_import_textual(tmp_path):
    code = f"""
from wattui.record.options import RecordOptions
from wattui.record.recorder import Recorder
from wattui.store.reader import list_sessions
from wattui.sessions import session_record
rec = Recorder(RecordOptions(store={str(tmp_path)!r}, simulate=1, quiet=True, passthrough=False))
assert rec.launch(["true"]) == 0
[s], _ = list_sessions({str(tmp_path)!r})
session_record(s)
s.samples(); s.events()
"""
    mods = _modules_after(code)
    assert "textual" not in mods
    assert "polars" in mods  # it did read the files


def test_import_wattui_is_cheap():
    mods = _modules_after("import wattui")
    for heavy in ("textual", "polars", "pynvml", "numpy", "torch", "psutil"):
        assert heavy not in mods, heavy


def test_import_linter_contract_holds():
    import shutil

    exe = shutil.which("lint-imports") or str(__import__("pathlib").Path(sys.executable).with_name("lint-imports"))
    r = subprocess.run([exe], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "KEPT" in r.stdout


def test_building_the_cli_parser_loads_no_heavy_module():
    """`wattui --help` and every command's start-up pay only for what they use."""
    mods = _modules_after("import wattui.cli as c; c.build_parser()")
    for heavy in ("textual", "polars", "numpy", "torch", "pynvml"):
        assert heavy not in mods, heavy


def test_compare_knows_the_formats_the_cli_offers():
    import wattui.cli as c
    from wattui.analysis.table import FORMATS

    sub = [a for a in c.build_parser()._actions if a.dest == "cmd"][0]
    fmt = [a for a in sub.choices["compare"]._actions if a.dest == "format"][0]
    assert tuple(fmt.choices) == FORMATS
