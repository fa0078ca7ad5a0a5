#!/usr/bin/env python3
"""Re-capture the corpus of real training-framework output in ``tests/corpus/``.

Each capture runs one script from ``tests/corpus/scripts/`` (a short run of a real library on
tiny generated data, on the CPU) and records what wattui would receive from it: the bytes of
stdout and stderr as they arrive, with their arrival times, through pipes (as ``wattui record``
reads them) or through ptys (one for stdout, one for stderr, as in a terminal). The script writes
its truth (final/best accuracy, epochs, from the framework's own state) to ``$CORPUS_TRUTH``.

    python scripts/capture_corpus.py                 # every capture
    python scripts/capture_corpus.py keras_verbose2  # some of them
    python scripts/capture_corpus.py --list

torchvision and timm do not import beside the CPU torch of wattui's own venv: their captures
run under ``--ref-python`` (default ``.venv-capture/bin/python``, a venv with
``torch==2.14.1 torchvision==0.29.1 timm``); timm's capture needs timm's real ``train.py``
(``--timm-train``, from github.com/huggingface/pytorch-image-models). Library versions go into
each truth.json and ``tests/corpus/README.md``, with a table of the captures.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import pty
import selectors
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
SCRIPTS = CORPUS / "scripts"
sys.path.insert(0, str(ROOT / "tests"))
from corpus_replay import TRUTH_KEYS  # noqa: E402 - what a capture's truth holds: one list

PTY_SIZE = (30, 120)  # rows, columns of the capture's terminal

# name: script (in tests/corpus/scripts), its arguments, how its output is read, and which
# python runs it ("ref": the venv with torchvision/timm). unbuffered: PYTHONUNBUFFERED=1 in the
# child's environment (what wattui sets for the child, unless the user set it).
CAPTURES: dict[str, dict] = {
    "hf_trainer": dict(script="hf_trainer.py", args=[], mode="pipe"),
    "hf_trainer_pty": dict(script="hf_trainer.py", args=[], mode="pty"),
    "hf_trainer_eval_steps": dict(script="hf_trainer.py", args=["--eval-steps", "6"], mode="pipe"),
    # No bar given: Lightning's default, Rich's bar when rich is installed (as with wattui).
    "lightning_rich_pipe": dict(script="lightning_run.py", args=["--bar", "default"], mode="pipe"),
    "lightning_rich_pty": dict(script="lightning_run.py", args=["--bar", "default"], mode="pty"),
    "lightning_tqdm_pipe": dict(script="lightning_run.py", args=["--bar", "tqdm"], mode="pipe"),
    "lightning_tqdm_pty": dict(script="lightning_run.py", args=["--bar", "tqdm"], mode="pty"),
    "keras_verbose1_pipe": dict(script="keras_fit.py", args=["--verbose", "1"], mode="pipe"),
    "keras_verbose1_pty": dict(script="keras_fit.py", args=["--verbose", "1"], mode="pty"),
    "keras_verbose2_pipe": dict(script="keras_fit.py", args=["--verbose", "2"], mode="pipe"),
    "pytorch_tqdm_pipe": dict(script="pytorch_tqdm.py", args=[], mode="pipe"),
    "pytorch_tqdm_pty": dict(script="pytorch_tqdm.py", args=[], mode="pty"),
    "pytorch_quickstart": dict(script="pytorch_quickstart.py", args=[], mode="pipe"),
    "torchvision_reference": dict(
        script="torchvision_reference.py", args=[], mode="pipe", python="ref"
    ),
    "timm_train": dict(script="timm_train.py", args=[], mode="pipe", python="ref"),
    "sklearn_mlp_early_stopping": dict(script="sklearn_mlp.py", args=[], mode="pipe"),
    "logging_keyvalue": dict(script="logging_keyvalue.py", args=[], mode="pipe"),
    "plain_print_buffered": dict(
        script="plain_print.py", args=[], mode="pipe", unbuffered=False
    ),
    "plain_print_unbuffered": dict(script="plain_print.py", args=[], mode="pipe"),
    "summary_line": dict(script="summary_line.py", args=[], mode="pipe"),
    "wattui_demo": dict(script="wattui_demo.py", args=[], mode="pipe"),
    "lightning_callbacks_test": dict(script="lightning_callbacks_test.py", args=[], mode="pipe"),
    "keras_callbacks_early_stop": dict(script="keras_callbacks.py", args=[], mode="pipe"),
    "sklearn_hist_gradient_boosting": dict(script="sklearn_hist_gb.py", args=[], mode="pipe"),
    "plain_percent_test_at_end": dict(script="plain_percent.py", args=[], mode="pipe"),
    "config_then_crash": dict(script="config_then_crash.py", args=[], mode="pipe", rc=1),
}


def _record(chunks: list, t0: float, stream: str, data: bytes) -> None:
    rec = {"t": round(time.monotonic() - t0, 4), "stream": stream}
    try:
        rec["data"] = data.decode("utf-8")
    except UnicodeDecodeError:
        rec["b64"] = base64.b64encode(data).decode("ascii")
    chunks.append(rec)


def run_captured(argv: list[str], env: dict, cwd: str, mode: str, timeout: float):
    """Run ``argv``; return (chunks, exit code, seconds). Chunks are the reads as they came."""
    sel = selectors.DefaultSelector()
    chunks: list[dict] = []
    if mode == "pipe":
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd,
        )
        fds = {child.stdout.fileno(): "stdout", child.stderr.fileno(): "stderr"}
    elif mode == "pty":
        fds, slaves = {}, []
        for stream in ("stdout", "stderr"):
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *PTY_SIZE, 0, 0))
            fds[master] = stream
            slaves.append(slave)
        env = dict(env, TERM=env.get("TERM", "xterm-256color"), COLUMNS=str(PTY_SIZE[1]))
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=slaves[0], stderr=slaves[1], env=env, cwd=cwd
        )
        for s in slaves:
            os.close(s)
    else:
        raise ValueError(mode)
    t0 = time.monotonic()
    for fd in fds:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(fds)
    while open_fds:
        if time.monotonic() - t0 > timeout:
            child.kill()
            raise RuntimeError(f"{argv} ran past {timeout} s")
        for key, _ in sel.select(timeout=1.0):
            try:
                data = os.read(key.fd, 65536)
            except OSError:  # a pty's master reads EIO once the child has closed it
                data = b""
            if not data:
                sel.unregister(key.fd)
                open_fds.discard(key.fd)
                if mode == "pty":
                    os.close(key.fd)
                continue
            _record(chunks, t0, fds[key.fd], data)
    rc = child.wait()
    return chunks, rc, round(time.monotonic() - t0, 3)


def capture(name: str, spec: dict, opts, vers: dict) -> dict:
    python = opts.ref_python if spec.get("python") == "ref" else sys.executable
    if not Path(python).exists():
        raise RuntimeError(f"{name}: no python at {python} (see --ref-python)")
    out_dir = CORPUS / name
    with tempfile.TemporaryDirectory(prefix=f"corpus-{name}-") as work:
        truth_path = os.path.join(work, "truth.json")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WATTUI_", "CORPUS_"))}
        env.pop("PYTHONUNBUFFERED", None)
        if spec.get("unbuffered", True):
            env["PYTHONUNBUFFERED"] = "1"
        env.update(
            CORPUS_TRUTH=truth_path,
            CORPUS_WORKDIR=work,
            PYTHONPATH=str(SCRIPTS),
            PYTHONHASHSEED="0",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            KERAS_BACKEND="torch",
            OMP_NUM_THREADS="1",
        )
        if opts.timm_train:
            env["CORPUS_TIMM_TRAIN"] = str(Path(opts.timm_train).resolve())
        argv = [python, str(SCRIPTS / spec["script"]), *spec["args"]]
        chunks, rc, secs = run_captured(argv, env, work, spec["mode"], opts.timeout)
        if rc != spec.get("rc", 0):
            tail = "".join(c.get("data", "") for c in chunks)[-3000:]
            raise RuntimeError(f"{name}: exit {rc}\n{tail}")
        truth = json.loads(Path(truth_path).read_text())
    missing = [k for k in TRUTH_KEYS if k not in truth]
    if missing:
        raise RuntimeError(f"{name}: truth lacks {missing}")
    truth["capture"] = {
        "name": name,
        "command": f"python tests/corpus/scripts/{spec['script']} {' '.join(spec['args'])}".strip(),
        "mode": spec["mode"],
        "pty_size": list(PTY_SIZE) if spec["mode"] == "pty" else None,
        "pythonunbuffered": spec.get("unbuffered", True),
        "python": "ref" if spec.get("python") == "ref" else "main",
        "versions": vers["ref" if spec.get("python") == "ref" else "main"],
        "exit_code": rc,
        "seconds": secs,
        "chunks": len(chunks),
        "bytes": {
            s: sum(len(_chunk_bytes(c)) for c in chunks if c["stream"] == s)
            for s in ("stdout", "stderr")
        },
    }
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    with open(out_dir / "output.jsonl", "w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return truth


def _chunk_bytes(c: dict) -> bytes:
    return base64.b64decode(c["b64"]) if "b64" in c else c["data"].encode("utf-8")


VERSION_PACKAGES = (
    "torch", "transformers", "accelerate", "lightning", "rich", "tqdm", "keras",
    "scikit-learn", "numpy", "torchvision", "timm",
)


def versions(python: str) -> dict:
    code = (
        "import json, sys, importlib.metadata as m\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for p in {VERSION_PACKAGES!r}:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


README_MARK = "<!-- generated by scripts/capture_corpus.py: do not edit below -->"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def write_readme(opts, vers: dict[str, dict]) -> None:
    """Rewrite the generated part of tests/corpus/README.md: versions and the captures' truths."""
    lines = [README_MARK, "", "## Library versions", ""]
    for title, key in (("main venv", "main"), ("ref venv (torchvision, timm)", "ref")):
        if key in vers:
            lines.append(f"- {title}: " + ", ".join(f"{k} {v}" for k, v in vers[key].items()))
    lines += [
        "",
        "## Captures and their truth",
        "",
        "| capture | mode | final | best | epochs | base | key (scale, stream) |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in sorted(p for p in CORPUS.iterdir() if (p / "truth.json").is_file()):
        t = json.loads((d / "truth.json").read_text(encoding="utf-8"))
        c = t["capture"]
        mode = c["mode"] + ("" if c["pythonunbuffered"] else ", buffered")
        lines.append(
            f"| {d.name} | {mode} | {_pct(t['final_accuracy'])} | {_pct(t['best_accuracy'])} | "
            f"{t['epochs_done']}/{t['total_epochs']} | {t['epoch_base']} | "
            f"`{t['accuracy_key']}` ({t['accuracy_scale']}, {t['accuracy_stream']}) |"
        )
    readme = CORPUS / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    head = text.split(README_MARK)[0].rstrip("\n")
    readme.write_text(head + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="captures to redo (default: all)")
    p.add_argument("--list", action="store_true", help="list the captures and exit")
    p.add_argument(
        "--ref-python", default=str(ROOT / ".venv-capture" / "bin" / "python"),
        help="python with torchvision and timm (default: %(default)s)",
    )
    p.add_argument(
        "--timm-train", default=str(ROOT / ".venv-capture" / "refs" / "timm" / "train.py"),
        help="timm's train.py (default: %(default)s)",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per capture")
    opts = p.parse_args(argv)
    if opts.list:
        for name, spec in CAPTURES.items():
            print(f"{name:28} {spec['mode']:4} {spec['script']} {' '.join(spec['args'])}")
        return 0
    unknown = [n for n in opts.names if n not in CAPTURES]
    if unknown:
        print(f"capture_corpus: unknown capture(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    vers = {"main": versions(sys.executable)}
    if Path(opts.ref_python).exists():
        vers["ref"] = versions(opts.ref_python)
    failed = 0
    for name in opts.names or list(CAPTURES):
        try:
            truth = capture(name, CAPTURES[name], opts, vers)
        except RuntimeError as e:
            failed += 1
            print(f"FAILED {e}", file=sys.stderr)
            continue
        c = truth["capture"]
        print(
            f"{name:28} {c['seconds']:6.1f} s {c['chunks']:5} chunks "
            f"final {truth['final_accuracy']} best {truth['best_accuracy']} "
            f"epochs {truth['epochs_done']}/{truth['total_epochs']}",
            flush=True,
        )
    write_readme(opts, vers)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
