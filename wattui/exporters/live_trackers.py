"""``wattui record --log-to mlflow|wandb|tensorboard[=TARGET]``: each finished epoch's
energy, power, accuracy and SAM go to the tracker while the run goes on.

:class:`TrackerLogSink` subscribes to the recorder's events: it opens the tracker run when
the session starts and hands every stored row to :meth:`LiveTrackerLog.on_event` (cheap: a
list append and, at an epoch end, one queue put); one daemon thread imports the library, opens
the run and logs, so a slow or failing tracker never delays the recording. A tracker error
is said once on stderr and logging stops; the session is unaffected. At the end the run gets
the session's totals and is closed (waiting at most ``CLOSE_WAIT_S``).
"""

from __future__ import annotations

import queue
import sys
import threading

from wattui.exporters.trackers import (
    TRACKERS,
    Sink,
    TrackerError,
    epoch_series,
    make_sink,
    summary_metrics,
)
from wattui.record.state import Finished, Logged, RecorderEvent, Started, StatusChanged
from wattui.sanitize import clean_text

CLOSE_WAIT_S = 30.0
_END = object()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``mlflow``, ``wandb=DIR``, ``tensorboard=LOGDIR``, ``mlflow=URI`` -> (name, target).
    ValueError (one line) for an unknown tracker."""
    name, sep, target = spec.partition("=")
    name = name.strip().lower()
    if name not in TRACKERS:
        raise ValueError(f"--log-to takes one of {', '.join(TRACKERS)} (optionally =TARGET), not {spec!r}")
    return name, (target if sep and target else None)


class LiveTrackerLog:
    def __init__(self, spec: str, run_name: str, params: dict, settings: dict, *, sink: Sink | None = None):
        self.to, self.target = parse_spec(spec)
        self.run_name = run_name
        self.params = params
        self.settings = settings  # sam_alpha, sam_beta, sam_unit, accuracy_key, started_at
        self._sink = sink
        self._rows: list[dict] = []
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="wattui-log-to", daemon=True)
        self._failed = False
        self.logged = 0
        self.ref: str | None = None

    def start(self) -> None:
        self._thread.start()

    def on_event(self, row: dict) -> None:
        kind = row.get("kind")
        if kind == "metric":
            self._rows.append(dict(row))
        elif kind == "epoch_end" and not self._failed:
            self._rows.append(dict(row))
            self._q.put(list(self._rows))

    def close(self, summary: dict[str, float]) -> None:
        self._q.put((_END, summary))
        self._thread.join(CLOSE_WAIT_S)

    def _say(self, what: str) -> None:
        try:
            print(f"wattui: --log-to {self.to}: {what}", file=sys.stderr)
        except Exception:  # noqa: BLE001
            pass

    def _work(self) -> None:
        try:
            sink = self._sink or make_sink(self.to, self.target)
            self.ref = sink.open(self.run_name, self.params)
        except TrackerError as e:
            self._fail(str(e))
            return
        except Exception as e:  # noqa: BLE001 - the tracker's own error: one line, recording goes on
            self._fail(_one_line(e))
            return
        s = self.settings
        while True:
            item = self._q.get()
            try:
                if isinstance(item, tuple) and item and item[0] is _END:
                    sink.finish(item[1])
                    return
                points = epoch_series(
                    item,
                    s.get("started_at"),
                    alpha=s.get("sam_alpha") or 5.0,
                    beta=s.get("sam_beta") or 5.0,
                    unit=s.get("sam_unit") or "kWh",
                    accuracy_key=s.get("accuracy_key"),
                )
                if points:
                    sink.log(points[-1])
                    self.logged += 1
            except Exception as e:  # noqa: BLE001
                self._fail(_one_line(e))
                return

    def _fail(self, why: str) -> None:
        self._failed = True
        self._say(f"stopped logging ({why}); the session is recorded as usual")


def _one_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:300]


class TrackerLogSink:
    """A recorder sink for ``--log-to SPEC``: a :class:`LiveTrackerLog` opened when the
    session starts (named after it, with SAM's parameters and the energy method), fed every
    row the intake stores, closed with the session's totals."""

    def __init__(self, spec: str, *, sink: Sink | None = None) -> None:
        parse_spec(spec)  # ValueError now, not when the session starts
        self.spec = spec
        self._sink = sink
        self.log: LiveTrackerLog | None = None

    def __call__(self, event: RecorderEvent) -> None:
        if isinstance(event, Started):
            self._open(event.state)
        elif self.log is None:
            return
        elif isinstance(event, Logged):
            self.log.on_event(dict(event.row))
        elif isinstance(event, StatusChanged) and event.state.started_at is not None:
            self.log.settings["started_at"] = event.state.started_at
        elif isinstance(event, Finished) and event.meta is not None:
            self._close(event.meta)

    def _open(self, st) -> None:
        gpus = [d for d in st.devices if d.kind == "gpu"]
        params = {
            "wattui_session": st.session_id,
            "sam_alpha": st.sam_alpha,
            "sam_beta": st.sam_beta,
            "sam_unit": st.sam_unit,
            "energy_method": ",".join(sorted({d.energy_method for d in gpus})) or "n/a",
            "simulated": st.simulated,
            "gpu_count": len(gpus),
        }
        settings = {k: params[k] for k in ("sam_alpha", "sam_beta", "sam_unit")}
        settings["accuracy_key"] = st.accuracy_key
        name = clean_text(st.name or st.session_id, 200)
        self.log = LiveTrackerLog(self.spec, name, params, settings, sink=self._sink)
        self.log.start()

    def _close(self, meta) -> None:
        rec = dict(meta)
        started, ended = meta.get("started_at"), meta.get("ended_at")
        rec["duration_s"] = (ended - started) if started and ended else None
        try:
            self.log.close(summary_metrics(rec))
        except Exception:  # noqa: BLE001 - the session is written already; never fail here
            pass
