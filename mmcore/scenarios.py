"""Built-in example scenarios."""
from __future__ import annotations

import os

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
    # khugepaged, MADV_COLLAPSE and clear_refs
    b = t.mmap(4 << 20)
    t.madvise(b, 4 << 20, 15)
    t.touch(b, 4 << 20)
    t.clear_refs(1)
    t.madvise(b, 4 << 20, 14)
    m.advance(1000)
    t.madvise(b, 4 << 20, 25)
    # the file layer and the page-cache replay
    from .pagecache import replay
    m = Machine(Config(memory="64MiB"))
    m.mount("/d", "ext4", size="64MiB")
    t = m.spawn("warmup")
    fd = t.open("/d/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, 1 << 20)
    t.fallocate(fd, 0, 1 << 20, 1 << 20)
    t.fsync(fd)
    t.write_sysctl("vm.drop_caches", 3)
    t.pread(fd, 0, 2 << 20)
    t.ftruncate(fd, 4096)
    t.nanosleep(1000)
    t.close(fd)
    t.unlink("/d/f")
    m.sync()
    replay(np.arange(100), 10, "lru")


def drop_caches_cron(memory: str = "1GiB", files: int = 48, file_size: str = "8MiB",
                     reads: int = 20_000, read_size: int = 65536, think_us: int = 200,
                     period_s: float = 1.0, zipf_a: float = 1.1, seed: int = 0) -> list[dict]:
    """A read-heavy service beside an administrator's cron job that runs
    ``sync; echo 3 > /proc/sys/vm/drop_caches`` every ``period_s`` of simulated time, against the
    same service without the job. The service reads ``read_size`` chunks of files chosen by a
    Zipf(``zipf_a``) popularity, ``think_us`` apart. Returns one row per variant."""
    fsize = parse_size(file_size, "file_size")
    rows = []
    for cron in (False, True):
        m = Machine(Config(memory=memory), seed=seed)
        m.mount("/srv", "ext4", size=max(2 * files * fsize, 64 << 20))
        svc = m.spawn("service")
        sh = m.spawn("sh")
        fds = []
        for i in range(files):
            fd = svc.open(f"/srv/f{i:03d}", os.O_CREAT | os.O_RDWR)
            svc.pwrite(fd, 0, fsize)
            fds.append(fd)
        svc.sync()
        rng = np.random.default_rng(seed)
        ranks = rng.zipf(zipf_a, reads * 4)
        ranks = ranks[ranks <= files][:reads] - 1
        chunks = fsize // read_size
        offs = rng.integers(0, chunks, len(ranks)) * read_size
        lat = np.zeros(len(ranks), np.int64)
        start = svc.time_ns
        sh_clock_next = start + int(period_s * 1e9)
        read0 = m.fs_stats("/srv")["bytes_read"]
        for k in range(len(ranks)):
            if cron and svc.time_ns >= sh_clock_next:
                sh.nanosleep(max(0, sh_clock_next - sh.time_ns))
                sh.sync()
                sh.write_sysctl("vm.drop_caches", 3)
                sh_clock_next += int(period_s * 1e9)
            t0 = svc.time_ns
            svc.pread(fds[ranks[k]], int(offs[k]), read_size)
            lat[k] = svc.time_ns - t0
            svc.nanosleep(think_us * 1000)
        elapsed = svc.time_ns - start
        vs = m.vmstat()
        rows.append({"cron": "drop_caches every %gs" % period_s if cron else "-",
                     "reads": len(ranks), "p50_us": float(np.percentile(lat, 50)) / 1e3,
                     "p99_us": float(np.percentile(lat, 99)) / 1e3, "max_us": int(lat.max()) / 1e3,
                     "elapsed_s": elapsed / 1e9,
                     "disk_read_MiB": (m.fs_stats("/srv")["bytes_read"] - read0) / (1 << 20),
                     "pgpgin": vs["pgpgin"], "drops": vs["drop_pagecache"], "dmesg_lines": len(m.dmesg())})
    return rows


WILLWRITE_VARIANTS = ("plain", "throwaway write", "MADV_WILLWRITE", "MADV_WILLWRITE full prep",
                      "MADV_POPULATE_WRITE", "FALLOC_FL_WRITE_ZEROES")


def willwrite_story(memory: str = "8GiB", file_size: str = "1GiB", mlock: bool = True,
                    variants: tuple[str, ...] = WILLWRITE_VARIANTS, seed: int = 0) -> list[dict]:
    """The MADV_WILLWRITE article's case: a file extended with fallocate(), mapped MAP_SHARED (and
    mlocked, as the original workload was), then a time-sensitive phase that writes one byte to
    every page. Each variant prepares the file differently before that phase:

    - ``plain``: nothing;
    - ``throwaway write``: write the whole file with write() and fsync it first (the workaround;
      its disk bytes are counted);
    - ``MADV_WILLWRITE``: the RFC (reserve and map buffers, nothing dirtied);
    - ``MADV_WILLWRITE full prep``: the RFC's future work (pages mapped writable and dirty);
    - ``MADV_POPULATE_WRITE``: mainline's answer since 5.14;
    - ``FALLOC_FL_WRITE_ZEROES``: mainline's answer since 6.17 (the blocks are written zeroes).

    Per-write latency is each page fault's latency (fault events) for writes that faulted, and
    the configured access cost for the rest. Returns one row per variant: p50/p99/max write
    latency, the phase's and the preparation's simulated time, the total including a final
    fsync, the faults in the phase and the bytes written to disk.
    """
    from .kernels.consts import FALLOC_FL_WRITE_ZEROES, MADV_POPULATE_WRITE, MADV_WILLWRITE, MAP_SHARED
    size = parse_size(file_size, "file_size")
    rows = []
    for v in variants:
        if v not in WILLWRITE_VARIANTS:
            raise ValueError(f"variants: {v!r} is not one of {list(WILLWRITE_VARIANTS)}")
        cfg = Config(memory=memory, record_faults=True,
                     willwrite_full_prep=v == "MADV_WILLWRITE full prep")
        m = Machine(cfg, seed=seed)
        m.mount("/db", "ext4", size=2 * size + (64 << 20))
        t = m.spawn("db")
        fd = t.open("/db/journal", os.O_CREAT | os.O_RDWR)
        start = t.time_ns
        written0 = m.fs_stats("/db")["bytes_written"]
        t.fallocate(fd, FALLOC_FL_WRITE_ZEROES if v == "FALLOC_FL_WRITE_ZEROES" else 0, 0, size)
        a = t.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd=fd)
        if mlock:
            t.mlock(a, size)
        if v == "throwaway write":
            t.pwrite(fd, 0, size)
            t.fsync(fd)
        elif v.startswith("MADV_WILLWRITE"):
            t.madvise(a, size, MADV_WILLWRITE)
        elif v == "MADV_POPULATE_WRITE":
            t.madvise(a, size, MADV_POPULATE_WRITE)
        prep = t.time_ns - start
        m.events()                                     # drop the preparation's fault records
        m._ev_chunks.clear()
        faults0 = t.counters()["min_flt"]
        p0 = t.time_ns
        t.touch(a, size, write=True)
        phase = t.time_ns - p0
        ev = m.events()
        lat = ev["latency_ns"][ev["op"] == 0]
        npages = size // 4096
        access = cfg.costs.access_ns
        all_lat = np.concatenate([lat.astype(np.float64), np.full(npages - len(lat), access)])
        t.fsync(fd)
        rows.append({"variant": v, "p50_us": float(np.percentile(all_lat, 50)) / 1e3,
                     "p99_us": float(np.percentile(all_lat, 99)) / 1e3,
                     "max_us": float(all_lat.max()) / 1e3,
                     "phase_ms": phase / 1e6, "prep_ms": prep / 1e6,
                     "total_ms": (t.time_ns - start) / 1e6,
                     "phase_faults": t.counters()["min_flt"] - faults0,
                     "disk_written_MiB": m.fs_stats("/db")["bytes_written"] / (1 << 20),
                     "extra_disk_MiB": (m.fs_stats("/db")["bytes_written"] - written0 - size) / (1 << 20)})
    return rows
