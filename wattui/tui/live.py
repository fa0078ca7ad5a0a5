"""The live screen: one session, read from its files while the recorder writes them.

One worker thread polls the session (``SnapshotBuilder``) once a second and posts a
frozen ``LiveSnapshot``; the screen applies it in one ``batch_update()``. The
thread waits until the previous snapshot was applied before posting the next one, so a
slow terminal never builds a queue, and it stops as soon as the screen closes.

``group=(store, ID)`` watches a multi-node run as one: the worker polls a
``GroupSnapshotBuilder`` (one builder per node) and posts one merged snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from wattui.format import fmt_bytes, fmt_pct
from wattui.record.control import stop_recorder
from wattui.sanitize import clean_text
from wattui.tui.chart import PowerChart
from wattui.tui.output_pane import OutputPanel
from wattui.tui.panels import (
    AccuracyPanel,
    EnergyPanel,
    GpuTable,
    ProcessPanel,
    SamPanel,
    SessionHeader,
    gpu_caption,
    set_if_changed,
)

if TYPE_CHECKING:  # the view model loads in the worker, after the first frame
    from wattui.view.snapshot import LiveSnapshot

# 1 Hz, whatever the sampling rate: each redraw of 8 GPUs' figures and the chart costs about
# as much as a poll of the session, and twice a second made the screen 2x nvitop's CPU
DEFAULT_REFRESH_S = 1.0
STOP_GRACE_S = 10.0


class SnapshotReady(Message):
    """A new snapshot of the session (posted by the worker thread)."""

    def __init__(self, snapshot: LiveSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class ViewerError(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PollFailed(Message):
    """One poll of the session failed; the worker tries again."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


MAX_FAILED_POLLS = 5  # polls in a row: then the screen exits with the error


class QuitScreen(ModalScreen[str]):
    """Stop the run, or leave it running and close the viewer?"""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop the run"),
        Binding("l", "choose('leave')", "Leave it running"),
        Binding("escape", "choose('cancel')", "Cancel"),
        Binding("ctrl+c", "choose('cancel')", "Cancel", show=False),  # a second Ctrl+C
    ]

    def __init__(self, what: str, mode: str | None = None) -> None:
        super().__init__()
        self.what = what
        self.mode = mode

    def compose(self) -> ComposeResult:
        target = "the process" if self.mode == "attach" else "it"

        def choice(key: str, what: str) -> Text:
            # Rich Text, not markup: "[s]" as markup would be strikethrough and "[l]" nothing.
            t = Text()
            t.append(f"[{key}]", style="bold reverse")
            t.append(f" {what}")
            return t

        with Vertical(id="quit-dialog"):
            yield Label(Text(f"Quit the viewer. The run ({self.what[:40]}) is still going."))
            yield Label(choice("s", f"stop the run (Ctrl+C to {target}; SIGTERM after 10 s)"))
            yield Label(choice("l", "leave it running (recording goes on; `wattui view` to return)"))
            yield Label(choice("Esc", "cancel"))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class KeysFooter(Footer):
    """Textual's footer, rebuilt only when the keys it would show changed. Textual rebuilds
    it at every change of the screen's bindings (each focus change, each action), which as
    the screen opens was five rebuilds of the same keys before the first frame."""

    _shown: tuple | None = None

    @staticmethod
    def _keys(screen: Screen) -> tuple:
        return tuple(
            (b.key, b.action, b.description, b.show, enabled, tooltip)
            for _node, b, enabled, tooltip in screen.active_bindings.values()
        )

    def compose(self) -> ComposeResult:
        if not self._bindings_ready and self.is_attached:
            # the keys in the first frame, not in a second one after the bindings signal
            # (which then finds them unchanged)
            try:
                shown = self._keys(self.screen)
            except ScreenStackError:
                # composed before its screen is on the app's stack (seen on Python 3.12+,
                # wattui view of a finished session): the bindings signal draws the keys
                shown = None
            if shown is not None:
                self.set_reactive(Footer._bindings_ready, True)
                self._shown = shown
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        shown = self._keys(screen)
        if shown == self._shown and self._bindings_ready:
            return
        super().bindings_changed(screen)
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._shown = shown  # rebuilt with these


class LiveScreen(Screen):
    """Everything about one session, updated a few times a second."""

    BINDINGS = [
        Binding("q", "quit_viewer", "Quit"),
        Binding("w", "cycle_window", "Window"),
        Binding("1", "window('1m')", "1 min", show=False),
        Binding("2", "window('10m')", "10 min", show=False),
        Binding("3", "window('1h')", "1 h", show=False),
        Binding("4", "window('all')", "whole run", show=False),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match(1)", "Next match", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("f", "follow", "Follow output", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        session_dir: Path | None = None,
        *,
        starter: Callable[[], Path] | None = None,
        clock: Callable[[], float] | None = None,
        refresh_s: float = DEFAULT_REFRESH_S,
        window: str = "10m",
        record_fn: Callable | None = None,
        group: tuple[Path, str] | None = None,
        name: str | None = "live",
    ) -> None:
        super().__init__(name=name)
        if session_dir is None and starter is None and group is None:
            raise ValueError("LiveScreen needs a session directory, a starter or a group")
        self.group = (Path(group[0]), str(group[1])) if group is not None else None
        self.session_dir = Path(session_dir) if session_dir is not None else None
        self.starter = starter
        self.clock = clock or time.time
        self.refresh_s = refresh_s
        self.initial_window = window
        self.record_fn = record_fn
        self.snapshot: LiveSnapshot | None = None
        self.snapshots_applied = 0
        self.stopping = False
        self.stop_result: str | None = None
        self._snap_applied = threading.Event()
        self._snap_applied.set()
        self._viewer_closing = threading.Event()
        self._reason_shown = False

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.on_resize()  # the size's classes before the widgets mount: one styling pass
        yield SessionHeader(id="header")
        yield GpuTable(id="gpus")
        yield Label("", id="gpu-caption")
        with Horizontal(id="power-row"):
            yield PowerChart(window=self.initial_window, id="chart")
            yield EnergyPanel(id="energy")
        with Horizontal(id="metrics-row"):
            yield AccuracyPanel(id="accuracy")
            yield SamPanel(id="sam")
            yield ProcessPanel(id="process")
        yield Static("", id="notes")
        yield OutputPanel(id="output")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(OutputPanel).log_widget.focus()
        self.on_resize()
        self.call_after_refresh(self._poll)  # the first frame first, then the disk

    def on_resize(self, _event=None) -> None:
        w, h = self.app.size
        self.set_class(w >= 120, "-wide")
        self.set_class(h >= 40, "-tall")

    def on_unmount(self) -> None:
        self._viewer_closing.set()

    # -- the worker ---------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="live-poll")
    def _poll(self) -> None:
        worker = get_current_worker()

        def cancelled() -> bool:
            return worker.is_cancelled or self._viewer_closing.is_set()

        def sleep(seconds: float) -> bool:
            # woken by the screen closing (on_unmount), not by polling for it: an idle
            # thread waking ten times a second costs more than its poll
            end = time.monotonic() + seconds
            while not cancelled():
                left = end - time.monotonic()
                if left <= 0:
                    return True
                self._viewer_closing.wait(min(1.0, left))
            return False

        try:
            if self.group is not None:
                # here, not at the top: the group merge loads Polars, which the first
                # frame of any live screen must not wait for
                from wattui.view.group_snapshot import GroupSnapshotBuilder

                builder = GroupSnapshotBuilder(
                    self.group[0], self.group[1], clock=self.clock, record_fn=self.record_fn
                )
            else:
                from wattui.view.snapshot import SnapshotBuilder

                if self.session_dir is None:
                    self.session_dir = Path(self.starter())
                builder = SnapshotBuilder(
                    self.session_dir, clock=self.clock, record_fn=self.record_fn
                )
        except Exception as e:  # noqa: BLE001 - shown to the user, then the app exits
            if not cancelled():
                self.post_message(ViewerError(str(e)))
            return
        done_polls = failed_polls = 0
        while not cancelled():
            t0 = time.monotonic()
            try:
                snap = builder.poll()
            except Exception as e:  # noqa: BLE001 - shown, never a silently frozen screen
                # a read can fail once (a file replaced under it); the next poll reads again
                failed_polls += 1
                if failed_polls >= MAX_FAILED_POLLS:
                    self.post_message(ViewerError(f"cannot read the session: {e}"))
                    return
                self.post_message(PollFailed(str(e)))
                if not sleep(self.refresh_s):
                    return
                continue
            failed_polls = 0
            while not self._snap_applied.wait(0.1):  # back-pressure: one snapshot in flight
                if cancelled():
                    return
            if cancelled():
                return
            self._snap_applied.clear()
            self.post_message(SnapshotReady(snap))
            over = snap.status not in ("running", "starting") and builder.caught_up
            if over or snap.error:
                done_polls += 1
                if done_polls >= 2:  # the session is over: nothing more will change
                    return
            wait = self.refresh_s - (time.monotonic() - t0)
            if not builder.caught_up:  # a long session's backlog: read on at once
                wait = 0.0
            if not sleep(max(0.05, wait)):
                return

    @on(SnapshotReady)
    def _apply(self, message: SnapshotReady) -> None:
        s = message.snapshot
        try:
            with self.app.batch_update():
                self._apply_snapshot(s)
        finally:
            self.snapshot = s
            self.snapshots_applied += 1
            self._snap_applied.set()

    def _apply_snapshot(self, s: LiveSnapshot) -> None:
        running = s.status == "running"
        if self.snapshots_applied == 0 and not running and not s.error:
            self.query_one(PowerChart).set_window("all")  # a replay: show the whole run
        self.query_one(SessionHeader).update_header(s)
        self.query_one(GpuTable).update_gpus(s.gpus)
        caption = gpu_caption(s.gpus)
        if running:
            caption = f"run CPU {fmt_pct(s.proc_cpu_pct)} RSS {fmt_bytes(s.proc_rss_b)} · {caption}"
        set_if_changed(self.query_one("#gpu-caption", Label), Text(caption))  # not markup
        chart = self.query_one(PowerChart)
        chart.set_points(
            s.history,
            now=s.now if running else None,
            method=s.power_method,
            latest=s.total_w if running else None,
        )
        if not running and s.status != "starting" and not s.history:
            chart.empty_message = "no samples: " + (
                "the run did not start" if s.reason and s.pid is None else f"the run {s.status}"
            )
        elif running and not s.gpus and not s.cpus:
            # nothing here has a power reading (no GPU, no RAPL): say so, don't wait forever
            chart.empty_message = "nothing here has a power reading (see wattui doctor)"
        self.query_one(EnergyPanel).update_energy(s.record, s.total_w, s.power_method, s.metrics)
        self.query_one(AccuracyPanel).update_metrics(s.metrics)
        self.query_one(SamPanel).update_sam(s.record)
        self.query_one(ProcessPanel).update_process(s.proc_cpu_pct, s.proc_rss_b, s.cpus, running)
        notes = " · ".join(s.notes[-2:])
        failure = s.error or s.reason
        if s.error:
            notes = f"error: {s.error}"
        elif s.reason:  # why the run failed: where the user looks, not in a log file
            notes = f"{s.status}: {s.reason}"
        if self.stopping:
            notes = "stopping the run..." + (f" {notes}" if notes else "")
        # Text, not markup: a reason or a note may hold "[...]" (a path, a command)
        set_if_changed(self.query_one("#notes", Static), Text(notes))
        if self.has_class("-has-notes") != bool(notes):
            self.set_class(bool(notes), "-has-notes")
        self.set_class(bool(failure), "-failure")
        out = self.query_one(OutputPanel)
        if out.display != s.has_output:
            out.display = s.has_output
        out.append(s.output_lines)
        out.set_live(s.output_live)
        if s.reason and not self._reason_shown and out.display:
            self._reason_shown = True
            out.append([f"[wattui] {s.status}: {s.reason}"])

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        self.notify(f"reading the session failed ({clean_text(message.error)}); trying again",
                    severity="warning", timeout=3)

    @on(ViewerError)
    def _error(self, message: ViewerError) -> None:
        self.app.exit(return_code=2, message=f"wattui: error: {message.error}")

    # -- actions ------------------------------------------------------------------------
    def action_cycle_window(self) -> None:
        w = self.query_one(PowerChart).cycle_window()
        self.notify(f"power chart window: {w}", timeout=1.5)

    def action_window(self, name: str) -> None:
        self.query_one(PowerChart).set_window(name)

    def action_search(self) -> None:
        out = self.query_one(OutputPanel)
        if out.display:
            out.open_search()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        out = self.query_one(OutputPanel)
        out.search(event.value)
        out.close_search()

    def key_escape(self) -> None:
        out = self.query_one(OutputPanel)
        if out.has_class("-searching"):
            out.close_search()

    def action_next_match(self, step: int) -> None:
        self.query_one(OutputPanel).next_match(step)

    def action_follow(self) -> None:
        self.query_one(OutputPanel).follow()

    def action_help(self) -> None:
        from wattui.tui.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def running_snapshot(self) -> LiveSnapshot | None:
        """The snapshot of a run this viewer could stop or leave, else None."""
        s = self.snapshot
        if s is None or s.status != "running" or self.stopping:
            return None
        return s

    def action_quit_viewer(self) -> None:
        """``q``, Ctrl+C, Ctrl+Q and the palette's Quit: ask whether to stop the run or
        leave it running, when there is a run to ask about."""
        s = self.running_snapshot()
        if s is None:
            self.app.exit(result="closed")
            return
        if s.group is not None:  # the nodes' recorders run on their nodes: nothing to stop
            self.app.exit(result="left-running")
            return
        if any(isinstance(scr, QuitScreen) for scr in self.app.screen_stack):
            return  # already asking

        def chosen(choice: str | None) -> None:
            if choice == "leave":
                self.action_leave_run()
            elif choice == "stop":
                self.action_stop_run()

        self.app.push_screen(QuitScreen(s.command or s.session_id, s.mode), chosen)

    def action_leave_run(self) -> None:
        """Close the viewer; the run and its recording go on."""
        self.app.exit(result="left-running" if self.running_snapshot() else "closed")

    def action_stop_run(self) -> None:
        """Stop the run the way Ctrl+C would (its recorder finishes the session), then exit."""
        s = self.running_snapshot()
        if s is None or s.group is not None:
            self.notify("no run to stop from here", timeout=2)
            return
        self.stopping = True
        self.notify("stopping the run (SIGINT to its recorder)...", timeout=3)
        attached = s.pid if s.mode == "attach" else None
        self._stop(s.recorder_pid, s.recorder_started, attached)

    @work(thread=True, exclusive=True, group="live-stop")
    def _stop(self, pid: int | None, started: float | None, attached: int | None) -> None:
        worker = get_current_worker()
        result = stop_recorder(
            pid,
            started,
            grace_s=STOP_GRACE_S,
            should_stop=lambda: worker.is_cancelled,
            attached_pid=attached,
        )
        self.stop_result = result
        if not worker.is_cancelled:
            self.app.call_from_thread(self.app.exit, result="stopped")
