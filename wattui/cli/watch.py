"""The live screen's commands: ``wattui -- CMD`` (``run``), ``wattui attach PID``, ``wattui view``.

The recorder is not the viewer: ``run`` and ``attach`` start a background recorder
(``detach``: its own session, immune to the terminal hanging up) and open the live
screen on the session it writes. Closing the screen leaves the run and its recording
going; ``wattui view`` picks it up again.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from wattui.cli.common import CliError, options_from_args
from wattui.cli.record import detach, new_recorder
from wattui.model.group import GroupRef, is_group_ref
from wattui.record.options import record_argv


def add_parser(sub, common) -> None:
    r = sub.add_parser(
        "run",
        help="launch CMD under a background recorder and watch it live (also: wattui -- CMD)",
        description="Launch CMD under a background recorder and watch it live. Closing the "
        "viewer leaves the run going; `wattui view` returns to it.",
    )
    common.record(r)
    r.add_argument(
        "--no-tui", action="store_true", help="record in the foreground without the screen"
    )
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")

    a = sub.add_parser(
        "attach",
        help="follow a running process (and its children) and watch it live",
    )
    common.record(a)
    a.add_argument(
        "--no-tui", action="store_true", help="record in the foreground without the screen"
    )
    a.add_argument("pid", type=int, help="the process to follow")

    v = sub.add_parser(
        "view",
        help="watch a running session (default: the newest running one) or replay a finished one",
    )
    common.store(v)
    v.add_argument(
        "id",
        nargs="?",
        default=None,
        help="session id, unique prefix or name; group:ID for all nodes of a multi-node run",
    )
    v.add_argument(
        "--refresh",
        type=float,
        default=None,
        metavar="S",
        help="seconds between redraws (0.25 to 1; default 1)",
    )


def run(args) -> int:
    return {"run": cmd_run, "attach": cmd_attach, "view": cmd_view}[args.cmd](args)


def _with_session_id(opts):
    """A copy of the options; ``detach`` sets its ``session_id`` to the session folder it
    reserves (a fresh id if a generated one is taken)."""
    return dataclasses.replace(opts)


def _starter(argv: list[str], opts):
    """Called in the viewer's worker thread: start the recorder, return the session dir."""
    from wattui.store.paths import sessions_dir, store_root

    def start() -> Path:
        try:
            detach(argv, opts, quiet=True, fail_early=False)
        except CliError as e:
            raise RuntimeError(str(e)) from None
        return sessions_dir(store_root(opts.store)) / opts.session_id

    return start


# -- watching ----------------------------------------------------------------------------------
def _light_polars() -> None:
    """The viewer reads small slices: a couple of Polars threads are plenty (less memory)."""
    import os

    os.environ.setdefault("POLARS_MAX_THREADS", "2")


def _watch(
    store: Path, *, session_dir: Path | None = None, starter=None, **app_kwargs
) -> tuple[int, str | None, Path | None]:
    _light_polars()
    from wattui.tui.app import WattuiApp

    app = WattuiApp(store, session_dir, starter=starter, **app_kwargs)
    if app_kwargs.get("group"):
        result = app.run()
        return app.return_code or 0, result, None
    result = app.run()
    rc = app.return_code or 0
    sdir = app.live.session_dir if app.live is not None else session_dir
    return rc, result, sdir


def _after(result: str | None, sdir: Path | None, rc: int, launched: bool = True) -> int:
    """One line about what happened to the run; the exit code."""
    if rc or sdir is None:
        return rc
    from wattui.store.reader import CorruptSession, Session

    sid = sdir.name
    try:
        s = Session.open(sdir)
    except CorruptSession:
        return rc
    if result == "left-running" or (s.status == "running" and result != "stopped"):
        print(
            f"wattui: the run goes on in the background (session {sid}); "
            f"watch it again with: wattui view {sid}",
            file=sys.stderr,
        )
        return 0
    code = s.meta.get("exit_code")
    status = s.status + (f" (exit {code})" if code is not None else "")
    from wattui.sessions import failure_reason

    reason = failure_reason(s)
    status += f": {reason}" if reason else ""
    print(f"wattui: session {sid} {status}; details: wattui show {sid}", file=sys.stderr)
    if launched and s.meta.get("mode") == "launch" and isinstance(code, int):
        return code
    return 0


def launch_and_watch(
    command: list[str], opts, record_args: list[str] | None = None, **app_kwargs
) -> int:
    """Start ``command`` under a background recorder and open the live screen on it.

    ``record_args`` are the ``wattui record`` options to pass (default: built from
    ``opts``). ``app_kwargs`` go to :class:`wattui.tui.app.WattuiApp` (``refresh_s``,
    ``window``, ``clock``). Returns the run's exit code once it has ended, else 0.
    """
    from wattui.store.paths import store_root

    if not command:
        raise CliError("nothing to run: wattui -- CMD ARGS...")
    opts = _with_session_id(opts)
    args = list(record_args if record_args is not None else record_argv(opts, session=False))
    argv = [*args, "--", *command]
    rc, result, sdir = _watch(store_root(opts.store), starter=_starter(argv, opts), **app_kwargs)
    return _after(result, sdir, rc)


def attach_and_watch(pid: int, opts, record_args: list[str] | None = None, **app_kwargs) -> int:
    """Start a background recorder following ``pid`` and open the live screen on it."""
    import psutil

    from wattui.store.paths import store_root

    if not psutil.pid_exists(pid):
        raise CliError(f"no process with PID {pid}")
    opts = _with_session_id(opts)
    args = list(record_args if record_args is not None else record_argv(opts, session=False))
    argv = ["--pid", str(pid), *args]
    rc, result, sdir = _watch(store_root(opts.store), starter=_starter(argv, opts), **app_kwargs)
    return _after(result, sdir, rc)


def _tty_or_headless(args) -> bool:
    """True: show the screen. False: record in the foreground (asked for, or no terminal)."""
    if args.no_tui:
        return False
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "wattui: not a terminal: recording without the live screen (--no-tui)", file=sys.stderr
        )
        return False
    return True


def cmd_run(args) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CliError("nothing to run: wattui -- CMD ARGS...")
    opts = options_from_args(args)
    if not _tty_or_headless(args):
        from wattui.record.recorder import RecordError

        try:
            return new_recorder(opts).launch(command)
        except RecordError as e:
            raise CliError(str(e), e.exit_code) from None
    return launch_and_watch(command, opts)


def cmd_attach(args) -> int:
    opts = options_from_args(args)
    if not _tty_or_headless(args):
        from wattui.record.recorder import RecordError

        try:
            return new_recorder(opts).attach(args.pid)
        except RecordError as e:
            raise CliError(str(e), e.exit_code) from None
    return attach_and_watch(args.pid, opts)


def pick_session(store: Path, ref: str | None):
    """The session ``wattui view`` opens: ``ref``, else the newest running one."""
    from wattui.store.reader import find_session, list_sessions

    if ref:
        try:
            return find_session(store, ref)
        except LookupError as e:
            raise CliError(str(e)) from None
    sessions, _ = list_sessions(store)
    running = [s for s in sessions if s.is_live]
    if running:
        return running[-1]
    if not sessions:
        raise CliError("no sessions yet: start one with `wattui -- CMD` or `wattui record -- CMD`")
    newest = sessions[-1]
    raise CliError(
        "no session is running (none to watch live); replay a finished one with "
        f"`wattui view ID` (newest: {newest.id}, {newest.status}); list them: wattui sessions"
    )


def pick_group(store: Path, ref: str) -> tuple[str, list]:
    """The group id and sessions of ``group:<ID>``."""
    from wattui.groups.refs import group_sessions

    gid = GroupRef.parse(ref).id
    parts = group_sessions(store, gid)
    if not parts:
        raise CliError(f"no session of group {gid!r} in {store}; list them: wattui sessions")
    return gid, parts


def _after_group(gid: str, parts: list, result: str | None, rc: int) -> int:
    if rc:
        return rc
    from wattui.store.reader import CorruptSession, Session

    statuses = []
    for p in parts:
        try:
            statuses.append(Session.open(p.dir).status)
        except CorruptSession:
            continue
    if "running" in statuses:
        print(
            f"wattui: the group's run goes on ({statuses.count('running')} of "
            f"{len(parts)} node(s) recording); watch it again with: wattui view {GroupRef(gid)}",
            file=sys.stderr,
        )
    else:
        print(f"wattui: group {gid}: {len(parts)} node(s), all ended", file=sys.stderr)
    return 0


def cmd_view(args) -> int:
    from wattui.store.paths import store_root

    store = store_root(args.store)
    if is_group_ref(args.id):
        gid, parts = pick_group(store, args.id)
        if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
            raise CliError("wattui view needs a terminal; use `wattui compare --format md` for text")
        kwargs = {"group": gid}
        if args.refresh is not None:
            kwargs["refresh_s"] = min(1.0, max(0.25, args.refresh))
        rc, result, _ = _watch(store, **kwargs)
        return _after_group(gid, parts, result, rc)
    s = pick_session(store, args.id)
    # A browser tab (wattui serve) has no tty but sets TEXTUAL_DRIVER for its driver.
    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
        raise CliError("wattui view needs a terminal; use `wattui show` for text")
    kwargs = {}
    if args.refresh is not None:
        kwargs["refresh_s"] = min(1.0, max(0.25, args.refresh))
    rc, result, sdir = _watch(store, session_dir=s.dir, **kwargs)
    return _after(result, sdir, rc, launched=False)
