"""Host memory of one large simulated machine, measured in a fresh process.

Run by ``test_bench_engine.py::test_memory_per_frame`` as ``python bench/memory_probe.py SIZE``;
prints one JSON object. It builds ``Config(memory=SIZE)`` with THP ``always``, maps almost all of
it (page tables need frames too) and touches it in 2 MiB strides, so every touch is one THP fault,
then reports the process's resident set (``/proc/self/status`` VmRSS, VmHWM for the peak) and the
``nbytes`` of the state arrays, the per-frame ones apart from the page-table pool.

The baseline is taken after NumPy, Numba and every kernel this path uses are loaded (a small
machine runs the same calls first), so the deltas are the machine's own arrays.
"""
from __future__ import annotations

import json
import sys
import time

import mmcore
from mmcore.config import parse_size

# fr_order, fr_memcg and pb_mt are views of fr32's packed row: their bytes are fr32's, counted once
# (see own_nbytes)
FRAME_ARRAYS = ("fr32", "fr_idx", "fr_flags", "fr_order", "fr_memcg", "pb_mt")
PT_ARRAYS = ("pt", "pt_aux")
# Left unmapped so the page tables (one deposited PTE table per THP, PMD and PUD tables) have
# frames: 256 GiB of THPs needs 512 MiB of tables.
HEADROOM_BYTES = 1 << 30


def own_nbytes(a) -> int:
    """Bytes an array holds itself: 0 for a view of another array's memory."""
    return 0 if a.base is not None and not a.flags.owndata else a.nbytes


def proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def warm_kernels() -> None:
    """The same calls on a small machine, so their compiled code is loaded before the baseline."""
    m = mmcore.Machine(mmcore.Config(memory="64MiB", thp_enabled="always"))
    t = m.spawn("warm")
    a = t.mmap(32 << 20)
    t.touch(a, 32 << 20, stride=2 << 20)
    m.vmstat()


def main(memory: str) -> dict:
    warm_kernels()
    rss0 = proc_status_kb("VmRSS") * 1024
    t0 = time.perf_counter()
    m = mmcore.Machine(mmcore.Config(memory=memory, thp_enabled="always"))
    build_s = time.perf_counter() - t0
    rss_built = proc_status_kb("VmRSS") * 1024
    t = m.spawn("probe")
    length = (m.config.memory_bytes - HEADROOM_BYTES) & ~((2 << 20) - 1)
    a = t.mmap(length)
    t0 = time.perf_counter()
    t.touch(a, length, stride=2 << 20)
    fault_s = time.perf_counter() - t0
    rss_faulted = proc_status_kb("VmRSS") * 1024
    hwm = proc_status_kb("VmHWM") * 1024
    s = m.state
    nframes = int(parse_size(memory, "memory")) >> 12
    frame_nbytes = sum(own_nbytes(getattr(s, k)) for k in FRAME_ARRAYS)
    pt_nbytes = sum(own_nbytes(getattr(s, k)) for k in PT_ARRAYS)
    vs = m.vmstat()
    return {
        "memory": memory, "frames": nframes, "mapped_bytes": length,
        "thp_fault_alloc": vs["thp_fault_alloc"], "thp_fault_fallback": vs["thp_fault_fallback"],
        "nr_page_table_pages": vs["nr_page_table_pages"],
        "build_s": build_s, "fault_s": fault_s,
        "frame_arrays_nbytes": {k: own_nbytes(getattr(s, k)) for k in FRAME_ARRAYS},
        "frame_metadata_bytes_per_frame": frame_nbytes / nframes,
        "pt_pool_nbytes": pt_nbytes,
        "pt_pool_bytes_per_frame": pt_nbytes / nframes,
        "other_state_nbytes": sum(own_nbytes(a) for k, a in s._asdict().items()
                                  if k not in FRAME_ARRAYS + PT_ARRAYS),
        "rss_baseline_bytes": rss0,
        "rss_after_build_bytes": rss_built - rss0,
        "rss_after_fault_bytes": rss_faulted - rss0,
        "rss_after_fault_bytes_per_frame": (rss_faulted - rss0) / nframes,
        "rss_after_fault_without_pt_pool_bytes_per_frame": (rss_faulted - rss0 - pt_nbytes) / nframes,
        "peak_rss_bytes_per_frame": (hwm - rss0) / nframes,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "256GiB")))
