"""screenshots/ holds what the app shows now: each picture is regenerated from the real
app by scripts/screenshots.py and must match the committed file."""

import asyncio
import importlib.util
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("screenshots_script", REPO / "scripts" / "screenshots.py")
shots = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shots)


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


@pytest.mark.parametrize("shot", shots.SHOTS, ids=[s.name for s in shots.SHOTS])
@pytest.mark.slow
def test_committed_screenshot_matches_the_app(shot, tmp_path):
    if shot.name.startswith("estimate"):
        pytest.importorskip("torch", reason="the estimate output needs torch")
    path = asyncio.run(shots.take(shot, tmp_path))
    committed = REPO / "screenshots" / f"{shot.name}.svg"
    assert committed.exists(), f"run: python scripts/screenshots.py {shot.name}"
    assert path.read_text() == committed.read_text(), (
        f"screenshots/{shot.name}.svg is stale: run python scripts/screenshots.py {shot.name}"
    )


def test_every_svg_in_screenshots_has_a_generator():
    names = {s.name for s in shots.SHOTS}
    for f in (REPO / "screenshots").glob("*.svg"):
        assert f.stem in names, f"{f.name} is not made by scripts/screenshots.py"
