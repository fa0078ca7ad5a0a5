"""The recorder owns (launch) or follows (attach) a run and writes its session.

    sources -> Sampler (one thread) -> Recorder -> SessionWriter -> session files

Viewers never talk to the recorder: they read the files it writes. What runs in the
recorder's process besides (the Prometheus endpoint, a live experiment tracker) reads its
typed state (:meth:`Recorder.state`) and subscribes to its events (:meth:`Recorder.subscribe`,
:mod:`wattui.record.state`); nothing reads its private attributes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from types import MappingProxyType

from wattui import exitcodes
from wattui.groups.node_env import node_hostname
from wattui.model.kinds import ENERGY_KINDS
from wattui.model.values import finite_float
from wattui.record.devices import SourceSet, build_sources, follow_run, measure_baseline
from wattui.record.end_summary import format_summary, format_unsaved
from wattui.record.intake import RecorderIntake
from wattui.record.options import RecordOptions
from wattui.record.output_drain import IntakeWorker, OutputLog, pump, widen_pipe
from wattui.record.report_shim import child_pythonpath
from wattui.record.signals import RunSignals
from wattui.record.state import (
    DeviceTotals,
    Finished,
    LiveMetrics,
    Logged,
    RecorderEvent,
    RecorderSink,
    RecorderState,
    Sampled,
    Started,
    StatusChanged,
)
from wattui.sampler import Sampler
from wattui.store.paths import check_session_id, new_session_id, store_root
from wattui.store.schema import OUTPUT
from wattui.store.summary import SessionStats
from wattui.store.writer import SessionWriter

ID_ATTEMPTS = 16  # fresh ids tried when a generated one is taken


class RecordError(Exception):
    """A problem the user can fix; the message is one line. ``exit_code``: the code the
    command exits with (wattui.exitcodes)."""

    def __init__(self, message: str, exit_code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Recorder(RunSignals):
    """Records one session. Use :meth:`launch` or :meth:`attach`; both return an exit code."""

    def __init__(self, opts: RecordOptions):
        self.opts = opts
        self.root = store_root(opts.store)
        if opts.session_id is not None:
            try:
                check_session_id(opts.session_id)
            except ValueError as e:
                raise RecordError(str(e)) from None
        self.session_id = opts.session_id or new_session_id()
        self.writer: SessionWriter | None = None
        self.sampler: Sampler | None = None
        self.stats = SessionStats()
        self.devices: list = []
        self.notes: list[str] = []
        self.simulated = False
        self.baseline: dict | None = None
        self.signals_received: list[int] = []
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self.intake: RecorderIntake | None = None  # metrics intake, set up in _start
        self.intake_worker: IntakeWorker | None = None  # feeds and polls it off the main thread
        self.output_log: OutputLog | None = None  # the run's output -> output.log
        self.output_stats: dict = {}
        self._intake_ok = True  # False: the intake hung at the end and is left behind
        self.status = "starting"
        self._sinks: list[RecorderSink] = []
        self._command: tuple[str, ...] = ()
        self._host = ""
        self._started_at: float | None = None

    # -- state and events ---------------------------------------------------------
    def subscribe(self, sink: RecorderSink) -> None:
        """``sink(event)`` for every :mod:`wattui.record.state` event from now on (subscribe
        before :meth:`launch` / :meth:`attach` to see :class:`Started`)."""
        self._sinks.append(sink)

    def _publish(self, event: RecorderEvent) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:  # noqa: BLE001 - a sink never ends a recording
                pass

    def state(self) -> RecorderState:
        """The recording now, as a frozen snapshot (any thread; waits at most 2 s for the
        sampler, then reads what is there)."""
        now = self._newest_readings()
        got = self._lock.acquire(timeout=2.0)
        try:
            stats = self.stats.devices
            devices = []
            for d in list(self.devices):
                st = stats.get(d.key)
                r = now.get(d.key)
                devices.append(
                    DeviceTotals(
                        key=d.key,
                        kind=d.kind,
                        name=d.name,
                        uuid=d.uuid,
                        energy_method=d.energy_method,
                        simulated=d.simulated,
                        energy_j=finite_float(st.energy_up_to(r)) if st is not None else None,
                        power_w=finite_float(r.power_w if r is not None and r.power_w is not None
                                             else st.last_w) if st is not None else None,
                    )
                )
        finally:
            if got:
                self._lock.release()
        energies = [d.energy_j for d in devices if d.kind in ENERGY_KINDS and d.energy_j is not None]
        it = self.intake
        return RecorderState(
            session_id=self.session_id,
            status=self.status,
            host=self._host,
            name=self.opts.name,
            group=self.opts.group,
            command=self._command,
            simulated=self.simulated or any(d.simulated for d in devices),
            devices=tuple(devices),
            energy_j=sum(energies) if energies else None,
            started_at=self._started_at,
            sam_alpha=it.alpha if it is not None else 5.0,
            sam_beta=it.beta if it is not None else 5.0,
            sam_unit=it.unit if it is not None else "kWh",
            accuracy_key=it.accuracy_key if it is not None else None,
        )

    def live_metrics(self) -> LiveMetrics:
        """Accuracy (a fraction), SAM and the projected energy so far (any thread)."""
        if self.intake is None:
            return LiveMetrics()
        m = self.intake.summary()
        return LiveMetrics(
            accuracy=finite_float(m.get("accuracy")),
            sam=finite_float(m.get("sam")),
            projected_energy_j=finite_float(m.get("projected_energy_j")),
        )

    def _set_status(self, status: str) -> None:
        self.status = status
        self._publish(StatusChanged(status, self.state()))

    # -- sampling -----------------------------------------------------------------
    def _on_samples(self, samples) -> None:
        """About a second of samples at once (the sampler's batches): totals, rows, and
        the files flushed at least once a second."""
        events = []
        with self._lock:
            add = self.stats.add
            w = self.writer
            for sample in samples:
                add(sample)
                if self._sinks:
                    events.append(Sampled(sample.t_wall, self._total_energy()))
            if w is not None:
                w.add_samples(samples)
                last = samples[-1].t_mono
                if last >= self._next_flush:
                    self._next_flush = last + w.flush_every_s
                    w.flush(live=self._live_totals())
        if w is None:
            return
        self._follow_new_processes()
        for ev in events:
            self._publish(ev)

    _next_flush = 0.0
    _followed_pids: tuple[int, ...] | None = None

    def _follow_new_processes(self) -> None:
        """When the run's process tree changed (the process source refreshes it once a
        second), the intake polls at once: a new process's reports are read, and its
        marker written, without waiting for the intake's idle timer."""
        src, worker = self._proc_src, self.intake_worker
        if src is None or worker is None:
            return
        pids = src.pids
        if pids is not self._followed_pids:
            self._followed_pids = pids
            worker.follow(pids)
    _notes_logged = 0

    def _live_totals(self) -> dict:
        return {**self.stats.checkpoint(), "energy_j": self._total_energy()}

    def _total_energy(self, now: dict | None = None) -> float | None:
        """The session's energy from the totals, or, with ``now`` (the newest readings),
        up to the newest read."""
        return self.stats.total_energy({d.key: d.kind for d in self.devices}, now)

    def _newest_readings(self) -> dict:
        """Each device's reading in the sampler's last read, which the totals (updated a
        batch at a time, about once a second) may not have yet."""
        s = self.sampler.newest() if self.sampler is not None else None
        return {r.key: r for r in s.readings} if s is not None else {}

    def _start(self, command: list[str] | None, mode: str, pid: int | None, srcset: SourceSet):
        self.notes = srcset.notes
        self.simulated = srcset.simulated
        self.baseline = measure_baseline(srcset.sources, self.opts.baseline_s, self.opts.period_s)
        self.sampler = Sampler(srcset.sources, self.opts.period_s)
        self.sampler.subscribe_batch(self._on_samples)
        self.devices = self.sampler.devices()
        try:
            import psutil

            rec_started = psutil.Process().create_time()
        except Exception:  # noqa: BLE001
            rec_started = None
        self._command = tuple(command or ())
        self._host = node_hostname()  # WATTUI_HOSTNAME may override; liveness uses the real one
        meta = {
            "name": self.opts.name,
            "tags": list(self.opts.tags),
            "command": command,
            "mode": mode,
            "pid": pid,
            "cwd": os.getcwd(),
            "host": self._host,
            "recorder_pid": os.getpid(),
            "recorder_host": socket.gethostname(),
            "recorder_started": rec_started,
            "group": self.opts.group,
            "simulated": self.simulated,
            "period_s": self.sampler.period_s,
            "devices": [d.to_dict() for d in self.devices],
            "notes": self.notes,
            "baseline": self.baseline,
            "started_at": None,
            **self.opts.extra_meta,
        }
        try:
            self.writer = self._create_writer(meta)
        except (OSError, RecordError) as e:
            self.sampler.close()
            if isinstance(e, RecordError):
                raise
            where = e.filename or self.root
            raise RecordError(f"cannot create the session in {where}: {e.strerror or e}") from None
        for n in self.notes:
            self.writer.add_event({"kind": "warning", "message": n})
        self._notes_logged = len(self.notes)
        self._setup_intake()
        self._publish(Started(self.state()))

    def _create_writer(self, meta: dict) -> SessionWriter:
        """A new session folder; a generated id that is taken is replaced by a fresh one."""
        for _ in range(ID_ATTEMPTS):
            try:
                return SessionWriter(
                    self.root, self.session_id, meta, reserved=self.opts.session_reserved
                )
            except FileExistsError:
                if self.opts.session_id is not None:
                    raise RecordError(
                        f"session {self.session_id} already exists in {self.root}: "
                        "choose another --session-id"
                    ) from None
                self.session_id = new_session_id()
        raise RecordError(f"no free session id in {self.root} after {ID_ATTEMPTS} tries")

    def _setup_intake(self) -> None:
        self.intake = RecorderIntake(self, self.opts.metrics, run_pids=self.run_pids)
        try:
            with self._lock:
                self.writer.update_meta(metric_settings=self.intake.settings_meta())
        except Exception:  # noqa: BLE001 - metrics must never end a recording
            pass

    def _begin_sampling(self) -> None:
        first = self.sampler.sample_once()
        with self._lock:
            self.writer.update_meta(started_at=first.t_wall)
        self._started_at = first.t_wall
        self._set_status("running")
        self.sampler.start()

    def _announce(self) -> None:
        if self.opts.quiet:
            return
        tag = " [SIMULATED]" if self.simulated else ""
        print(f"wattui: recording session {self.session_id}{tag}", file=sys.stderr)
        for n in self.notes:
            print(f"wattui: {n}", file=sys.stderr)

    # -- launch -------------------------------------------------------------------
    def launch(self, command: list[str]) -> int:
        if not command:
            raise RecordError("no command given: wattui record -- CMD ARGS...")
        # Signals are answered from the first moment: before the run exists they stop the
        # recording from starting it; after, they are forwarded to its process group.
        old = self._install_handlers(self._forward)
        try:
            return self._launch(command)
        finally:
            self._restore(old)

    def _launch(self, command: list[str]) -> int:
        srcset = build_sources(self.opts, visible=os.environ.get("CUDA_VISIBLE_DEVICES"))
        self._start(command, "launch", None, srcset)
        self._announce()
        env = dict(os.environ)
        env["WATTUI_SESSION"] = self.session_id
        if self.opts.simulate:  # wattui.measure() in the run reads the same simulated GPUs
            env["WATTUI_SIMULATE"] = str(self.opts.simulate)
        if self.intake is not None:
            env.update(self.intake.child_env())
        if env.get("WATTUI_CHANNEL_DIR"):
            # `import wattui` works in the script even when its Python has no wattui
            try:
                env["PYTHONPATH"] = child_pythonpath(env["WATTUI_CHANNEL_DIR"], env.get("PYTHONPATH"))
            except OSError as e:
                self.notes.append(f"`import wattui` in the run may fail: cannot write its shim ({e})")
        self._begin_sampling()
        if self.signals_received:
            self._log_signals()
            self._finish("interrupted", None, note="stopped before the run was started")
            return 128 + self.signals_received[0]
        try:
            child = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: we forward signals to it
                env=env,
            )
        except OSError as e:
            # the shell's codes: 127 not found, 126 found but not runnable
            code = exitcodes.NOT_FOUND if isinstance(e, FileNotFoundError) else exitcodes.NOT_EXECUTABLE
            self._finish("failed", code, note=f"cannot start {command[0]}: {e.strerror or e}")
            raise RecordError(f"cannot start {command[0]!r}: {e.strerror or e}", code) from None
        self._child = child
        for signum in self.signals_received[self._forwarded :]:  # came while it started
            self._killpg(signum)
        self._forwarded = len(self.signals_received)
        for pipe in (child.stdout, child.stderr):
            widen_pipe(pipe.fileno())
        from wattui.sources.process import ProcessTreeSource

        proc_src = self._proc_src = ProcessTreeSource(child.pid)
        self.sampler.sources.append(proc_src)
        follow_run(self.sampler.sources, proc_src, self.baseline)
        self.devices = self.sampler.devices()
        with self._lock:
            self.writer.update_meta(pid=child.pid, devices=[d.to_dict() for d in self.devices])
            self.writer.add_event({"kind": "start", "pid": child.pid, "message": " ".join(command)})
        if self.intake is not None:
            self.intake.follow_pid(child.pid)
        self.output_log = OutputLog(self.writer.dir / OUTPUT)
        self._start_intake_worker()
        pumps = [
            threading.Thread(
                target=pump,
                args=(pipe, term if self.opts.passthrough else None, self.output_log,
                      self.intake_worker, n),
                name=f"wattui-pump-{n}",
                daemon=True,
            )
            for n, (pipe, term) in enumerate(((child.stdout, sys.stdout), (child.stderr, sys.stderr)))
        ]
        for t in pumps:
            t.start()
        # The main thread only waits and answers signals; output, parsing and the
        # metrics file are other threads' work.
        self._wait_for(child)
        for t in pumps:
            t.join(timeout=5)
        self._log_signals()
        rc = child.returncode
        code = 128 - rc if rc < 0 else rc
        if self.signals_received and code != 0:
            status = "interrupted"
        else:
            status = "finished" if code == 0 else "failed"
        self._finish(status, code)
        return code

    def _start_intake_worker(self) -> None:
        if self.intake is not None:
            self.intake_worker = IntakeWorker(self.intake, on_error=self.notes.append)

    def _end_output(self) -> None:
        """The run has ended: parse what waits (bounded), close the intake, write the
        rest of the output; record what had to be dropped or left unparsed."""
        w = self.intake_worker
        if w is not None:
            self._intake_ok = w.finish()
            self.output_stats["output_lines_not_parsed"] = w.shed_lines
        log = self.output_log
        if log is not None:
            log.close()
            self.output_stats["output_dropped_bytes"] = log.dropped_bytes
            if log.dropped_bytes:
                self.notes.append(
                    f"output.log is missing {log.dropped_bytes} bytes of the run's output "
                    f"({log.last_error or 'the disk refused writes'})"
                )
        if w is not None and w.shed_lines:
            self.notes.append(
                f"{w.shed_lines} output lines were not searched for metrics (the run printed "
                "faster than they could be parsed; output.log has them all)"
            )

    def add_event(self, event: dict) -> None:
        """Called by the metrics intake (any thread)."""
        with self._lock:
            if self.writer is not None:
                self.writer.add_event(event)
        if self._sinks:
            self._publish(Logged(MappingProxyType(dict(event))))

    _proc_src = None  # the run's process tree (ProcessTreeSource), once it is known

    def run_pids(self) -> tuple[int, ...]:
        """The run's processes as the sampler last saw them (for the metrics intake)."""
        src = self._proc_src
        return src.pids if src is not None else ()

    def energy_now(self) -> float | None:
        """The energy up to the sampler's last read (any thread)."""
        now = self._newest_readings()
        with self._lock:
            return self._total_energy(now)

    # -- attach -------------------------------------------------------------------
    def attach(self, pid: int) -> int:
        import psutil

        try:
            proc = psutil.Process(pid)
            cmd = proc.cmdline()
        except psutil.NoSuchProcess:
            raise RecordError(f"no process with PID {pid}") from None
        except psutil.AccessDenied:
            raise RecordError(f"cannot read process {pid}: permission denied") from None
        if pid == os.getpid():
            raise RecordError("wattui cannot attach to itself")
        tree = {pid}
        try:
            tree |= {c.pid for c in proc.children(recursive=True)}
        except psutil.Error:
            pass
        stop = threading.Event()

        def on_signal(signum, _frame):
            if not self._second_while_finishing(signum):
                self.signals_received.append(signum)
                stop.set()
                self._wake_main()

        old = self._install_handlers(on_signal)  # answered from the first moment
        try:
            return self._attach(pid, proc, cmd, tree, stop)
        finally:
            self._restore(old)

    def _attach(self, pid: int, proc, cmd: list[str], tree: set[int], stop: threading.Event) -> int:
        import psutil

        from wattui.sources.process import ProcessTreeSource

        srcset = build_sources(self.opts, attach_pids=tree)
        proc_src = self._proc_src = ProcessTreeSource(pid)
        srcset.sources.append(proc_src)
        follow_run(srcset.sources, proc_src, None)
        self._start(cmd, "attach", pid, srcset)
        self._announce()
        if self.intake is not None:
            self.intake.follow_pid(pid)
        with self._lock:
            self.writer.add_event({"kind": "start", "pid": pid, "message": " ".join(cmd)})
        self._begin_sampling()
        self._start_intake_worker()
        def alive() -> bool:
            try:
                return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        self._wait_for_exit(pid, alive, stop)
        self._log_signals()
        if stop.is_set():
            self._finish("interrupted", None, note="recording stopped before the run ended")
            return 130
        self._finish("finished", None)
        return 0

    # -- end ----------------------------------------------------------------------
    def _finish(self, status: str, exit_code: int | None, note: str | None = None) -> None:
        self._finishing = True
        self._signals_at_finish = self._forwarded = len(self.signals_received)
        self._end_output()
        if self.sampler is not None:
            last = self.sampler.stop()
            try:  # the devices' notes now say what the run saw (counter resets, jitter)
                self.devices = self.sampler.devices()
            except Exception:  # noqa: BLE001 - keep the devices known at the start
                pass
            self.sampler.close()
        else:
            last = None
        if self.intake_worker is None and self.intake is not None:
            try:
                self.intake.close()
            except Exception:  # noqa: BLE001 - shutting down: never lose the session over this
                pass
        with self._lock:
            w = self.writer
            self.writer = None
        self.status = status
        if w is None:
            self._publish(Finished(status, None))
            return
        for n in self.notes[self._notes_logged:]:
            w.add_event({"kind": "warning", "message": n})
        if note:
            w.add_event({"kind": "warning", "message": note})
        w.add_event({"kind": "exit", "message": status, "energy_j": self._total_energy()})
        fields = {
            "status": status,
            "exit_code": exit_code,
            "devices": [d.to_dict() for d in self.devices],
            "ended_at": last.t_wall if last else time.time(),
            "summary": self.stats.to_dict(),
            "energy_j": self._total_energy(),
        }
        if note:
            fields["end_note"] = note
        fields.update({k: v for k, v in self.output_stats.items() if v})
        fields["notes"] = list(self.notes)
        if self.intake is not None and self._intake_ok:
            fields.update(self.intake.final_meta())
        saved = w.finish(live=self._live_totals(), **fields)
        self._publish(Finished(status, MappingProxyType(dict(w.meta))))
        if saved and not self.opts.quiet:
            print(format_summary(w.meta), file=sys.stderr)
        elif not saved:  # say what the files say, not what they would have said
            print(format_unsaved(w, status), file=sys.stderr)
