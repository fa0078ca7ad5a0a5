"""The recorder owns (launch) or follows (attach) a run and writes its session.

    sources -> Sampler (one thread) -> Recorder -> SessionWriter -> session files

Viewers never talk to the recorder: they read the files it writes.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from wattui import exitcodes
from wattui.format import fmt_energy_precise as format_energy  # cli imports it from here
from wattui.groups.node_env import node_hostname
from wattui.record.output_drain import IntakeWorker, OutputLog, pump, widen_pipe
from wattui.record.report_shim import child_pythonpath
from wattui.sampler import DEFAULT_PERIOD_S, Sampler
from wattui.sources.base import PowerSource, SourceUnavailable
from wattui.store.paths import check_session_id, new_session_id, store_root
from wattui.store.schema import OUTPUT
from wattui.store.summary import SessionStats
from wattui.store.writer import SessionWriter

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ID_ATTEMPTS = 16  # fresh ids tried when a generated one is taken


class RecordError(Exception):
    """A problem the user can fix; the message is one line. ``exit_code``: the code the
    command exits with (wattui.exitcodes)."""

    def __init__(self, message: str, exit_code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RecordOptions:
    store: Path | None = None
    simulate: int | None = None  # number of simulated GPUs, or None for real sources
    period_s: float = DEFAULT_PERIOD_S
    baseline_s: float = 0.0
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    session_id: str | None = None
    session_reserved: bool = False  # record --detach made the (empty) session folder
    passthrough: bool = True  # copy the run's output to our stdout/stderr
    quiet: bool = False  # no summary at the end
    rapl_root: str = "/sys/class/powercap"
    group: str | None = None
    metrics: dict = field(default_factory=dict)  # options for the metrics intake
    prometheus_port: int | None = None  # serve /metrics while recording
    log_to: str | None = None  # mlflow|wandb|tensorboard[=TARGET]: per-epoch figures, live
    prometheus_host: str = "127.0.0.1"
    extra_meta: dict = field(default_factory=dict)


@dataclass
class SourceSet:
    sources: list[PowerSource]
    notes: list[str]  # one line per thing that cannot be measured, and why
    simulated: bool


def build_sources(
    opts: RecordOptions, *, visible: str | None = None, attach_pids: set[int] | None = None
) -> SourceSet:
    """GPU sources (NVML or simulated) and CPU sources (RAPL), with a note for each
    that is not available. Never raises for a missing device: a session without GPU
    energy is still a session, and it says so."""
    sources: list[PowerSource] = []
    notes: list[str] = []
    if opts.simulate:
        from wattui.sources.simulated import SimulatedSource

        sources.append(SimulatedSource(opts.simulate))
        notes.append(f"SIMULATED: {opts.simulate} simulated GPU(s); no real GPU is measured")
    else:
        try:
            from wattui.sources import nvml

            indices = None
            if attach_pids:
                held = nvml.gpus_of_pids(attach_pids)
                if held is None:
                    notes.append(
                        "cannot tell which GPUs the process uses; measuring all GPUs"
                    )
                elif not held:
                    notes.append(
                        "the process holds no GPU yet; measuring all GPUs"
                    )
                else:
                    indices = held
            src = nvml.NvmlSource(indices=indices, visible=visible)
            if not src.devices():
                notes.append("no GPU energy can be measured here: no GPU is visible to this run")
                src.close()
            else:
                sources.append(src)
        except SourceUnavailable as e:
            notes.append(f"no GPU energy can be measured here: {e}")
        except ImportError as e:
            notes.append(f"no GPU energy can be measured here: NVML support unavailable ({e})")
    try:
        from wattui.sources.rapl import RaplSource

        sources.append(RaplSource(opts.rapl_root))
    except SourceUnavailable as e:
        notes.append(f"no CPU energy: {e}")
    except ImportError as e:
        notes.append(f"no CPU energy: RAPL support unavailable ({e})")
    return SourceSet(sources, notes, simulated=bool(opts.simulate))


def _follow_run(sources: list[PowerSource], proc_src, baseline: dict | None) -> None:
    """Sources that can split a shared GPU (NVML) report the run's share from now on:
    the run is the process tree ``proc_src`` follows."""
    idle = (baseline or {}).get("watts") or None
    for src in sources:
        follow = getattr(src, "follow_run", None)
        if follow is not None:
            follow(lambda: proc_src.pids, idle)


class Recorder:
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
        self.intake = None  # metrics intake, set up in _start
        self.intake_worker: IntakeWorker | None = None  # feeds and polls it off the main thread
        self.output_log: OutputLog | None = None  # the run's output -> output.log
        self.output_stats: dict = {}
        self._intake_ok = True  # False: the intake hung at the end and is left behind
        self.exporter = None  # Prometheus endpoint, when asked for
        self.tracker_log = None  # --log-to: an experiment tracker fed at every epoch end

    # -- sampling -----------------------------------------------------------------
    def _on_sample(self, sample) -> None:
        with self._lock:
            self.stats.add(sample)
            w = self.writer
            if w is None:
                return
            w.add_sample(sample)
            if sample.t_mono >= self._next_flush:  # at least once a second
                self._next_flush = sample.t_mono + w.flush_every_s
                w.flush(live=self._live_totals())

    _next_flush = 0.0
    _notes_logged = 0

    def _live_totals(self) -> dict:
        return {
            "t_wall": self.stats.last_t,
            "devices": self.stats.to_dict(),
            "energy_j": self._total_energy(),
        }

    def _total_energy(self) -> float | None:
        kinds = {d.key: d.kind for d in self.devices}
        vals = [
            s.energy_j
            for k, s in self.stats.devices.items()
            if kinds.get(k) in ("gpu", "cpu", "dram") and s.energy_j is not None
        ]
        return sum(vals) if vals else None

    def _measure_baseline(self, sources: list[PowerSource]) -> dict | None:
        secs = self.opts.baseline_s
        if secs <= 0:
            return None
        sampler = Sampler(sources, self.opts.period_s)
        stats = SessionStats()
        sampler.subscribe(stats.add)
        sampler.sample_once()
        end = time.monotonic() + secs
        while time.monotonic() < end:
            time.sleep(min(sampler.period_s, max(0.0, end - time.monotonic())))
            sampler.sample_once()
        watts = {k: s.mean_w for k, s in stats.devices.items() if s.mean_w is not None}
        return {"seconds": secs, "watts": watts}

    def _start(self, command: list[str] | None, mode: str, pid: int | None, srcset: SourceSet):
        self.notes = srcset.notes
        self.simulated = srcset.simulated
        self.baseline = self._measure_baseline(srcset.sources)
        self.sampler = Sampler(srcset.sources, self.opts.period_s)
        self.sampler.subscribe(self._on_sample)
        self.devices = self.sampler.devices()
        try:
            import psutil

            rec_started = psutil.Process().create_time()
        except Exception:  # noqa: BLE001
            rec_started = None
        meta = {
            "name": self.opts.name,
            "tags": list(self.opts.tags),
            "command": command,
            "mode": mode,
            "pid": pid,
            "cwd": os.getcwd(),
            "host": node_hostname(),  # WATTUI_HOSTNAME may override; liveness uses the real one
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
        if self.opts.prometheus_port is not None:
            from wattui.exporters.prometheus import PrometheusExporter

            self.exporter = PrometheusExporter(
                self, self.opts.prometheus_host, self.opts.prometheus_port
            )
            self.exporter.start()
        if self.opts.log_to:
            self._setup_tracker_log()

    def _setup_tracker_log(self) -> None:
        from wattui.exporters.live_trackers import LiveTrackerLog
        from wattui.sanitize import clean_text

        it = self.intake
        methods = sorted({d.energy_method for d in self.devices if d.kind == "gpu"})
        params = {
            "wattui_session": self.session_id,
            "sam_alpha": getattr(it, "alpha", 5.0),
            "sam_beta": getattr(it, "beta", 5.0),
            "sam_unit": getattr(it, "unit", "kWh"),
            "energy_method": ",".join(methods) or "n/a",
            "simulated": self.simulated,
            "gpu_count": sum(1 for d in self.devices if d.kind == "gpu"),
        }
        settings = {k: params[k] for k in ("sam_alpha", "sam_beta", "sam_unit")}
        settings["accuracy_key"] = getattr(it, "accuracy_key", None)
        name = clean_text(self.opts.name or self.session_id, 200)
        self.tracker_log = LiveTrackerLog(self.opts.log_to, name, params, settings)
        self.tracker_log.start()

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
        try:
            from wattui.record.intake import RecorderIntake
        except ImportError:
            return
        self.intake = RecorderIntake(self, **self.opts.metrics)

    def _begin_sampling(self) -> None:
        first = self.sampler.sample_once()
        with self._lock:
            self.writer.update_meta(started_at=first.t_wall)
        if self.tracker_log is not None:
            self.tracker_log.settings["started_at"] = first.t_wall
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
        _follow_run(self.sampler.sources, proc_src, self.baseline)
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

    def _wait_for(self, child: subprocess.Popen) -> None:
        """Sleep until the run ends or a signal comes (logged at once), without waking
        on a timer where Linux gives a descriptor for the child (pidfd); else poll at 10 Hz."""
        try:
            pidfd = os.pidfd_open(child.pid)
            wake_r, wake_w = os.pipe()
        except (AttributeError, OSError):
            while child.poll() is None:
                self._log_signals()
                time.sleep(0.1)
            return
        os.set_blocking(wake_w, False)
        self._wake_fd = wake_w
        try:
            while child.poll() is None:
                self._log_signals()
                ready, _, _ = select.select([pidfd, wake_r], [], [], 5.0)
                if wake_r in ready:
                    os.read(wake_r, 512)
        finally:
            self._wake_fd = None
            for fd in (pidfd, wake_r, wake_w):
                os.close(fd)

    def _wake_main(self) -> None:
        fd = self._wake_fd
        if fd is not None:
            try:
                os.write(fd, b"s")
            except OSError:  # full (already awake) or closed
                pass

    # -- signals ------------------------------------------------------------------
    _wake_fd: int | None = None  # written by signal handlers: wakes the main thread's wait
    _forwarded = 0  # signals already sent on to the run
    _logged_signals = 0  # signals already written as events
    _finishing = False
    _signals_at_finish = 0

    def _forward(self, signum, _frame) -> None:
        """Signal handler (main thread; takes no lock: the main thread may hold it)."""
        if self._second_while_finishing(signum):
            return
        self.signals_received.append(signum)
        if self._child is not None and not self._finishing:
            self._forwarded = len(self.signals_received)
            self._killpg(signum)
        self._wake_main()

    def _second_while_finishing(self, signum: int) -> bool:
        """While the session is being closed (a few seconds) one signal is noted; a second
        one ends the recorder at once, as if it had no handler."""
        if not self._finishing:
            return False
        if len(self.signals_received) <= self._signals_at_finish:
            return False
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return True

    def _killpg(self, signum: int) -> None:
        try:
            os.killpg(self._child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _log_signals(self) -> None:
        new = self.signals_received[self._logged_signals :]
        self._logged_signals += len(new)
        if not new:
            return
        with self._lock:
            if self.writer is not None:
                for signum in new:
                    self.writer.add_event({"kind": "signal", "message": signal.Signals(signum).name})

    @staticmethod
    def _install_handlers(handler) -> dict:
        old = {}
        if threading.current_thread() is threading.main_thread():
            for s in FORWARDED_SIGNALS:
                old[s] = signal.signal(s, handler)
        return old

    @staticmethod
    def _restore(old: dict) -> None:
        for s, h in old.items():
            signal.signal(s, h)

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
        if self.tracker_log is not None:
            self.tracker_log.on_event(event)

    _proc_src = None  # the run's process tree (ProcessTreeSource), once it is known

    def run_pids(self) -> tuple[int, ...]:
        """The run's processes as the sampler last saw them (for the metrics intake)."""
        src = self._proc_src
        return src.pids if src is not None else ()

    def energy_now(self) -> float | None:
        with self._lock:
            return self._total_energy()

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
        _follow_run(srcset.sources, proc_src, None)
        self._start(cmd, "attach", pid, srcset)
        self._announce()
        if self.intake is not None:
            self.intake.follow_pid(pid)
        with self._lock:
            self.writer.add_event({"kind": "start", "pid": pid, "message": " ".join(cmd)})
        self._begin_sampling()
        self._start_intake_worker()
        try:
            while not stop.is_set():
                if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                    break
                if self.intake_worker is not None:
                    self.intake_worker.follow(proc_src.pids)
                stop.wait(0.25)
        except psutil.NoSuchProcess:
            pass
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
        closers = (self.exporter,) if self.intake_worker is not None else (self.intake, self.exporter)
        for closer in closers:
            if closer is None:
                continue
            try:
                closer.close()
            except Exception:  # noqa: BLE001 - shutting down: never lose the session over this
                pass
        with self._lock:
            w = self.writer
            self.writer = None
        if w is None:
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
        saved = w.finish(**fields)
        if self.tracker_log is not None:
            self._close_tracker_log(w.meta)
        if saved and not self.opts.quiet:
            print(format_summary(w.meta), file=sys.stderr)
        elif not saved:  # say what the files say, not what they would have said
            print(format_unsaved(w, status), file=sys.stderr)

    def _close_tracker_log(self, meta: dict) -> None:
        from wattui.exporters.trackers import summary_metrics

        rec = dict(meta)
        started, ended = meta.get("started_at"), meta.get("ended_at")
        rec["duration_s"] = (ended - started) if started and ended else None
        try:
            self.tracker_log.close(summary_metrics(rec))
        except Exception:  # noqa: BLE001 - the session is written already; never fail here
            pass


def format_unsaved(w: SessionWriter, status: str) -> str:
    """The end of a session that the disk refused to record, as its files now read."""
    live = w.saved_live or {}
    t = live.get("t_wall")
    upto = time.strftime("%H:%M:%S", time.localtime(t)) if t else "its start"
    return (
        f"wattui: session {w.session_id}: the disk refused the end of the session "
        f"({w.last_error or 'write error'}); the run {status}, but its files end at {upto} "
        f"with {format_energy(live.get('energy_j'))} and it will be listed as interrupted"
    )


def format_summary(meta: dict) -> str:
    """The short human summary printed when a recording ends."""
    started, ended = meta.get("started_at"), meta.get("ended_at")
    dur = (ended - started) if started and ended else 0.0
    sim = " [SIMULATED]" if meta.get("simulated") else ""
    lines = [
        f"wattui: session {meta['id']}{sim} {meta.get('status')}"
        + (f" (exit {meta['exit_code']})" if meta.get("exit_code") is not None else ""),
        f"  duration {dur:.1f} s",
    ]
    summary = meta.get("summary") or {}
    measured = False
    for d in meta.get("devices", []):
        if d["kind"] not in ("gpu", "cpu", "dram"):
            continue
        s = summary.get(d["key"], {})
        measured = True
        mean = s.get("mean_w")
        peak = s.get("peak_w")
        lines.append(
            f"  {d['key']:<14} {format_energy(s.get('energy_j')):>12}  "
            f"mean {mean:.1f} W  peak {peak:.1f} W  ({d['energy_method']})"
            if mean is not None and peak is not None
            else f"  {d['key']:<14} {format_energy(s.get('energy_j')):>12}  ({d['energy_method']})"
        )
        share = summary.get(f"{d['key']}:run")
        if share is not None:
            lines.append(
                f"  {'  this run':<14} {format_energy(share.get('energy_j')):>12}  "
                "(estimated: SM share, idle shared)"
            )
    if measured:
        lines.append(f"  total          {format_energy(meta.get('energy_j')):>12}")
    else:
        lines.append("  no energy was measured (see `wattui doctor`)")
    if meta.get("dropped_rows"):
        lines.append(
            f"  {meta['dropped_rows']} sample/event rows could not be written (disk full); "
            "the totals above are complete"
        )
    if meta.get("output_dropped_bytes"):
        lines.append(f"  output.log is missing {meta['output_dropped_bytes']} bytes of the run's output")
    if meta.get("output_lines_not_parsed"):
        lines.append(
            f"  {meta['output_lines_not_parsed']} output lines not searched for metrics "
            "(printed faster than they could be parsed)"
        )
    return "\n".join(lines)
