"""Which GPUs a run launched with a given ``CUDA_VISIBLE_DEVICES`` will use.

CUDA's rules, as far as they can be applied without CUDA itself:

* unset: every GPU;
* ``""`` (or only spaces): none;
* a comma list of entries, each an index (``0``), a GPU UUID (``GPU-8932f937-...``) or a
  unique prefix of one (``GPU-8932``); whitespace around entries is ignored;
* a MIG instance (``MIG-<uuid>``) selects its parent GPU when ``mig_parent`` can tell
  which one it is (NVML can): energy and power exist only per whole GPU;
* the first entry that is not valid (``-1``, an index out of range, an unknown or
  ambiguous UUID, a ``MIG-`` instance that cannot be resolved, garbage) ends the list:
  it and everything after it are ignored, so ``-1`` means none and ``0,-1,1`` means
  just 0;
* an entry repeating an earlier GPU is skipped.

Indices are taken as NVML indices, which follow PCI bus order. CUDA numbers devices
fastest-first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; on machines with mixed GPU
models set that variable (or use UUIDs) so both agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

MigResolver = Callable[[str], "int | None"]


def parse_visible(env_value: str | None) -> list[str] | None:
    """The entries of a ``CUDA_VISIBLE_DEVICES`` value; ``None`` when it is unset."""
    if env_value is None:
        return None
    if not env_value.strip():
        return []
    return [tok.strip() for tok in env_value.split(",")]


def _resolve(
    token: str, all_devices: Sequence[tuple[int, str]], mig_parent: MigResolver | None = None
) -> int | None:
    if not token:
        return None
    if token.lstrip("+-").isdigit():
        n = int(token)
        for index, _uuid in all_devices:
            if index == n:
                return index
        return None
    if token.upper().startswith("GPU-"):
        want = token.lower()
        hits = [index for index, uuid in all_devices if uuid.lower().startswith(want)]
        return hits[0] if len(hits) == 1 else None
    if token.upper().startswith("MIG-") and mig_parent is not None:
        parent = mig_parent(token)
        known = {index for index, _uuid in all_devices}
        return parent if parent in known else None
    return None  # anything else: not a GPU


def select_devices(
    env_value: str | None,
    all_devices: Sequence[tuple[int, str]],
    mig_parent: MigResolver | None = None,
) -> list[int]:
    """NVML indices of the GPUs a process with ``CUDA_VISIBLE_DEVICES=env_value`` can use,
    in the order CUDA will number them. ``all_devices`` is ``[(nvml_index, uuid), ...]``;
    ``mig_parent`` maps a ``MIG-`` entry to its parent GPU's index (None: unknown)."""
    tokens = parse_visible(env_value)
    if tokens is None:
        return [index for index, _uuid in all_devices]
    out: list[int] = []
    for token in tokens:
        index = _resolve(token, all_devices, mig_parent)
        if index is None:
            break
        if index not in out:
            out.append(index)
    return out
