"""Build the stand-in NVML library and point the real pynvml binding at it.

The stub (``fake_nvml.c``) is compiled with gcc into ``<dir>/libnvidia-ml.so.1``. Its
behaviour comes from a small key=value config file named by the environment variable
``WATTUI_FAKE_NVML_CONFIG`` (see the comment at the top of ``fake_nvml.c``).

In this process (tests)::

    from nvml_stub.build import FakeNvml
    fake = FakeNvml.create(tmp_path)          # builds (cached per omit set) + writes config
    fake.configure(count=8)                   # 8 GPUs, real clock
    with fake.activated():                    # pynvml now talks to the stub
        src = NvmlSource(visible=None, use_env=False)

In a subprocess (a CLI or a benchmark)::

    env = fake.subprocess_env()               # LD_LIBRARY_PATH + WATTUI_FAKE_NVML_CONFIG
    subprocess.run([...], env=env)

From a shell::

    python tests/nvml_stub/build.py OUTDIR [--count 8]   # prints the env to export

Nothing here patches wattui or pynvml's functions: in-process, the stub is loaded with
ctypes and installed as pynvml's library handle (``pynvml.nvmlLib``); in a subprocess,
the dynamic loader finds it first through ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

SOURCE = Path(__file__).with_name("fake_nvml.c")
LIB_NAME = "libnvidia-ml.so.1"
CONFIG_ENV = "WATTUI_FAKE_NVML_CONFIG"


class StubUnavailable(RuntimeError):
    """The stub cannot be built here (no C compiler)."""


def build_stub(outdir: str | os.PathLike, omit: tuple[str, ...] = ()) -> Path:
    """Compile ``fake_nvml.c`` into ``outdir/<variant>/libnvidia-ml.so.1`` and return its path.

    ``omit`` names NVML functions to leave out of the library (pynvml then raises
    ``NVMLError_FunctionNotFound`` for them). Rebuilds only when the source changed."""
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        raise StubUnavailable("no C compiler (gcc) on PATH: cannot build the stand-in NVML")
    src = SOURCE.read_bytes()
    tag = hashlib.sha256(src + repr(sorted(omit)).encode()).hexdigest()[:12]
    out = Path(outdir) / f"fake-nvml-{tag}"
    lib = out / LIB_NAME
    if lib.exists():
        return lib
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (LIB_NAME + f".tmp{os.getpid()}")
    cmd = [cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(SOURCE)]
    cmd += [f"-DOMIT_{name}" for name in omit]
    cmd += ["-lm", "-lpthread"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the NVML stub failed:\n{proc.stderr}")
    os.replace(tmp, lib)
    return lib


def render_config(settings: Mapping[str, object]) -> str:
    return "".join(f"{k}={v}\n" for k, v in settings.items())


_last_stamp = 0


def write_config(path: str | os.PathLike, settings: Mapping[str, object]) -> Path:
    """Write the stub's config atomically. The stub re-reads it when (inode, mtime, size)
    change; the mtime is set to a strictly increasing value so that two writes within one
    filesystem timestamp tick are still told apart."""
    global _last_stamp
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_config(settings))
    _last_stamp = max(time.time_ns(), _last_stamp + 1000)
    os.utime(tmp, ns=(_last_stamp, _last_stamp))
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def pynvml_using(lib_path: str | os.PathLike) -> Iterator[ctypes.CDLL]:
    """Make the real pynvml binding use the library at ``lib_path`` in this process,
    restoring pynvml's previous library handle afterwards."""
    import pynvml

    lib = ctypes.CDLL(str(lib_path))
    with pynvml.libLoadLock:
        saved = pynvml.nvmlLib
        pynvml.nvmlLib = lib
        pynvml._nvmlGetFunctionPointer_cache.clear()
    try:
        yield lib
    finally:
        with pynvml.libLoadLock:
            pynvml.nvmlLib = saved
            pynvml._nvmlGetFunctionPointer_cache.clear()


class FakeNvml:
    """A built stub plus its config file."""

    def __init__(self, lib: Path, config: Path):
        self.lib = Path(lib)
        self.config = Path(config)
        self.settings: dict[str, object] = {}
        self._cdll: ctypes.CDLL | None = None

    @classmethod
    def create(cls, workdir: str | os.PathLike, omit: tuple[str, ...] = (),
               builddir: str | os.PathLike | None = None, **settings: object) -> FakeNvml:
        workdir = Path(workdir)
        lib = build_stub(builddir or workdir, omit)
        fake = cls(lib, workdir / "fake_nvml.conf")
        fake.configure(**settings)
        return fake

    def configure(self, _replace: bool = True, **settings: object) -> None:
        """Write the config. Keys with dots can be given as a dict: ``configure(**{"gpu0.x": 1})``.
        With ``_replace=False`` the settings are merged into the current ones."""
        self.settings = ({} if _replace else dict(self.settings)) | {
            k: v for k, v in settings.items()
        }
        write_config(self.config, self.settings)

    def update(self, **settings: object) -> None:
        self.configure(_replace=False, **settings)

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = str(self.lib.parent) + (os.pathsep + old if old else "")
        env[CONFIG_ENV] = str(self.config)
        return env

    @contextlib.contextmanager
    def activated(self) -> Iterator[FakeNvml]:
        """Point this process's pynvml at the stub and its config, then restore both."""
        saved = os.environ.get(CONFIG_ENV)
        os.environ[CONFIG_ENV] = str(self.config)
        try:
            with pynvml_using(self.lib) as cdll:
                self._cdll = cdll
                cdll.fakeNvmlCallCount.restype = ctypes.c_ulong
                cdll.fakeNvmlCallCount.argtypes = [ctypes.c_char_p]
                yield self
        finally:
            self._cdll = None
            if saved is None:
                os.environ.pop(CONFIG_ENV, None)
            else:
                os.environ[CONFIG_ENV] = saved

    def calls(self, function: str) -> int:
        """How many times ``function`` was called in the stub (needs :meth:`activated`)."""
        assert self._cdll is not None, "FakeNvml.calls() needs FakeNvml.activated()"
        return int(self._cdll.fakeNvmlCallCount(function.encode()))

    def reset_calls(self) -> None:
        assert self._cdll is not None
        self._cdll.fakeNvmlResetCallCounts()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Build the stand-in NVML library.")
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=8, help="number of fake GPUs (default 8)")
    args = ap.parse_args(argv)
    fake = FakeNvml.create(args.outdir, count=args.count)
    print(f"export LD_LIBRARY_PATH={fake.lib.parent}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}")
    print(f"export {CONFIG_ENV}={fake.config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
