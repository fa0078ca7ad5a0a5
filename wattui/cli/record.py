"""``wattui record``: record a run headless, in the foreground or (``--detach``) in the
background, where :func:`detach` also starts the recorder behind ``run``, ``attach`` and
``demo``'s live screen."""

from __future__ import annotations

import argparse
import sys

from wattui import exitcodes
from wattui.cli.common import CliError, options_from_args


def add_parser(sub, common) -> None:
    r = sub.add_parser("record", help="record a run headless (launch with -- CMD, or --pid PID)")
    common.record(r)
    r.add_argument("--pid", type=int, help="follow a running process and its descendants")
    r.add_argument("--detach", action="store_true", help="record in the background; print the session id")
    r.add_argument("--no-passthrough", action="store_true", help=argparse.SUPPRESS)
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")


def new_recorder(opts):
    """A Recorder for ``opts`` with the exporters they ask for subscribed (Prometheus,
    --log-to): the one place a command builds a recorder."""
    from wattui.exporters.recording import subscribe_exporters
    from wattui.record.recorder import Recorder

    return subscribe_exporters(Recorder(opts))


def run(args) -> int:
    from wattui.record.recorder import RecordError

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.pid is not None and command:
        raise CliError("give either --pid PID or -- CMD, not both")
    if args.pid is None and not command:
        raise CliError("nothing to record: wattui record -- CMD ARGS...  or  wattui record --pid PID")
    opts = options_from_args(args)
    opts.passthrough = not args.no_passthrough
    if args.detach:
        from wattui.record.options import record_argv

        run = ["--pid", str(args.pid)] if args.pid is not None else ["--", *command]
        return detach([*record_argv(opts, session=False), *run], opts)
    rec = new_recorder(opts)
    try:
        if args.pid is not None:
            return rec.attach(args.pid)
        return rec.launch(command)
    except RecordError as e:
        raise CliError(str(e), e.exit_code) from None


def detach(
    argv: list[str], opts, wait_s: float = 15.0, quiet: bool = False, fail_early: bool = True
) -> int:
    """Start the same recording as a background process in its own session (immune to
    the terminal hanging up), print its session id and return once the run has started.
    The session's folder is made here first (a fresh id if one is taken);
    ``opts.session_id`` is set to it.

    A run that cannot start (``cannot start pythn: No such file or directory``) is a
    CliError naming the reason, with the shell's code (127 not found, 126 not
    executable), unless ``fail_early`` is False (the live screen shows the reason)."""
    import os
    import subprocess
    import time

    from wattui.store.paths import (
        create_file,
        make_private_dir,
        recorder_log_path,
        recorder_logs_dir,
        sessions_dir,
        store_root,
    )
    from wattui.store.reader import CorruptSession, Session
    from wattui.store.schema import META

    root = store_root(opts.store)
    argv = [a for a in argv if a != "--detach"]
    if argv and argv[0] == "record":
        argv = argv[1:]
    argv = _without_session_id(argv)
    logs = recorder_logs_dir(root)
    sid = _reserve_session(root, opts.session_id)
    opts.session_id = sid  # the caller (the live screen) opens this session
    sdir = sessions_dir(root) / sid
    log_path = recorder_log_path(root, sid)
    try:
        make_private_dir(logs)
        log_file = create_file(log_path, append=True)  # 0600: the run's messages
    except OSError as e:
        _release_session(sdir)
        raise CliError(f"cannot use the store {root}: {e.strerror or e}") from None
    try:
        with log_file as log, open(os.devnull, "rb") as devnull:
            # --no-passthrough: the run's output goes to the session's output.log only, not
            # a second time into the recorder's own log.
            proc = subprocess.Popen(
                [sys.executable, "-m", "wattui", "record", "--session-id", sid,
                 "--session-reserved", "--no-passthrough", *argv],
                stdin=devnull,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
    except OSError as e:
        _release_session(sdir)
        raise CliError(f"cannot start the background recorder: {e.strerror or e}") from None
    # The baseline is measured before the run starts: wait for it too.
    deadline = time.monotonic() + wait_s + float(getattr(opts, "baseline_s", 0.0) or 0.0)
    while time.monotonic() < deadline:
        exited = proc.poll() is not None
        session = None
        if (sdir / META).exists():
            try:
                session = Session.open(sdir)
            except CorruptSession:
                session = None  # half written: look again
        if session is not None:
            meta = session.meta
            started = meta.get("pid") is not None or meta.get("status") != "running"
            if started or exited:
                never_ran = meta.get("mode") == "launch" and meta.get("pid") is None
                if fail_early and never_ran and session.status in ("failed", "interrupted"):
                    from wattui.sessions import failure_reason

                    code = meta.get("exit_code")
                    raise CliError(
                        f"{failure_reason(session) or 'the run could not start'} "
                        f"(session {sid}; details: wattui show {sid})",
                        code if code in (exitcodes.NOT_EXECUTABLE, exitcodes.NOT_FOUND) else exitcodes.USAGE,
                    )
                if not quiet:
                    print(sid)
                return 0
        elif exited:
            _release_session(sdir)
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise CliError(f"the background recorder stopped at once: {tail[0]}")
        time.sleep(0.05)
    if (sdir / META).exists():  # the recorder is up; the run is slow to start
        if not quiet:
            print(sid)
        return 0
    raise CliError(f"the background recorder did not start within {wait_s:.0f} s (log: {log_path})")


def _without_session_id(argv: list[str]) -> list[str]:
    """The record options minus --session-id (detach passes the id it reserved)."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--":
            return out + argv[i:]
        if a == "--session-id":
            skip = True
            continue
        if a.startswith("--session-id=") or a == "--session-reserved":
            continue
        out.append(a)
    return out


def _reserve_session(root, given: str | None) -> str:
    """Make the (empty) folder of a new session, so two recorders never share an id."""
    from wattui.record.recorder import ID_ATTEMPTS
    from wattui.store.paths import make_private_dir, new_session_id, sessions_dir

    for _ in range(ID_ATTEMPTS):
        sid = given or new_session_id()
        try:
            make_private_dir(sessions_dir(root) / sid, exist_ok=False)
            return sid
        except FileExistsError:
            if given:
                raise CliError(
                    f"session {sid} already exists in {root}: choose another --session-id"
                ) from None
        except OSError as e:
            raise CliError(f"cannot use the store {root}: {e.strerror or e}") from None
    raise CliError(f"no free session id in {root} after {ID_ATTEMPTS} tries")


def _release_session(sdir) -> None:
    """The recorder never started: remove the folder reserved for it (if still empty)."""
    import contextlib

    with contextlib.suppress(OSError):
        sdir.rmdir()

