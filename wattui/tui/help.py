"""The help screen (``?``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
wattui: what this run costs in electricity, live

Keys
  q        quit (asks whether to stop the run or leave it running);
           Ctrl+C and Ctrl+Q ask the same
  w        cycle the power chart's window: 1 min, 10 min, 1 h, whole run
  1 2 3 4  window 1 min / 10 min / 1 h / whole run
  /        search the run's output (Enter to find, Esc to close)
  n  N     next / previous match      f   follow the output again
  c        comparison screen (when available), c again to come back
  ?        this help          Esc closes it
  Ctrl+P   commands: stop, leave, power window, search, compare

Labels: every figure says how it was obtained
  counter     read from a hardware energy counter (NVML, RAPL)
  integrated  integrated from sampled power
  estimated   derived from a model, not measured
  SIMULATED   a simulated GPU (--simulate): not a real measurement
  instant / average-1s / derived   what the live watts figure is
  mean        a finished run: its mean power
  n/a         not measured here (see `wattui doctor`)
  SAM *       energy under 2 units: 1/log10 rules the score (try --sam-unit)

The viewer only reads the session files: closing it (or losing the SSH
connection) leaves the run and its recording going. `wattui view` returns.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close"),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static(HELP_TEXT, id="help-text", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
