"""RaplSource on a fake powercap tree built in a temp dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from wattui.sources.base import COUNTER, DERIVED, SourceUnavailable
from wattui.sources.rapl import RaplSource, rapl_probe

MAX = 1_000_000  # max_energy_range_uj of the fake zones


def zone(root: Path, rel: str, name: str, energy: int = 0, max_range: int | None = MAX) -> Path:
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    if max_range is not None:
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def set_energy(zone_dir: Path, uj: int) -> None:
    (zone_dir / "energy_uj").write_text(f"{uj}\n")


@pytest.fixture
def tree(tmp_path):
    """Two packages; package 0 has core/uncore/dram sub-zones listed flat (as sysfs does,
    via links), package 1 has its dram sub-zone only inside its directory; plus psys."""
    root = tmp_path / "powercap"
    z = {
        "pkg0": zone(root, "intel-rapl:0", "package-0", 900_000),
        "core0": zone(root, "intel-rapl:0/intel-rapl:0:0", "core", 10),
        "uncore0": zone(root, "intel-rapl:0/intel-rapl:0:1", "uncore", 10),
        "dram0": zone(root, "intel-rapl:0/intel-rapl:0:2", "dram", 5_000),
        "pkg1": zone(root, "intel-rapl:1", "package-1", 0),
        "dram1": zone(root, "intel-rapl:1/intel-rapl:1:0", "dram", 0),
        "psys": zone(root, "intel-rapl:2", "psys", 0),
    }
    (root / "intel-rapl").mkdir()  # the control-type directory, no counter
    for sub in ("intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:0:2"):
        os.symlink(root / "intel-rapl:0" / sub, root / sub)
    (z["pkg0"] / "constraint_0_power_limit_uw").write_text("125000000\n")
    return root, z


def test_devices_count_each_zone_once(tree):
    root, _ = tree
    src = RaplSource(str(root))
    infos = {d.key: d for d in src.devices()}
    assert sorted(infos) == ["cpu-package-0", "cpu-package-1", "dram-0", "dram-1"]
    assert {d.kind for k, d in infos.items() if k.startswith("dram")} == {"dram"}
    assert infos["cpu-package-0"].kind == "cpu" and infos["cpu-package-0"].power_limit_w == 125.0
    assert all(d.energy_method == COUNTER and d.power_method == DERIVED for d in infos.values())
    assert src.needs_fast_poll is False


def test_energy_is_exact_across_a_wrap_and_ignores_subzones(tree):
    root, z = tree
    src = RaplSource(str(root))
    first = {r.key: r for r in src.read(100.0)}
    assert all(r.energy_j == 0.0 for r in first.values())
    assert all(r.power_w is None for r in first.values())

    set_energy(z["pkg0"], 100_000)  # wrapped: 900_000 -> MAX -> 100_000 is +200_000 uJ
    set_energy(z["dram0"], 45_000)  # +40_000
    set_energy(z["pkg1"], 300_000)
    set_energy(z["core0"], 999_999)  # inside the package: must not be added anywhere
    set_energy(z["psys"], 999_999)
    r = {r.key: r for r in src.read(102.0)}
    assert r["cpu-package-0"].energy_j == pytest.approx(0.2, abs=1e-12)
    assert r["cpu-package-0"].power_w == pytest.approx(0.1)
    assert r["dram-0"].energy_j == pytest.approx(0.04, abs=1e-12)
    assert r["cpu-package-1"].energy_j == pytest.approx(0.3, abs=1e-12)
    assert r["dram-1"].energy_j == 0.0 and r["dram-1"].power_w == 0.0

    set_energy(z["pkg0"], 350_000)
    r = {r.key: r for r in src.read(104.0)}
    assert r["cpu-package-0"].energy_j == pytest.approx(0.45, abs=1e-12)
    assert r["cpu-package-0"].power_w == pytest.approx(0.125)
    assert r["cpu-package-0"].energy_method == COUNTER


def test_missing_range_is_noted(tmp_path):
    root = tmp_path / "pc"
    zone(root, "intel-rapl:0", "package-0", 5, max_range=None)
    (info,) = RaplSource(str(root)).devices()
    assert any("wraps undetected" in n for n in info.notes)


def test_missing_tree_is_one_line_source_unavailable(tmp_path):
    with pytest.raises(SourceUnavailable) as ei:
        RaplSource(str(tmp_path / "nope"))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("no RAPL energy counters under")
    assert "modprobe" in msg
    (entry,) = rapl_probe(str(tmp_path / "nope"))
    assert entry["available"] is False


def test_only_psys_is_not_enough(tmp_path):
    root = tmp_path / "pc"
    zone(root, "intel-rapl:0", "psys", 5)
    with pytest.raises(SourceUnavailable, match="no RAPL energy counters"):
        RaplSource(str(root))


def _unprivileged(fn):
    """Run ``fn()`` as an ordinary user and return its (string) result: directly when not
    root; as root, in a forked child that drops to uid/gid 65534 (root reads through
    chmod 000, so the permission case can only be provoked without root)."""
    if os.geteuid() != 0:
        return fn()
    if not hasattr(os, "fork"):
        pytest.skip("running as root without os.fork: cannot provoke permission denied")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
            os.write(w, out.encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 - report anything to the parent
            os.write(w, f"CHILD ERROR {type(e).__name__}: {e}".encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_permission_denied_says_how_to_grant_access(tmp_path):
    # A world-traversable tree (pytest's tmp root is private to its owner).
    base = Path(tempfile.mkdtemp(prefix="wattui-rapl-"))
    try:
        base.chmod(0o755)
        root = base / "powercap"
        z = zone(root, "intel-rapl:0", "package-0", 123)
        for p in (root, z):
            p.chmod(0o755)
        (z / "energy_uj").chmod(0)  # root-only, as on kernels since CVE-2020-8694

        def attempt() -> str:
            try:
                RaplSource(str(root))
            except SourceUnavailable as e:
                probe = {x["zone"]: x for x in rapl_probe(str(root))}["intel-rapl:0"]
                return f"{e}\n{probe['readable']}\n{probe['fix']}"
            return "NO ERROR"

        msg, readable, fix = _unprivileged(attempt).split("\n")
        assert msg.startswith("RAPL energy counters are root-only here (permission denied")
        assert "chmod o+r" in msg and "energy_uj" in msg
        assert readable == "False" and "chmod o+r" in fix
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_probe_lists_counted_and_skipped_zones(tree):
    root, _ = tree
    probe = {e["zone"]: e for e in rapl_probe(str(root))}
    assert probe["intel-rapl:0"]["key"] == "cpu-package-0" and probe["intel-rapl:0"]["readable"]
    assert probe["intel-rapl:0:2"]["key"] == "dram-0"
    assert probe["intel-rapl:1:0"]["key"] == "dram-1"
    assert probe["intel-rapl:0:0"]["counted"] is False and "double" in probe["intel-rapl:0:0"]["why"]
    assert probe["intel-rapl:2"]["counted"] is False and "platform" in probe["intel-rapl:2"]["why"]
