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


KH_KNOB = "kernel/mm/transparent_hugepage/khugepaged/"


def _sparse_heap(m: Machine, t, nbytes: int, every: int) -> tuple[int, int]:
    """A Redis-like heap: ``nbytes`` mapped, one write every ``every`` pages. Returns (address,
    simulated ns the writes took)."""
    a = t.mmap(nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t0 = t.time_ns
    t.touch(a, nbytes, stride=every * 4096)
    return a, t.time_ns - t0


def _random_reads(t, a: int, nbytes: int, every: int, reads: int, seed: int) -> tuple[int, int]:
    """``reads`` reads of the written pages in random order: (simulated ns, STLB misses)."""
    rng = np.random.default_rng(seed)
    pages = rng.integers(0, nbytes // (every * 4096), reads, dtype=np.int64)
    c0 = t.counters()
    t.access(a + pages * (every * 4096) + rng.integers(0, 4096, reads, dtype=np.int64))
    c1 = t.counters()
    return c1["time_ns"] - c0["time_ns"], c1["stlb_misses"] - c0["stlb_misses"]


def thp_bloat(memory: str = "8GiB", size: str = "4GiB", every: int = 8, reads: int = 1_000_000,
              max_ptes_none: tuple[int, ...] = (511, 256, 0), underused: tuple[int, ...] = (409,),
              seed: int = 0) -> list[dict]:
    """Huge-page memory bloat on a sparse heap (one write every ``every`` pages over ``size``,
    the Redis-like pattern Ingens measured), then random reads of the written pages.

    Variants: THP ``never``; ``always`` (huge pages at fault time); for each ``max_ptes_none``,
    the heap faulted with 4 KiB pages and then left to khugepaged (THP turned on afterwards, one
    full scan); and for each ``underused`` value, ``always`` with khugepaged's max_ptes_none set
    to it before the writes, then the deferred-split shrinker run over every THP (6.12's
    underused-THP shrinker; ``vm.drop_caches`` 2 runs it, as memory pressure would in part).
    Each row: Rss and AnonHugePages in MiB, Rss over the ``never`` row's, the simulated time
    and STLB misses of the writes and reads, the pages khugepaged collapsed and the THPs the
    shrinker split."""
    nbytes = parse_size(size, "size")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every: expected a positive number of pages, got {every!r}")
    for name, values in (("max_ptes_none", max_ptes_none), ("underused", underused)):
        for n in values:
            if not isinstance(n, int) or not 0 <= n <= 511:
                raise ValueError(f"{name}: expected values in 0..511, got {n!r}")
    variants: list[tuple[str, str, int | None, int | None]] = [
        ("never", "never", None, None), ("always", "always", None, None)]
    variants += [(f"khugepaged max_ptes_none={n}", "never", n, None) for n in max_ptes_none]
    variants += [(f"always, underused shrinker max_ptes_none={n}", "always", None, n)
                 for n in underused]
    rows = []
    for name, enabled, mpn, shrink in variants:
        m = Machine(Config(memory=memory, thp_enabled=enabled), seed=seed)
        t = m.spawn("redis")
        if shrink is not None:
            m.sysfs_write(KH_KNOB + "max_ptes_none", shrink)
        a, wns = _sparse_heap(m, t, nbytes, every)
        if mpn is not None:
            m.sysfs_write(KH_KNOB + "max_ptes_none", mpn)
            m.sysfs_write(KH_KNOB + "pages_to_scan", 2 ** 32 - 1)
            m.sysfs_write("kernel/mm/transparent_hugepage/enabled", "always")
            t.madvise(a, nbytes, 14)          # MADV_HUGEPAGE enrols the mm (no fault would)
            m.advance(1_000_000)              # khugepaged's first wakeup: one full scan
        if shrink is not None:
            t.write_sysctl("vm.drop_caches", 2)
        rns, misses = _random_reads(t, a, nbytes, every, reads, seed)
        sm = t.smaps(a)
        rows.append({"variant": name, "Rss_MiB": sm["Rss"] // 1024,
                     "AnonHugePages_MiB": sm["AnonHugePages"] // 1024,
                     "write_ms": round(wns / 1e6, 3), "read_ms": round(rns / 1e6, 3),
                     "stlb_misses_per_read": round(misses / max(reads, 1), 4),
                     "collapsed": m.khugepaged()["pages_collapsed"],
                     "underused_split": m.vmstat()["thp_underused_split_page"]})
    base = rows[0]["Rss_MiB"]
    for r in rows:
        r["bloat"] = round(r["Rss_MiB"] / base, 2) if base else float("nan")
    return rows


def thp_mixed(memory: str = "8GiB", dense: str = "1GiB", sparse: str = "4GiB", every: int = 8,
              reads: int = 2_000_000, seed: int = 0) -> list[dict]:
    """The article's mixed workload: a dense, TLB-bound process (touches ``dense`` and reads it
    at random) beside a sparse one (one write every ``every`` pages over ``sparse``, then random
    reads of what it wrote), under THP ``always`` with and without PR_SET_THP_DISABLE on the
    sparse process, and under ``never``. One row per process per case: Rss, AnonHugePages (MiB)
    and simulated time (ms). Parameters are fixed before the run."""
    dbytes, sbytes = parse_size(dense, "dense"), parse_size(sparse, "sparse")
    rows = []
    for case, enabled, prctl in (("always", "always", False),
                                 ("always + PR_SET_THP_DISABLE on sparse", "always", True),
                                 ("never", "never", False)):
        m = Machine(Config(memory=memory, thp_enabled=enabled), seed=seed)
        d = m.spawn("dense")
        sp = m.spawn("sparse")
        if prctl:
            sp.prctl(PR_SET_THP_DISABLE, 1)
        da = d.mmap(dbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        d.touch(da, dbytes)
        rng = np.random.default_rng(seed)
        d.access(da + rng.integers(0, dbytes, reads, dtype=np.int64))
        sa, _ = _sparse_heap(m, sp, sbytes, every)
        _random_reads(sp, sa, sbytes, every, reads, seed)
        for name, t, a in (("dense", d, da), ("sparse", sp, sa)):
            sm = t.smaps(a)
            rows.append({"case": case, "process": name, "Rss_MiB": sm["Rss"] // 1024,
                         "AnonHugePages_MiB": sm["AnonHugePages"] // 1024,
                         "time_ms": round(t.time_ns / 1e6, 3),
                         "stlb_misses": t.counters()["stlb_misses"]})
    return rows


def thp_fragmentation(memory: str = "1GiB", app: str = "256MiB", keep_every: int = 16,
                      seed: int = 0) -> list[dict]:
    """Plenty of free memory and none of it in 2 MiB blocks: a cache process faults nearly all
    memory with 4 KiB pages, then frees all but one page in every ``keep_every``. A new process
    then faults ``app`` with THP ``always``. Variants: no compaction at all (defrag ``madvise``,
    proactive compaction off): its THP faults fall back; ``defrag=always``: direct compaction in
    the faults (compaction stalls); kcompactd's proactive compaction (6.18's default
    proactiveness 20) given one second first; and ``echo 1 > /proc/sys/vm/compact_memory``
    first. Each row: the app's AnonHugePages, THP faults and fallbacks, compaction counters, the
    app's fault time and the free order-9+ blocks before it ran."""
    if not isinstance(keep_every, int) or keep_every < 2:
        raise ValueError(f"keep_every: expected an integer >= 2, got {keep_every!r}")
    size = parse_size(app, "app")
    rows = []
    for variant, defrag, proactive, prep in (("no compaction", "madvise", 0, None),
                                             ("defrag=always (direct)", "always", 0, None),
                                             ("kcompactd, proactive", "madvise", 20, "sleep"),
                                             ("compact_memory", "madvise", 0, "compact")):
        m = Machine(Config(memory=memory, thp_enabled="always", thp_defrag=defrag,
                           compaction_proactiveness=proactive), seed=seed)
        cache = m.spawn("cache")
        n = (m.meminfo()["MemFree"] * 1024 - (16 << 20)) & ~((2 << 20) - 1)
        a = cache.mmap(n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        cache.madvise(a, n, 15)                        # MADV_NOHUGEPAGE: 4 KiB pages
        cache.touch(a, n)
        step = keep_every * 4096
        for off in range(0, n, step):                  # keep one page in keep_every
            cache.madvise(a + off + 4096, step - 4096, 4)
        blocks_before = sum(m.buddyinfo()[9:])
        t = m.spawn("app")
        if prep == "sleep":
            t.nanosleep(1_000_000_000)
        elif prep == "compact":
            t.write_sysctl("vm.compact_memory", 1)
        v0 = m.vmstat()
        t0 = t.time_ns
        b = t.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        t.touch(b, size)
        v = m.vmstat()
        rows.append({"variant": variant, "free_MiB": m.meminfo()["MemFree"] // 1024,
                     "order9_blocks_before": blocks_before,
                     "AnonHugePages_MiB": t.smaps(b)["AnonHugePages"] // 1024,
                     "thp_fault_alloc": v["thp_fault_alloc"] - v0["thp_fault_alloc"],
                     "thp_fault_fallback": v["thp_fault_fallback"] - v0["thp_fault_fallback"],
                     "compact_stall": v["compact_stall"],
                     "pgmigrate_success": v["pgmigrate_success"],
                     "fault_ms": round((t.time_ns - t0) / 1e6, 3)})
    return rows


def warmup(parallel: bool = False) -> None:
    """Compile (or load from the cache) every kernel the API uses.

    ``parallel``: with an empty cache and more than one CPU, compile the file layer's kernels
    in a second (spawned) process while this one compiles the rest; both write the shared
    cache, and this process then loads what the other compiled. Otherwise, or with a warm
    cache (loading is quick), everything runs here."""
    if parallel and (os.cpu_count() or 1) > 1 and _cache_is_empty():
        import multiprocessing
        child = multiprocessing.get_context("spawn").Process(target=_warm_files)
        child.start()
        try:
            _warm_anon()
        finally:
            child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"warmup: the process compiling the file layer's kernels failed "
                               f"(exit code {child.exitcode})")
    else:
        _warm_anon()
    _warm_files()


def _cache_is_empty() -> bool:
    from .kernels.jit import CACHE_DIR
    return not os.path.isdir(CACHE_DIR) or not any(
        name.endswith(".nbi") for _, _, files in os.walk(CACHE_DIR) for name in files)


def _warm_anon() -> None:
    """The anonymous-memory side: faults, THP, TLBs, madvise, khugepaged, compaction."""
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
    t.write_sysctl("vm.compact_memory", 1)


def _warm_files() -> None:
    """The file layer and the page-cache replay."""
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


# the huge page cache cases: (label, Config.huge_page_cache, filesystem, tmpfs huge=)
HPC_CASES = (("off (tmpfs huge=never)", "mainline", "tmpfs", "never"),
             ("2013 (ramfs)", "2013", "ramfs", "never"),
             ("2013+mmap (ramfs)", "2013+mmap", "ramfs", "never"),
             ("tmpfs huge=within_size", "mainline", "tmpfs", "within_size"),
             ("tmpfs huge=always", "mainline", "tmpfs", "always"))


def huge_page_cache(memory: str = "8GiB", file: str = "256MiB", reads: int = 1_000_000,
                    files: int = 2000, seed: int = 0) -> list[dict]:
    """The benchmark the 2013 huge page cache series lacked: file-backed workloads with the huge
    page cache off and under each model (``HPC_CASES``):

    - ``sequential scan``: a ``file``-sized file written, mapped shared read-only and read from
      start to end three times;
    - ``random reads``: the same file mapped and ``reads`` random addresses read;
    - ``build mix``: ``files`` small files (4 KiB to 64 KiB, a fixed seeded size mix, like
      sources and objects) written and closed, then each opened and read back with pread, every
      fourth mapped and read whole, and half of them unlinked.

    One row per case and workload: the simulated time of writing the files (``setup_ms``) and of
    the workload after it (``run_ms``), and for the workload: page faults, dTLB and STLB misses,
    page-walk time (us); then the file memory at the end (MiB: the pages the files hold, huge
    pages included), the huge pages in the page cache and the PMD mappings made. Parameters
    are fixed before the run; the machine is the 6.18 profile with THP ``enabled=always``, and
    tmpfs may fill all of its memory."""
    from . import MAP_SHARED
    fbytes = parse_size(file, "file")
    if not isinstance(reads, int) or reads < 1:
        raise ValueError(f"reads: expected a positive integer, got {reads!r}")
    if not isinstance(files, int) or files < 1:
        raise ValueError(f"files: expected a positive integer, got {files!r}")
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 2, 3, 4, 6, 8, 12, 16], size=files) * 4096     # 4 .. 64 KiB
    offsets = rng.integers(0, fbytes, reads, dtype=np.int64)
    rows = []
    for label, model, fstype, huge in HPC_CASES:
        for workload in ("sequential scan", "random reads", "build mix"):
            m = Machine(Config(memory=memory, thp_enabled="always", huge_page_cache=model),
                        seed=seed)
            m.mount("/mnt", fstype, size=memory if fstype == "tmpfs" else None, huge=huge)
            t = m.spawn(workload.split()[0])
            flags = os.O_CREAT | os.O_RDWR
            if workload == "build mix":
                for i, n in enumerate(sizes.tolist()):
                    fd = t.open(f"/mnt/f{i}", flags)
                    t.pwrite(fd, 0, n)
                    t.close(fd)
                t0, c0 = t.time_ns, t.counters()
                for i, n in enumerate(sizes.tolist()):
                    fd = t.open(f"/mnt/f{i}", os.O_RDONLY)
                    t.pread(fd, 0, n)
                    if i % 4 == 0:
                        a = t.mmap(n, PROT_READ, MAP_SHARED, fd=fd)
                        t.touch(a, n, write=False)
                        t.munmap(a, n)
                    t.close(fd)
                for i in range(0, files, 2):
                    t.unlink(f"/mnt/f{i}")
            else:
                fd = t.open("/mnt/data", flags)
                t.pwrite(fd, 0, fbytes)
                a = t.mmap(fbytes, PROT_READ, MAP_SHARED, fd=fd)
                t0, c0 = t.time_ns, t.counters()
                if workload == "sequential scan":
                    for _ in range(3):
                        t.touch(a, fbytes, write=False)
                else:
                    t.access(a + offsets)
            c, mi, v = t.counters(), m.meminfo(), m.vmstat()
            file_kb = mi["Shmem"] + mi["Unevictable"]
            rows.append({"case": label, "workload": workload,
                         "setup_ms": round(t0 / 1e6, 3),
                         "run_ms": round((t.time_ns - t0) / 1e6, 3),
                         "faults": c["min_flt"] + c["maj_flt"] - c0["min_flt"] - c0["maj_flt"],
                         "dtlb_misses": c["dtlb_misses"] - c0["dtlb_misses"],
                         "stlb_misses": c["stlb_misses"] - c0["stlb_misses"],
                         "walk_us": round((c["walk_ns"] - c0["walk_ns"]) / 1e3, 1),
                         "file_MiB": round(file_kb / 1024, 1),
                         "huge_pages": (mi["ShmemHugePages"] + mi["FileHugePages"]) // 2048,
                         "pmd_mapped": v["thp_file_mapped"]})
    return rows


def plot_huge_page_cache(rows: list[dict], path: str | os.PathLike) -> str:
    """``huge_page_cache()``'s rows as a figure: per workload, the workload's simulated time and
    STLB misses, and the file memory, one bar per case. Written to ``path`` (PNG, SVG or PDF by
    its suffix); returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    by = {(r["case"], r["workload"]): r for r in rows}
    metrics = (("run_ms", "simulated time of the workload (ms)", False),
               ("stlb_misses", "STLB misses", True),
               ("file_MiB", "file memory at the end (MiB)", True))
    fig, axes = plt.subplots(len(metrics), len(workloads), figsize=(4.2 * len(workloads), 8.5),
                             squeeze=False)
    width = 0.8 / len(cases)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, w in enumerate(workloads):
        for i, (key, label, log) in enumerate(metrics):
            ax = axes[i][j]
            for k, c in enumerate(cases):
                v = by[(c, w)][key]
                ax.bar(k * width, max(v, 1e-3) if log else v, width, color=colors[k % len(colors)],
                       label=c)
            ax.set_xticks([])
            if log:
                ax.set_yscale("log")
            if i == 0:
                ax.set_title(w)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("The huge page cache: off, the 2013 series, and mainline tmpfs")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
