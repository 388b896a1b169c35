"""Built-in example scenarios."""
from __future__ import annotations

import numpy as np

from . import MAP_ANONYMOUS, MAP_PRIVATE, PR_SET_THP_DISABLE, PROT_READ, PROT_WRITE
from .config import Config, parse_size
from .machine import Machine


def thp_story(memory: str = "4GiB", size: str = "512MiB", accesses: int = 2_000_000,
              seed: int = 0) -> list[dict]:
    """The same workload under THP ``always``/``madvise``/``never``, with and without
    PR_SET_THP_DISABLE: touch a region, then read random addresses in it."""
    nbytes = parse_size(size, "size")
    rows = []
    for enabled in ("always", "madvise", "never"):
        for prctl in (False, True):
            m = Machine(Config(memory=memory, thp_enabled=enabled), seed=seed)
            t = m.spawn("story")
            if prctl:
                t.prctl(PR_SET_THP_DISABLE, 1)
            a = t.mmap(nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
            t.touch(a, nbytes)
            rng = np.random.default_rng(seed)
            t.access(a + rng.integers(0, nbytes, accesses, dtype=np.int64))
            st, sm, c = t.status(), t.smaps(a), t.counters()
            rows.append({"enabled": enabled, "prctl": "THP_DISABLE" if prctl else "-",
                         "Rss": sm["Rss"], "AnonHugePages": sm["AnonHugePages"],
                         "VmPTE": st["VmPTE"], "faults": c["min_flt"],
                         "dtlb_misses": c["dtlb_misses"], "stlb_misses": c["stlb_misses"],
                         "time_ns": c["time_ns"]})
    return rows


def warmup() -> None:
    """Compile (or load from the cache) every kernel the API uses."""
    thp_story(memory="64MiB", size="8MiB", accesses=1000)
    m = Machine(Config(memory="64MiB"))
    t = m.spawn("warmup")
    a = t.mmap(4 << 20)
    t.touch(a, 4 << 20)
    t.madvise(a, 4096, 4)
    t.madvise(a, 4096, 23)
    t.munmap(a, 4 << 20)
    t.smaps_rollup()
    t.page_table()
