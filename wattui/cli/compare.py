"""The comparison screen's commands: ``compare``, ``tag``, ``rm``, ``rename``.

Textual is imported only when ``wattui compare`` opens the screen (no ``--format``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from wattui.cli.common import CliError


def _root(args) -> Path:
    from wattui.store.paths import store_root

    return store_root(args.store)


def _table_and_params(args):
    """The store's table under SAM parameters: those given, else the ones the sessions
    were recorded with when they agree (``compare.resolve_params``), and the notes."""
    from wattui.analysis import table as cmp

    try:
        table = cmp.load_table(_root(args))
        params, notes = cmp.resolve_params(table.rows, args.alpha, args.beta, args.sam_unit)
    except ValueError as e:
        raise CliError(str(e)) from None
    return table.with_params(params), params, notes


def cmd_compare(args) -> int:
    from wattui.analysis import table as cmp

    if args.sort:
        try:
            cmp.resolve_sort(args.sort)
        except ValueError as e:
            raise CliError(str(e)) from None
    table, params, notes = _table_and_params(args)
    if args.format is None:
        # A browser tab (wattui serve) has no tty but sets TEXTUAL_DRIVER for its driver.
        if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
            raise CliError("wattui compare needs a terminal; for text use --format md|csv|json|latex")
        from wattui.tui.compare import CompareApp

        CompareApp(
            _root(args),
            params=params,
            filter_text=args.filter or "",
            sort=args.sort,
            reverse=args.reverse,
            param_notes=notes,
        ).run()
        return 0
    for p in table.problems:
        print(f"wattui: warning: {p}", file=sys.stderr)
    for n in notes:
        print(f"wattui: {n}", file=sys.stderr)
    try:
        df = table.view(args.filter or "", args.sort or "started_at", args.reverse)
    except cmp.FilterError as e:
        raise CliError(str(e)) from None
    sys.stdout.write(cmp.export(df, args.format, params, table.problems))
    return 0


def cmd_tag(args) -> int:
    from wattui.store.manage import ManageError, expand_refs, tag

    root = _root(args)
    try:
        for sid in expand_refs(root, [args.id]):  # group:<ID> tags every part
            meta = tag(root, sid, args.tags, remove=args.remove)
            print(f"{meta['id']}: tags {', '.join(meta.get('tags') or []) or '(none)'}")
    except ManageError as e:
        raise CliError(str(e)) from None
    return 0


def cmd_rename(args) -> int:
    from wattui.store.manage import ManageError, expand_refs, rename

    root = _root(args)
    try:
        for sid in expand_refs(root, [args.id]):  # group:<ID> renames every part
            meta = rename(root, sid, args.name)
            print(f"{meta['id']}: renamed to {meta['name']!r}")
    except ManageError as e:
        raise CliError(str(e)) from None
    return 0


def cmd_rm(args) -> int:
    from wattui.store.manage import ManageError, delete, expand_refs

    root = _root(args)
    try:
        args.ids = expand_refs(root, args.ids)  # group:<ID> deletes every part
    except ManageError as e:
        raise CliError(str(e)) from None
    if not args.yes:
        from wattui.store.reader import find_session

        for ref in args.ids:  # say what does not match before asking for anything
            try:
                find_session(root, ref)
            except LookupError as e:
                raise CliError(f"{e}; nothing deleted (list them: wattui sessions)") from None
        if not sys.stdin.isatty():
            raise CliError("refusing to delete without --yes when stdin is not a terminal")
        names = ", ".join(args.ids)
        try:
            answer = input(f"Delete {len(args.ids)} session(s) ({names}) for good? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    rc = 0
    for ref in args.ids:
        try:
            sid = delete(root, ref)
        except ManageError as e:
            from wattui.sanitize import clean_text

            print(f"wattui: error: {clean_text(str(e))}", file=sys.stderr)
            rc = 2
            continue
        print(f"deleted {sid}")
    return rc


def run(args) -> int:
    cmd = {"compare": cmd_compare, "tag": cmd_tag, "rm": cmd_rm, "rename": cmd_rename}[args.cmd]
    return cmd(args)


def add_parser(sub, common) -> None:
    """Add ``compare``, ``tag``, ``rm`` and ``rename`` to the ``wattui`` subparsers."""
    FORMATS = ("md", "csv", "json", "latex")  # = wattui.analysis.table.FORMATS; polars loads only on use

    c = sub.add_parser(
        "compare",
        help="compare sessions: the comparison screen, or a table with --format",
        description="Without --format, open the comparison screen. With --format, print the "
        "table (alpha, beta and unit stated; simulated sessions marked). Filter terms: words, "
        "tag:T status:S host:H method:M date:YYYY-MM[-DD] since:D until:D sim:yes|no, '-' negates.",
    )
    common.store(c)
    c.add_argument("--format", choices=FORMATS, default=None, help="print the table instead")
    c.add_argument("--filter", metavar="TEXT", help="e.g. 'resnet tag:paper status:finished'")
    c.add_argument(
        "--sort", metavar="COL", help="column to sort by (e.g. sam, energy; --sort=-sam descends)"
    )
    c.add_argument("--reverse", action="store_true", help="sort in descending order")
    from wattui.metrics.sam import alpha_arg, beta_arg, unit_arg

    c.add_argument(
        "--alpha", "--sam-alpha", type=alpha_arg, default=None, metavar="A",
        help="SAM alpha (default: as recorded, else 5)",
    )
    c.add_argument(
        "--beta", "--sam-beta", type=beta_arg, default=None, metavar="B",
        help="SAM beta (default: as recorded, else 5)",
    )
    c.add_argument(
        "--sam-unit", type=unit_arg, default=None, metavar="kWh|Wh|J",
        help="SAM energy unit (default: the one the sessions were recorded with, else kWh)",
    )

    t = sub.add_parser("tag", help="add tags to a session (or --remove them)")
    common.store(t)
    t.add_argument("id", help="session id, unique prefix or name")
    t.add_argument("tags", nargs="+", metavar="TAG")
    t.add_argument("--remove", action="store_true", help="remove these tags instead")

    r = sub.add_parser("rm", help="delete sessions (asks first)")
    common.store(r)
    r.add_argument("ids", nargs="+", metavar="ID")
    r.add_argument("--yes", "-y", action="store_true", help="do not ask")

    n = sub.add_parser("rename", help="give a session a name")
    common.store(n)
    n.add_argument("id", help="session id, unique prefix or name")
    n.add_argument("name")
