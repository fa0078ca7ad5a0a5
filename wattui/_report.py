"""The public report API: ``wattui.report(accuracy=0.91, epoch=3)`` and ``wattui.watch(model, x)``.

Standard library only, never blocks on anything but one small local ``os.write``, and never
raises into the training script. What it does:

- Channel directory (per user): ``$WATTUI_CHANNEL_DIR``, else ``$XDG_RUNTIME_DIR/wattui``, else
  ``/tmp/wattui-<uid>``. The recorder creates it (mode 0700). ``report()`` refuses a directory
  that is not a real directory owned by the current uid or that grants any group/other
  permission, so another user can neither read the events nor inject them.
- A watched process appends one JSON line per event to ``<dir>/<pid>.ndjson`` (``O_APPEND``,
  one ``os.write`` per line, mode 0600)::

      {"t": 1732300000.1, "pid": 1234, "seq": 7, "values": {"accuracy": 0.91, "epoch": 3}}

- "Watched" means ``$WATTUI_CHANNEL_DIR`` is set (a recorder launched this script), or a
  ``<dir>/<pid>.watch`` marker exists (a recorder attached with ``--pid``). Until then events
  go to a bounded in-memory deque (the last 10,000) and the marker is looked for at most once
  a second; once it appears the buffer is flushed, so events from before the attach arrive
  too. If the marker goes away (the recorder detached) the process goes back to buffering.

Threads: a call that finds another thread writing buffers its event instead of waiting,
except while attached, where it waits at most 50 ms (so busy threads cannot overflow the
buffer). Once a second an attached process also checks that its file is still there and
starts a new one if a recorder removed it.

Values: numbers (int/float, finite) under any name; strings only for ``model`` and ``name``
(at most 200 characters). Anything else is dropped and counted in ``stats()``.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import math
import os
import stat
import sys
import threading
import time

__all__ = ["report", "watch", "channel_dir", "stats"]

ENV_DIR = "WATTUI_CHANNEL_DIR"
ENV_SESSION = "WATTUI_SESSION"
BUFFER_MAX = 10_000
CHECK_INTERVAL_S = 1.0
TEXT_KEYS = frozenset(("model", "name"))
MAX_TEXT = 200
MAX_VALUES = 256
LOCK_WAIT_S = 0.05  # attached: wait this long at most for another thread's write

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # built once
_isfinite = math.isfinite
_now = time.time
_mono = time.monotonic


def channel_dir() -> str:
    """The channel directory for this user (not created, not checked)."""
    d = os.environ.get(ENV_DIR)
    if d:
        return d
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is invalid, ignored
        return os.path.join(xdg, "wattui")
    return os.path.join("/tmp", f"wattui-{os.getuid()}")


def dir_is_safe(path: str) -> bool:
    """True when ``path`` is a directory (not a symlink to one) owned by us with no
    group/other permission bits."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0


class _State:
    __slots__ = (
        "pid",
        "dir",
        "env_mode",
        "fd",
        "seq",
        "buf",
        "next_check",
        "dropped",
        "refused",
        "write_errors",
        "truncated",
        "session",
        "opened_once",
        "counter",
        "lock",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pid = os.getpid()
        env = os.environ.get(ENV_DIR)
        self.env_mode = bool(env)
        self.dir = channel_dir()
        self.session = os.environ.get(ENV_SESSION) or None
        self.fd = -1
        self.seq = 0
        self.counter = itertools.count(1)
        self.lock = threading.Lock()  # a fresh one after fork: the old one may be held
        self.buf: collections.deque = collections.deque(maxlen=BUFFER_MAX)
        self.next_check = 0.0  # monotonic time of the next marker / directory check
        self.dropped = 0  # values dropped as invalid
        self.refused = 0  # attach attempts refused (unsafe directory)
        self.write_errors = 0
        self.truncated = 0  # events that fell out of the full buffer
        self.opened_once = False


_st = _State()


def _clean(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        tv = type(v)
        if tv is float:
            if _isfinite(v):
                out[k] = v
                continue
        elif tv is int:
            if -(2**53) <= v <= 2**53:
                out[k] = v
                continue
        elif tv is str:
            if k in TEXT_KEYS:
                out[k] = v[:MAX_TEXT]
                continue
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            # numpy scalars, int/float subclasses
            try:
                f = float(v)
            except Exception:  # noqa: BLE001
                f = math.nan
            if _isfinite(f):
                out[k] = f
                continue
        elif hasattr(v, "item") and hasattr(v, "dtype"):  # numpy / torch 0-d values
            try:
                f = float(v.item())
            except Exception:  # noqa: BLE001
                f = math.nan
            if _isfinite(f):
                out[k] = f
                continue
        _st.dropped += 1
    return out


def _line(t: float, seq: int, values: dict, kind: str | None) -> bytes:
    rec = {"t": t, "pid": _st.pid, "seq": seq, "values": values}
    if kind:
        rec["kind"] = kind
    if _st.session:
        rec["session"] = _st.session
    return (_encode(rec) + "\n").encode()


def _open() -> bool:
    """Open ``<dir>/<pid>.ndjson`` if the directory is safe. Returns True on success."""
    st = _st
    if not dir_is_safe(st.dir):
        st.refused += 1
        return False
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO: ENXIO, no wait
    if not st.opened_once:
        # A file left by an earlier process with the same pid is stale: start it afresh.
        flags |= os.O_TRUNC
    try:
        fd = os.open(os.path.join(st.dir, f"{st.pid}.ndjson"), flags, 0o600)
    except OSError:
        st.write_errors += 1
        return False
    try:
        fst = os.fstat(fd)
        if fst.st_uid != os.getuid() or not stat.S_ISREG(fst.st_mode):
            os.close(fd)
            st.refused += 1
            return False
    except OSError:
        os.close(fd)
        return False
    st.fd = fd
    st.opened_once = True
    return True


def _close() -> None:
    if _st.fd >= 0:
        try:
            os.close(_st.fd)
        except OSError:
            pass
        _st.fd = -1


def _write(data: bytes) -> bool:
    try:
        os.write(_st.fd, data)
        return True
    except OSError:
        _st.write_errors += 1
        _close()
        return False


def _flush_buffer() -> None:
    buf = _st.buf
    while buf:
        t, seq, values, kind = buf[0]
        if not _write(_line(t, seq, values, kind)):
            return
        buf.popleft()


def _check(now_mono: float) -> None:
    """At most once a second: decide whether someone watches, and attach or detach."""
    st = _st
    st.next_check = now_mono + CHECK_INTERVAL_S
    if st.env_mode:
        watched = True
    else:
        try:
            watched = os.path.exists(os.path.join(st.dir, f"{st.pid}.watch"))
        except (OSError, ValueError):
            watched = False
    if watched and st.fd >= 0 and not _file_is_current():
        _close()  # the reader removed (or replaced) our file: write to a new one
    if watched and st.fd < 0:
        if _open():
            _flush_buffer()
    elif not watched and st.fd >= 0:
        _close()


def _file_is_current() -> bool:
    try:
        a = os.stat(os.path.join(_st.dir, f"{_st.pid}.ndjson"), follow_symlinks=False)
        b = os.fstat(_st.fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def report(**values) -> None:
    """Report named numbers (and ``model``/``name`` strings) to a watching wattui.

    Special keys: ``epoch``, ``step``, ``total_epochs``, ``accuracy`` (a fraction or a
    percentage). Never raises; invalid values are dropped and counted.
    """
    _emit(values, None)


def _emit(values: dict, kind: str | None) -> None:
    try:
        st = _st
        if os.getpid() != st.pid:  # forked: a new process gets its own file and buffer
            st.reset()
        if len(values) > MAX_VALUES:
            st.dropped += len(values) - MAX_VALUES
            values = dict(list(values.items())[:MAX_VALUES])
        clean = _clean(values)
        if not clean:
            return
        seq = next(st.counter)  # atomic under the GIL
        st.seq = seq
        item = (_now(), seq, clean, kind)
        lock = st.lock
        if not (lock.acquire(False) or (st.fd >= 0 and lock.acquire(True, LOCK_WAIT_S))):
            # Not attached and another thread holds the lock, or a signal handler interrupted
            # a write on this thread: buffer it (the next call that gets the lock flushes)
            if len(st.buf) == BUFFER_MAX:
                st.truncated += 1
            st.buf.append(item)
            return
        try:
            now = _mono()
            if now >= st.next_check:
                _check(now)
            if st.fd >= 0:
                if st.buf:
                    _flush_buffer()
                if st.fd >= 0 and _write(_line(*item)):
                    return
            buf = st.buf
            if len(buf) == BUFFER_MAX:
                st.truncated += 1
            buf.append(item)
        finally:
            lock.release()
    except Exception:  # noqa: BLE001 - never raise into the training script
        try:
            _st.write_errors += 1
        except Exception:  # noqa: BLE001
            pass


def _at_exit() -> None:
    """At interpreter exit: write what is still buffered, and what was dropped (a ``stats``
    record the recorder counts), when a recorder watches. Never raises, never waits long."""
    try:
        st = _st
        if os.getpid() != st.pid or not (st.env_mode or st.fd >= 0 or st.buf):
            return
        if not st.lock.acquire(True, 1.0):
            return
        try:
            if st.fd < 0:
                _check(_mono())
            if st.fd < 0:
                return
            _flush_buffer()
            lost = {
                k: v
                for k, v in (
                    ("buffer_overflow", st.truncated),
                    ("dropped_values", st.dropped),
                    ("write_errors", st.write_errors),
                )
                if v
            }
            if lost and st.fd >= 0:
                _write(_line(_now(), next(st.counter), lost, "stats"))
        finally:
            st.lock.release()
    except Exception:  # noqa: BLE001 - never raise at the script's exit
        pass


atexit.register(_at_exit)


def stats() -> dict:
    """Counters for diagnostics (and tests): what was dropped, buffered, refused."""
    return {
        "pid": _st.pid,
        "dir": _st.dir,
        "attached": _st.fd >= 0,
        "buffered": len(_st.buf),
        "dropped_values": _st.dropped,
        "refused": _st.refused,
        "write_errors": _st.write_errors,
        "buffer_overflow": _st.truncated,
        "seq": _st.seq,
    }


def _layer_split(est) -> dict:
    """Best-effort per-layer-type energy split from an estimate object or dict."""
    split = None
    for attr in ("by_type", "per_layer_type_j", "per_layer_type"):
        split = getattr(est, attr, None)
        if split is None and isinstance(est, dict):
            split = est.get(attr)
        if split is not None:
            break
    out = {}
    if isinstance(split, dict):
        for k, v in split.items():
            v = getattr(v, "energy_j", v)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and _isfinite(v):
                out[f"layer_{k}_j"] = float(v)
    return out


def _step_energy(est):
    for attr in ("total_energy_j", "energy_per_step_j", "energy_j"):
        v = getattr(est, attr, None)
        if v is None and isinstance(est, dict):
            v = est.get(attr)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and _isfinite(v):
            return float(v)
    return None


def watch(model, example_input) -> None:
    """Estimate the model's energy per training step and report it as a ``watch`` event.

    Uses ``wattui.estimate.estimate_model(model, example_input, mode="training")`` when
    available (it needs torch); if that cannot be imported or fails, nothing is reported.
    The event (``kind: "watch"``) carries ``est_step_energy_j`` (the estimate's
    ``total_energy_j``), ``est_batch_size``, ``layer_<Type>_j`` for each layer type in
    ``by_type``, and ``model`` (the model's class name). Never raises.
    """
    try:
        try:
            from wattui.estimate import estimate_model  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - ImportError, or a broken optional dependency
            return
        try:
            est = estimate_model(model, example_input, mode="training")
        except TypeError:
            est = estimate_model(model, example_input)
        values: dict = {}
        e = _step_energy(est)
        if e is not None:
            values["est_step_energy_j"] = e
        values.update(_layer_split(est))
        bs = getattr(est, "batch_size", None)
        if type(bs) is int and bs > 0:
            values["est_batch_size"] = bs
        name = type(model).__name__
        if isinstance(name, str):
            values["model"] = name
        _emit(values, "watch")
    except Exception:  # noqa: BLE001
        try:
            print("wattui.watch: estimate failed; continuing without it", file=sys.stderr)
        except Exception:  # noqa: BLE001
            pass
