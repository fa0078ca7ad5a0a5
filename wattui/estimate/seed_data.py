"""Load the compact copy of the Getzner et al. energy data shipped in ``wattui/data/getzner``.

Energies are returned in joules per forward pass (the CSVs hold kWh; 1 kWh = 3.6e6 J).
Layer files are already per forward pass; architecture rows are raw codecarbon windows
and are divided by their ``forward_passes`` here.
"""

from __future__ import annotations

from pathlib import Path

KWH_TO_J = 3.6e6
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "getzner"
LAYER_FILES = ("conv2d", "maxpool2d", "linear", "relu", "sigmoid", "tanh", "softmax")
DEVICE = "Intel Xeon Gold 5120 @ 2.20 GHz (2 cores, SLURM), CPU package via RAPL"
# its shared L3 (Intel's specification: 19.25 MB), for the memory floor (estimate/memory.py)
CACHE_BYTES = 19_712 * 1024
CACHE_SOURCE = "Intel Xeon Gold 5120 specification: 19.25 MB shared L3"
DATASET = "Getzner, Charpentier, Günnemann 2023 (arXiv 2304.00897), MIT, data at commit 574b4dd"


def data_dir(path: str | Path | None = None) -> Path:
    d = Path(path) if path else DATA_DIR
    if not (d / "layers_conv2d.csv").exists():
        raise FileNotFoundError(f"no Getzner layer data in {d}")
    return d


def load_layers(kind: str, path: str | Path | None = None):
    """One layer type's random-config data: config columns, ``macs`` and ``energy_j``."""
    import polars as pl

    df = pl.read_csv(data_dir(path) / f"layers_{kind}.csv")
    return df.with_columns((pl.col("cpu_energy") * KWH_TO_J).alias("energy_j"))


def load_architectures(path: str | Path | None = None, layer_idx: int | None = 0):
    """Architecture measurements, one row per (run, architecture, batch size, layer_idx).

    Repetitions are reduced with the median, which drops the codecarbon-error rows left in
    the raw files (a window measured at half power). ``layer_idx=0`` is the whole model;
    ``None`` keeps every layer.
    """
    import polars as pl

    df = pl.read_csv(data_dir(path) / "architectures.csv", schema_overrides={"run": pl.Utf8})
    if layer_idx is not None:
        df = df.filter(pl.col("layer_idx") == layer_idx)
    df = df.with_columns(
        (pl.col("cpu_energy") * KWH_TO_J / pl.col("forward_passes")).alias("energy_j")
    )
    keys = ["run", "architecture", "batch_size", "layer_idx", "module"]
    return (
        df.group_by(keys)
        .agg(
            pl.col("energy_j").median(),
            pl.col("macs").first(),
            pl.len().alias("reps"),
        )
        .sort(keys)
    )
