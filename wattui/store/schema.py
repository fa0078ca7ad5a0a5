"""The on-disk layout of a session, versioned. See docs/session-format.md.

    <store>/sessions/<id>/
        meta.json          session metadata (atomically replaced; status, devices, settings)
        live.json          totals at the last flush, while running (atomically replaced)
        samples.csv        append-only while live: one row per device per tick
        events.ndjson      append-only while live: metrics, epochs, lifecycle
        output.log         the launched run's stdout and stderr, as bytes
        output.streams     where output.log switches stream: "OFFSET stdout|stderr" lines
        samples.parquet    written at the end (compaction), then samples.csv is removed
        events.parquet     likewise for events.ndjson

Every live file is appended in whole lines and flushed at least once a second, so a
kill -9 at any moment leaves everything up to the last flush readable; a torn last
line is ignored by the reader.
"""

from __future__ import annotations

from wattui.model.kinds import STATUSES as _STATUSES

# Bump it whenever a file's columns or keys change, and say what changed in
# docs/session-format.md ("Versions"). A reader opens every version up to its own; older
# files lack the newer columns, which readers return as nulls.
#   1  samples: t_wall .. power_method (mem_total_b and pids came later without a bump)
#   2  session_id in the samples and events frames and Parquet files; mem_total_b, pids
SCHEMA_VERSION = 2

# The session id column: first in every samples/events frame the reader returns and in
# the compacted Parquet files (the live CSV/NDJSON leave it out: the folder is the id).
SESSION_ID = "session_id"

SESSIONS_DIR = "sessions"
META = "meta.json"
LIVE = "live.json"
SAMPLES_LIVE = "samples.csv"
EVENTS_LIVE = "events.ndjson"
OUTPUT = "output.log"
OUTPUT_STREAMS = "output.streams"
SAMPLES_FINAL = "samples.parquet"
EVENTS_FINAL = "events.parquet"

STATUSES = _STATUSES  # a session's status in meta.json (wattui.model.kinds)

# Sample rows (long format), as the live samples.csv has them. energy_j is cumulative since
# the recorder opened the source, so a device's energy over the session is last - first.
SAMPLE_COLUMNS = (
    "t_wall",  # unix seconds (float) at the read
    "t_mono",  # time.monotonic() at the read
    "seq",  # sampler tick number
    "device",  # device key: gpu0, cpu-package-0, dram-0, proc
    "energy_j",
    "power_w",
    "util_pct",
    "mem_used_b",
    "temp_c",
    "energy_method",  # counter | integrated | estimated | simulated | none
    "power_method",  # instant | average-1s | derived | estimated | simulated | none
    "mem_total_b",
    "pids",  # processes on the device ("1;2", "-" for none); for proc, the run's tree
)


def sample_schema():
    """Polars schema of the samples table (imported lazily: polars is not cheap)."""
    import polars as pl

    return {
        SESSION_ID: pl.String,
        "t_wall": pl.Float64,
        "t_mono": pl.Float64,
        "seq": pl.Int64,
        "device": pl.String,
        "energy_j": pl.Float64,
        "power_w": pl.Float64,
        "util_pct": pl.Float64,
        "mem_used_b": pl.Float64,
        "temp_c": pl.Float64,
        "energy_method": pl.String,
        "power_method": pl.String,
        "mem_total_b": pl.Float64,
        "pids": pl.String,
    }


# Event rows: one JSON object per line. Common keys: t_wall, kind. Kinds:
#   start, exit, signal, warning      lifecycle
#   metric                            accuracy and other reported numbers
#                                     (source, epoch, step, total_epochs, accuracy, values_json, pid)
#   epoch_end                         an epoch boundary (epoch, energy_j at that moment)
#   watch                             an architecture estimate sent by wattui.watch()
#   measure                           a wattui.measure() window (name, times, its energy)
EVENT_COLUMNS = (
    "t_wall",
    "kind",
    "source",
    "epoch",
    "step",
    "total_epochs",
    "accuracy",
    "accuracy_key",  # which reported value the accuracy is
    "energy_j",
    "values_json",
    "pid",
    "message",
)


def event_schema():
    import polars as pl

    return {
        SESSION_ID: pl.String,
        "t_wall": pl.Float64,
        "kind": pl.String,
        "source": pl.String,
        "epoch": pl.Float64,
        "step": pl.Int64,
        "total_epochs": pl.Int64,
        "accuracy": pl.Float64,
        "accuracy_key": pl.String,
        "energy_j": pl.Float64,
        "values_json": pl.String,
        "pid": pl.Int64,
        "message": pl.String,
    }
