"""Fresh pages: which allocations of a CPU forward pass the kernel must fault in, page by page.

On Linux with glibc, PyTorch's CPU allocator (``posix_memalign``) hands big blocks to glibc
malloc. A block at or above the *mmap threshold* is ``mmap``-ed and ``munmap``-ed on free, so
every use of it is new memory the kernel zero-fills page by page on first touch (a minor
fault). The threshold is dynamic: it starts at 128 KiB and rises to the size of each freed
``mmap``-ed block up to 32 MiB (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit), the trim threshold
with it to twice that. Smaller blocks come from the heap; the heap grows page by page into
new memory and, when the free space at its top reaches the trim threshold, gives it back to
the kernel (``brk``), so the next growth faults again.

:func:`simulate` replays the allocations and frees of a traced pass (their sizes and order,
from the meta device) through that rule and counts, per allocation, the pages it faults:
a count to check against ``getrusage`` minor faults (``scripts/fresh_pages.py``).
:func:`pages_by_row` prices them: pages x the set's ``page_fault_cost``.

What is not modelled: the allocator's small-block bins (blocks under 64 KiB are ignored),
scratch memory a kernel allocates inside one op (oneDNN's reorders), and other threads'
arenas. A GPU set gets none of this: the CUDA caching allocator reuses its blocks.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

PAGE = 4096
MMAP_THRESHOLD_START = 128 * 1024
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc DEFAULT_MMAP_THRESHOLD_MAX, 64-bit
TOP_PAD = 128 * 1024  # glibc DEFAULT_TOP_PAD: what a trim leaves at the heap's top
SMALL = 64 * 1024  # blocks below this are not tracked (small bins; few pages)
ALIGN = 64  # PyTorch's CPU alignment
HEADER = 16  # glibc chunk header (64-bit)


def _pages(n: int) -> int:
    return (n + PAGE - 1) // PAGE


@dataclass
class Heap:
    """glibc's main arena, reduced to what decides faults: free blocks, the used top, the
    mapped top (``brk``) and the dynamic thresholds."""

    mmap_threshold: int = MMAP_THRESHOLD_START
    trim_threshold: int = 2 * MMAP_THRESHOLD_START

    def __post_init__(self):
        self.free: list[tuple[int, int]] = []  # (address, size), address-sorted
        self.top = 0  # end of the highest block in use or free below it
        self.brk = 0  # end of the mapped heap
        self.touched = 0  # end of its pages written since they were mapped
        self.blocks: dict[object, tuple[str, int, int]] = {}  # key -> (path, address, size)

    def alloc(self, key, nbytes: int) -> int:
        """Allocate ``nbytes`` for ``key``; returns the pages it faults when first written."""
        if nbytes < SMALL:
            return 0
        # posix_memalign asks _int_malloc for the size plus alignment slack plus a chunk
        # header; an mmap-ed chunk is that rounded up to whole pages
        size = (nbytes + HEADER + 15) // 16 * 16 + ALIGN + 2 * HEADER
        best = None
        # glibc's order: free blocks (best fit, as its sorted large bins), then the top
        # chunk, and only when that is too small mmap (at or above the threshold) or growth
        for i, (_addr, sz) in enumerate(self.free):
            if sz >= size and (best is None or sz < self.free[best][1]):
                best = i
        if best is not None:
            addr, sz = self.free.pop(best)
            if sz > size:
                bisect.insort(self.free, (addr + size, sz - size))
            self.blocks[key] = ("heap", addr, size)
            return 0
        if self.brk - self.top < size and size >= self.mmap_threshold:  # sysmalloc: mmap
            mapped = _pages(size + HEADER) * PAGE
            self.blocks[key] = ("mmap", 0, mapped)
            return mapped // PAGE
        addr = self.top  # from the top chunk, grown (by the size plus the pad) if too small
        self.top += size
        if self.top > self.brk:
            self.brk = _pages(self.top + TOP_PAD) * PAGE
        faults = max(0, _pages(self.top) - _pages(self.touched))
        self.touched = max(self.touched, self.top)
        self.blocks[key] = ("heap", addr, size)
        return faults

    def release(self, key) -> None:
        block = self.blocks.pop(key, None)
        if block is None:
            return
        path, addr, size = block
        if path == "mmap":
            if self.mmap_threshold < size <= MMAP_THRESHOLD_MAX:
                self.mmap_threshold, self.trim_threshold = size, 2 * size
            return
        i = bisect.bisect(self.free, (addr, size))
        if i < len(self.free) and self.free[i][0] == addr + size:  # merge with the next
            size += self.free.pop(i)[1]
        if i > 0 and sum(self.free[i - 1]) == addr:  # and the previous
            addr, prev = self.free.pop(i - 1)
            size += prev
        if addr + size >= self.top:  # the top chunk absorbs it
            self.top = addr
            if self.brk - self.top >= self.trim_threshold:
                self.brk = _pages(self.top + TOP_PAD) * PAGE
                self.touched = min(self.touched, self.brk)
        else:
            bisect.insort(self.free, (addr, size))


def simulate(events: list[tuple], passes: int = 4, heap: Heap | None = None,
             before: list[int] = ()) -> list[float]:
    """Pages faulted per event of one pass (``("alloc", key, nbytes, ...)`` /
    ``("free", key)``), averaged over the ``passes - 1`` replays after a first, warm-up one,
    as a pass is measured; what is still allocated at the end of a pass (its output) is freed
    before the next. ``heap`` carries the allocator's state from earlier work in the same
    process (a fresh process's by default); ``before`` are the sizes of what the process
    allocates before the passes and keeps (weights, then the input), freed after them. 0 for
    frees."""
    heap = heap or Heap()
    for i, n in enumerate(before):
        heap.alloc(("before", i), n)
    total = [0] * len(events)
    for p in range(passes):
        for i, ev in enumerate(events):
            if ev[0] == "alloc":
                n = heap.alloc((p, ev[1]), ev[2])
                if p:
                    total[i] += n
            else:
                heap.release((p, ev[1]))
        for key in [k for k in heap.blocks if k[0] == p]:
            heap.release(key)
    for i in range(len(before)):
        heap.release(("before", i))
    return [t / max(passes - 1, 1) for t in total]


def _padded(n: int, to: int = 16) -> int:
    return (n + to - 1) // to * to


def conv_scratch(input_shape, weight_shape, output_shape, stride, dilation,
                 transposed: bool = False) -> list[int]:
    """Bytes of the temporaries one float32 2-D convolution allocates on a CPU, in order.

    PyTorch sends a convolution to oneDNN unless it is a 1x1, unstrided, undilated one with
    a batch under 16 (its single-threaded rule, ``use_mkldnn``; calibration is single-
    threaded). oneDNN then computes in channel-blocked layouts (16 channels): it reorders the
    weights and (beyond 4 input channels) the input into blocked copies, writes a blocked
    output and reorders it into the result (``ONEDNN_VERBOSE=1`` shows these reorders).
    """
    if transposed or len(input_shape) != 4 or len(weight_shape) != 4:
        return []
    n, c, h, w = (int(v) for v in input_shape)
    oc, icg, kh, kw = (int(v) for v in weight_shape)
    strided = any(int(s) != 1 for s in stride)
    dilated = any(int(d) != 1 for d in dilation)
    if not (strided or dilated or n >= 16 or kh != 1 or kw != 1):
        return []  # the native path (a matrix multiply on the input itself)
    out = n * _padded(oc) * int(output_shape[2]) * int(output_shape[3]) * 4
    temps = [_padded(oc) * icg * kh * kw * 4]  # blocked weights
    if c > 4:
        temps.append(n * _padded(c) * h * w * 4)  # blocked input
    return [*temps, out]


KIND = "fresh pages"  # what the fault cost added, in by_kind and the priced-by column


def fault_cost(pset) -> float | None:
    """The set's cost of one fresh page (its unit), from its provenance
    (``page_fault_cost``, measured on the set's device by allocating and first touching
    memory against writing a warm buffer); None for a set without it, such as a GPU set
    (the CUDA caching allocator keeps its blocks: no fault per allocation)."""
    value = pset.provenance.get("page_fault_cost")
    try:
        return float(value) if value and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def with_fault_cost(pset, seconds: float, measured_on: str):
    """A copy of ``pset`` that prices fresh pages at ``seconds`` of CPU time per page,
    measured on ``measured_on``: as is for a set in seconds, times the set's ``k_j_per_s``
    for a set whose op kinds were transferred from seconds that way (its provenance says
    so); None for a set in another unit without that factor, or for a GPU set."""
    import copy

    k = pset.provenance.get("op_models", {}).get("k_j_per_s")
    if "cuda" in str(pset.device).lower() or (pset.unit != "s" and not k):
        return None
    out = copy.copy(pset)
    out.provenance = {**pset.provenance, "page_fault_cost": seconds * (1 if pset.unit == "s"
                                                                        else float(k)),
                      "page_fault_source": f"{seconds:.3g} s per page of process CPU time, "
                      f"measured on {measured_on} (pages.measure_fault_cost)"
                      + ("" if pset.unit == "s" else f", x k = {float(k):.1f} J/s")}
    return out


def pages_by_row(events: list[tuple], passes: int = 4) -> dict[int, float]:
    """Fresh pages per pass per row, keyed by ``id(row)``, from a trace's storage events
    (``("alloc", key, nbytes, row)``). All of them are priced, including those of outputs
    above 32 MiB, whose cost the op's calibration already saw (they take the ``mmap`` path
    there too): subtracting those underpriced VGG's first convolution (a 98 MiB output of
    27 MACs per element, mostly faults) and was dropped."""
    out: dict[int, float] = {}
    for ev, n in zip(events, simulate(events, passes)):
        if n and ev[0] == "alloc" and ev[3] is not None:
            out[id(ev[3])] = out.get(id(ev[3]), 0.0) + n
    return out


def measure_fault_cost(mib: int = 64, reps: int = 15) -> dict:
    """Process CPU time of one fresh page on this machine: writing ``mib`` MiB into a new
    allocation (above the 32 MiB threshold: ``mmap``-ed, faulted page by page) against
    writing the same bytes into a warm buffer, single-threaded, medians of ``reps``."""
    import resource
    import statistics
    import time

    import torch

    torch.set_num_threads(1)
    n = mib * 2**20 // 4
    warm_buf = torch.zeros(n)

    def median_s(fn) -> float:
        ts = []
        for _ in range(reps):
            t0 = time.process_time()
            fn()
            ts.append(time.process_time() - t0)
        return statistics.median(ts)

    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fresh = median_s(lambda: torch.empty(n).fill_(1.0))
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / reps
    warm = median_s(lambda: warm_buf.fill_(1.0))
    n_pages = _pages(n * 4)
    return {"page_fault_cost": max(fresh - warm, 0.0) / n_pages, "fresh_s": fresh,
            "warm_s": warm, "pages": n_pages, "faults_per_rep": faults}
