"""Load and replay the corpus of captured training output in ``tests/corpus/``.

Each capture is a folder with ``output.jsonl`` (one record per read, in arrival order:
``{"t": seconds since start, "stream": "stdout"|"stderr", "data": text}``, or ``"b64"``
instead of ``"data"`` for bytes that are not UTF-8) and ``truth.json`` (final/best accuracy,
epochs, from the framework's own state; see ``tests/corpus/README.md``).

    from corpus_replay import list_captures, load_capture, replay_argv
    cap = load_capture("keras_verbose2_pipe")
    cap.truth["final_accuracy"], cap.stdout_bytes()
    argv = replay_argv("keras_verbose2_pipe", speed=20)  # a real child re-emitting the output
    subprocess.run([sys.executable, "-m", "wattui", "record", "--", *argv])

Run as a script it is that child: ``python tests/corpus_replay.py NAME [--speed X]`` writes the
chunks to its own stdout/stderr at their recorded times (divided by ``speed``; ``--speed 0``
means no waiting) and exits with the run's exit code.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
TRUTH_KEYS = (
    "final_accuracy",
    "best_accuracy",
    "epochs_done",
    "total_epochs",
    "epoch_base",
    "accuracy_key",
    "accuracy_scale",
    "accuracy_stream",
    "history",
    "source",
)


@dataclass(frozen=True)
class Chunk:
    t: float  # seconds since the run started
    stream: str  # "stdout" or "stderr"
    data: bytes


@dataclass
class Capture:
    name: str
    chunks: list[Chunk]
    truth: dict
    path: Path = field(repr=False)

    @property
    def meta(self) -> dict:
        """How it was captured: command, mode (pipe/pty), exit code, seconds, bytes."""
        return self.truth.get("capture", {})

    def stream_bytes(self, stream: str) -> bytes:
        return b"".join(c.data for c in self.chunks if c.stream == stream)

    def stdout_bytes(self) -> bytes:
        return self.stream_bytes("stdout")

    def stderr_bytes(self) -> bytes:
        return self.stream_bytes("stderr")

    @property
    def duration(self) -> float:
        return self.chunks[-1].t if self.chunks else 0.0


def list_captures(corpus: Path = CORPUS_DIR) -> list[str]:
    """Names of the captures, sorted."""
    return sorted(
        p.name for p in corpus.iterdir() if p.is_dir() and (p / "output.jsonl").is_file()
    )


def load_capture(name: str, corpus: Path = CORPUS_DIR) -> Capture:
    path = corpus / name
    chunks = []
    with open(path / "output.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            rec = json.loads(line)
            if "b64" in rec:
                data = base64.b64decode(rec["b64"], validate=True)
            else:
                data = rec["data"].encode("utf-8")
            if rec["stream"] not in ("stdout", "stderr"):
                raise ValueError(f"{name}: line {n}: unknown stream {rec['stream']!r}")
            chunks.append(Chunk(float(rec["t"]), rec["stream"], data))
    truth = json.loads((path / "truth.json").read_text(encoding="utf-8"))
    return Capture(name, chunks, truth, path)


def replay_argv(name: str, speed: float = 1.0, python: str | None = None) -> list[str]:
    """The command line of a child that replays capture ``name`` (``speed`` x faster)."""
    return [python or sys.executable, str(Path(__file__).resolve()), name, "--speed", str(speed)]


def replay(capture: Capture, speed: float = 1.0) -> None:
    """Write the capture's chunks to fds 1 and 2 at their recorded times (divided by speed)."""
    fds = {"stdout": 1, "stderr": 2}
    t0 = time.monotonic()
    for c in capture.chunks:
        if speed > 0:
            wait = c.t / speed - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
        view = memoryview(c.data)
        while view:
            n = os.write(fds[c.stream], view)
            view = view[n:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Replay a corpus capture on stdout/stderr.")
    p.add_argument("name", nargs="?", help="capture name (omit with --list)")
    p.add_argument("--speed", type=float, default=1.0, help="times faster (0: no waiting)")
    p.add_argument("--list", action="store_true", help="list the captures")
    args = p.parse_args(argv)
    if args.list or not args.name:
        print("\n".join(list_captures()))
        return 0
    if args.name not in list_captures():
        print(f"corpus_replay: no capture named {args.name!r}", file=sys.stderr)
        return 2
    cap = load_capture(args.name)
    try:
        replay(cap, args.speed)
    except BrokenPipeError:
        return 141
    return int(cap.meta.get("exit_code", 0))


if __name__ == "__main__":
    sys.exit(main())
