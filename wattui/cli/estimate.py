"""``wattui estimate`` and ``wattui calibrate``: listed in ``wattui --help`` here; they parse
their own options (:mod:`wattui.estimate.cli`), so ``main`` hands them their argv unparsed
(argparse's REMAINDER would swallow none that start with '-', such as --help first)."""

from __future__ import annotations

NAMES = ("estimate", "calibrate")


def add_parser(sub, common) -> None:
    for name, helptext in (
        ("estimate", "estimate a model's energy from its architecture (needs torch)"),
        ("calibrate", "fit energy predictors on this machine's hardware (needs torch)"),
    ):
        sub.add_parser(name, help=helptext, add_help=False)


def run_argv(argv: list[str]) -> int:
    """``argv`` starts with one of :data:`NAMES`."""
    from wattui.estimate import cli as est

    fn = est.run_estimate if argv[0] == "estimate" else est.run_calibrate
    return int(fn(argv[1:]) or 0)
