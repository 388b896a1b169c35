"""Differential tests of the transparent huge page cache: the JIT engine against the reference
(tests/reference/file_model.py for the page cache, tests/reference/file_maps.py for mappings;
FILES.md 13 and 14).

The streams run tmpfs with huge=always/within_size/advise (and shmem_enabled force/deny), ramfs
under the 2013 models, mappings at 2 MiB-aligned sizes so that PMD mappings happen, and mix file
calls (write, read, fallocate, punch, truncate, unlink) with mappings (mmap, touch, munmap,
mprotect, madvise, fork, prctl). After every op both sides must agree on the op's outcome (value,
errno or signal and its address), and on: the huge page cache's vmstat counters (thp_file_*,
thp_split_*, thp_write_*, thp_read_*, nr_*_hugepages, nr_*_pmdmapped) and the file layer's;
meminfo (ShmemHugePages, ShmemPmdMapped, FileHugePages, FilePmdMapped, Shmem, Mapped, AnonPages,
...); every task's VMAs, smaps per VMA and RSS; every inode, cached page (its folio's flags) and
LRU list; fs_stats. Time: file calls are compared to the picosecond; the mapping calls' and the
faults' costs belong to the engine's hardware model, so the reference adopts the engine's clocks
after each of them. Page tables are not memory in the reference: MemFree and nr_free_pages are
compared with the engine's page-table pages added back, and pgalloc/pgfree only in streams
without mappings.

khugepaged is asleep in those streams (THP enabled=never). The streams at the end
(tests/reference/file_collapse.py, FILES.md 15) run it: THP enabled=always, a wakeup every 100 ms
(``Config(khugepaged=...)``), time passing as an op (``Machine.advance``) and MADV_COLLAPSE
(madvise advice 25) among the ops; they compare everything above plus pages_collapsed, full_scans,
khugepaged's busy time, next wakeup and list, thp_collapse_alloc[_failed] and
thp_scan_exceed_none_pte. khugepaged's and MADV_COLLAPSE's costs are compared too; the one clock
the reference takes from the engine there is the time of the fault that first wakes khugepaged.
"""
import os

import numpy as np
import pytest

import mmcore
from mmcore.check import check_files, check_invariants
from mmcore.kernels import consts as K

from .reference.file_collapse import COLLAPSE_DEVIATIONS, MADV_COLLAPSE, RefCollapse
from .reference.file_maps import MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, VM_MASK, \
    SegFault, SigBus
from .reference.file_model import DEVIATIONS, MAPPING_DEVIATIONS
from .test_files_differential import (
    KEEP,
    MEMINFO_KEYS,
    PUNCH,
    REGIME,
    RWC,
    VMSTAT_KEYS,
    costs_ps,
    engine_inodes,
    engine_lists,
    engine_pages,
)

KiB, MiB, PG, HP = 1 << 10, 1 << 20, 4096, 2 << 20
# the engine's departures from Linux that these streams meet (FILES.md 12)
#
# Notes on rules both sides share that later kernels may not (FILES.md 13): a huge folio is marked
# accessed once per 4 KiB step of a write or read (generic_perform_write before 6.11 and
# shmem_file_read_iter before 6.14 stepped by page; later kernels step by folio, and 6.x's
# filemap_read asks pos_same_folio at the folio's size); a split folio's pages go to the head of
# its list (__split_huge_page puts the tails next to the head, in place); mmap aligns file mappings
# to 2 MiB whatever the offset (shmem_get_unmapped_area aligns the address to the offset, so a
# long mapping at a 4 KiB offset can still be PMD-mapped in Linux); tmpfs huge=always allocates
# only PMD-sized folios (6.14+ also falls back to smaller large folios).
ENGINE: frozenset = frozenset()      # departures the engine still has (none of the five now)
# ... and in khugepaged's and MADV_COLLAPSE's work on page-cache ranges (file_collapse.py)
KH_ENGINE: frozenset = frozenset(COLLAPSE_DEVIATIONS) - {   # fixed since
    "collapse_clean_folio", "collapse_fills_empty_range", "collapse_ignores_own_pmd",
    "khugepaged_off_with_thp_never", "madv_collapse_goes_on", "khugepaged_vma_check_per_range",
    "collapse_charge_first", "khugepaged_enrols_on_fault", "retract_ignores_anon_vma"}
KH_PC_ROOM = 1 << 15
HPC_VMSTAT = ("thp_file_alloc", "thp_file_fallback", "thp_file_mapped", "thp_split_pmd",
              "thp_split_page", "thp_write_alloc", "thp_write_alloc_failed", "thp_read_alloc",
              "thp_read_alloc_failed", "nr_shmem_hugepages", "nr_file_hugepages",
              "nr_shmem_pmdmapped", "nr_file_pmdmapped", "nr_anon_pages", "pgmajfault",
              "thp_collapse_alloc", "thp_collapse_alloc_failed", "thp_scan_exceed_none_pte")
HPC_MEMINFO = ("ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped", "AnonPages")
SMAPS_KEYS = ("Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean",
              "Private_Dirty", "Anonymous", "ShmemPmdMapped", "FilePmdMapped")
MAPPING_OPS = ("mmap", "touch", "munmap", "mprotect", "madvise", "fork", "prctl")


def tmpfs(huge, size=24 * MiB):
    return ("/t", "tmpfs", size, huge)


RAMFS = ("/r", "ramfs", None, "never")


class HPair:
    """One engine machine and one reference with mappings, tasks paired up (children too).

    With ``khugepaged`` (its settings) THP is enabled=always and khugepaged runs: touches go one
    access per call, so that a wakeup due in the middle of a touch runs at the same access on
    both sides (the engine runs timers between accesses, the reference between calls)."""

    def __init__(self, mounts, *, hpc="mainline", shmem_enabled="never", kernel="6.18", ncpus=2,
                 deviations=ENGINE | KH_ENGINE, memory="256MiB", khugepaged=None, thp="always",
                 pc_room=True):
        self.kh = khugepaged is not None
        extra = dict(khugepaged=khugepaged, compaction_proactiveness=0) if self.kh else {}
        cfg = mmcore.Config(memory=memory, kernel=kernel, ncpus=ncpus, huge_page_cache=hpc,
                            shmem_enabled=shmem_enabled,
                            thp_enabled=thp if self.kh else "never",  # else asleep for good
                            **REGIME, **extra)
        self.m = mmcore.Machine(cfg)
        if self.kh and pc_room:
            # room in the page-cache index for every page the streams can cache: a khugepaged
            # collapse finding the index short of room fails (MADV_COLLAPSE grows it first:
            # test_collapse_index_room below)
            self.m.vfs.grow_if_needed(KH_PC_ROOM)
        c = self.m.state.cfg
        base = cfg.mmap_base
        self.r = RefCollapse(cfg.memory_bytes, costs_ps(cfg.costs), cfg.watermarks(),
                             kernel=cfg.profile.version, ncpus=ncpus,
                             read_ahead_kb=cfg.read_ahead_kb, max_sectors_kb=cfg.max_sectors_kb,
                             dirty_ratio=cfg.dirty_ratio,
                             dirty_background_ratio=cfg.dirty_background_ratio,
                             dirty_writeback_ps=cfg.dirty_writeback_centisecs * 10**10,
                             huge_page_cache=hpc, shmem_enabled=shmem_enabled,
                             fault_around_pages=cfg.fault_around_bytes >> 12,
                             thp_enabled=cfg.thp_enabled, khugepaged=khugepaged,
                             collapse_costs={"scan_pte": int(c[K.C_COST_SCAN_PTE]),
                                             "copy_page": int(c[K.C_COST_COPY_PAGE]),
                                             "clear_page": int(c[K.C_COST_CLEAR_PAGE]),
                                             "tlb_flush": int(c[K.C_COST_TLB_FLUSH])},
                             specials=[(base - 0x8000, base - 0x4000), (base - 0x4000, base - 0x2000),
                                       (base - 0x2000, base)],
                             madv_collapse=cfg.profile.madv_collapse, deviations=deviations)
        self.mounts = [mp[0] for mp in mounts]
        for path, fstype, size, huge in mounts:
            self.m.mount(path, fstype, size, huge=huge)
            self.r.mount(path, fstype, size or 0, huge=huge)
        self.tasks = [(self.m.spawn(f"t{k}"), self.r.spawn(f"t{k}")) for k in range(2)]
        self.maps = [[], []]                     # per task: the (address, length) it mapped
        self.mapped_ever = False

    # ---- running ops ----------------------------------------------------------------------------
    def both(self, k, name, *args):
        k %= len(self.tasks)
        t, pid = self.tasks[k]
        if name == "advance":                    # the machine idles: khugepaged runs
            self.m.advance(*args)
            self.r.advance(*args)
            outs = [None, None]
        elif name in MAPPING_OPS:
            outs = self._mapping_op(k, t, pid, name, args)
            if name == "madvise" and args[-1] == MADV_COLLAPSE:
                self.r.adopt_kh_wake(int(self.m.state.gs[K.G_KH_WAKE]))   # its own clock: compared
            else:
                self._adopt_clocks()
        else:
            m, r = self.m, self.r
            calls = {"sync": (t.sync, lambda: r.sync(pid))}
            fe, fr = calls[name] if name in calls else (getattr(t, name),
                                                         lambda *a: getattr(r, name)(pid, *a))
            outs = [_outcome(fe, *args)]
            r.kh_tick(pid)                       # the timers due before the call starts
            outs.append(_outcome(fr, *args))
            if name in ("close", "unlink"):
                m.vfs.reap()
        assert outs[0] == outs[1], f"{name}{args} as task {k}: engine {outs[0]} vs reference {outs[1]}"

    def _mapping_op(self, k, t, pid, name, args):
        r = self.r
        maps = self.maps[k]
        if name == "fork":
            if len(self.tasks) >= 4:
                return [None, None]
            c = t.fork()
            r.kh_tick(pid)
            cpid = r.fork(pid, int(self.m.state.task[K.T_CPU, c._ti]))
            self.tasks.append((c, cpid))
            self.maps.append(list(maps))
            return [("ok", None), ("ok", None)]
        if name == "prctl":
            e = _outcome(t.prctl, K.PR_SET_THP_DISABLE, 1)
            r.kh_tick(pid)
            return [e, _outcome(r.prctl_thp_disable, pid)]
        if name == "mmap":
            fd, length, prot, shared, offset = args
            e = _outcome(lambda: t.mmap(length, prot, K.MAP_SHARED if shared else K.MAP_PRIVATE,
                                        fd=fd, offset=offset))
            r.kh_tick(pid)
            addr = e[1] if e[0] == "ok" else 0
            rr = _outcome(r.mmap, pid, addr, length, prot, shared, fd, offset)
            if e[0] == "ok":
                maps.append((addr, length))
                self.mapped_ever = True
            return [e, rr]
        if not maps:                             # another task's mappings, if any task has some
            k = next((j for j in range(len(self.tasks)) if self.maps[j]), None)
            if k is None:
                return [None, None]
            (t, pid), maps = self.tasks[k], self.maps[k]
        slot, off, length, *rest = args
        base, size = maps[slot % len(maps)]
        a = base + off % size
        if name == "touch" and self.kh:
            return self._touch_by_access(t, pid, a, length, rest[0])
        if name == "touch":
            return [_outcome(t.touch, a, length, write=rest[0]), _outcome(r.touch, pid, a, length, rest[0])]
        calls = {"munmap": (lambda: t.munmap(a, length), lambda: r.munmap(pid, a, length)),
                 "mprotect": (lambda: t.mprotect(a, length, mmcore.PROT_READ),
                              lambda: r.mprotect_read(pid, a, length)),
                 "madvise": (lambda: t.madvise(a, length, rest[0]),
                             lambda: r.madvise(pid, a, length, rest[0]))}
        fe, fr = calls[name]
        e = _outcome(fe)
        r.kh_tick(pid)
        return [e, _outcome(fr)]

    def _touch_by_access(self, t, pid, a, length, write):
        """A touch as one call per access, clocks adopted after each (see the class)."""
        for k in range(-(-length // PG)):
            e = _outcome(t.touch, a + k * PG, 1, write=write)
            self.r.kh_tick(pid)
            rr = _outcome(self.r.touch, pid, a + k * PG, 1, write)
            self._adopt_clocks()
            if e != rr or e[0] != "ok":
                return [e, rr]
        return [("ok", None), ("ok", None)]

    def _adopt_clocks(self):
        """The mapping calls' and faults' costs are the engine's hardware model (FILES.md 14)."""
        s, r = self.m.state, self.r
        for t, pid in self.tasks:
            r.tasks[pid].clock = int(s.task[K.T_CLOCK, t._ti])
        r.cpu_free = s.cpus[:, K.CPU_FREE_AT].tolist()
        r.now = int(s.gs[K.G_NOW])
        r.adopt_kh_wake(int(s.gs[K.G_KH_WAKE]))  # a fault woke khugepaged: the fault's time

    # ---- comparing ------------------------------------------------------------------------------
    def compare(self, engine_checks=True):
        m, r = self.m, self.r
        for t, pid in self.tasks:
            clock = int(m.state.task[K.T_CLOCK, t._ti])
            assert clock == r.clock_ps(pid), f"task {pid}: engine clock {clock} ps vs {r.clock_ps(pid)}"
            tab = {fd: (of.ino, of.flags) for fd, of in m.vfs.fdtable(t.pid).items()}
            assert tab == {fd: (of.ino, of.flags) for fd, of in r.tasks[pid].fds.items()}, f"fds of {pid}"
            assert engine_vmas(m, t) == r.vmas(pid), f"VMAs of task {pid}"
            es = [{k: d[k] for k in SMAPS_KEYS} for d in engine_smaps(m, t)]
            for j, (a, b) in enumerate(zip(es, r.smaps(pid))):
                diff = {k: (a[k], b[k]) for k in SMAPS_KEYS if a[k] != b[k]}
                assert not diff, f"smaps of task {pid}, VMA {r.vmas(pid)[j][:2]} (engine, reference): {diff}"
            st = t.status()
            assert {k: st[k] for k in ("RssAnon", "RssFile", "RssShmem")} == r.rss(pid), f"RSS of {pid}"
            assert (m.state.mm[K.MM_PGD, t._mmi] >= 0) == r.mms[pid].pgd, f"page tables of {pid}"
        seq = m.state.mm[K.MM_KH_SEQ]
        listed = sorted((int(seq[t._mmi]), pid) for t, pid in self.tasks if seq[t._mmi])
        assert [pid for _, pid in listed] == r.kh_list, "khugepaged's list"
        kh = m.khugepaged()
        assert {k: kh[k] for k in ("pages_collapsed", "full_scans", "busy_ns")} == r.khugepaged(), \
            f"khugepaged (engine {kh}, reference {r.khugepaged()})"
        assert int(m.state.gs[K.G_KH_WAKE]) == r.kh_wake, "khugepaged's next wakeup"
        assert int(m.state.gs[K.G_NOW]) == r.now, "machine clock"
        assert m.state.cpus[:, K.CPU_FREE_AT].tolist() == r.cpu_free, "CPU clocks"
        mi, rmi = m.meminfo(), r.meminfo()
        pt = mi["PageTables"]
        mi = dict(mi, MemFree=mi["MemFree"] + pt, MemAvailable=mi["MemAvailable"] + pt)
        keys = MEMINFO_KEYS + HPC_MEMINFO
        diff = {k: (mi[k], rmi[k]) for k in keys if mi[k] != rmi[k]}
        assert not diff, f"meminfo (engine, reference): {diff}"
        v, rv = m.vmstat(), r.vmstat()
        v = dict(v, nr_free_pages=v["nr_free_pages"] + v["nr_page_table_pages"])
        skip = ("pgalloc_normal", "pgfree") if self.mapped_ever else ()
        diff = {k: (v[k], rv[k]) for k in VMSTAT_KEYS + HPC_VMSTAT if k not in skip and v[k] != rv[k]}
        assert not diff, f"vmstat (engine, reference): {diff}"
        for path in self.mounts:
            assert m.fs_stats(path) == r.fs_stats(path), f"fs_stats {path}"
        ei, ri = engine_inodes(m), r.inode_table()
        for ii, (a, b) in enumerate(zip(ei, ri)):
            assert a == b, f"inode {ii}: engine {a} vs reference {b}"
        assert len(ei) == len(ri), "inode count"
        assert engine_folios(m) == {i.ino: r.huge_folios(i) for i in r.inodes if i.alive}, "huge folios"
        assert engine_pages(m) == r.page_flags(), "cached pages (dirty, writeback, referenced, active, mapped)"
        assert engine_lists(m) == r.lru_lists(), "LRU lists"
        if engine_checks:
            check_invariants(m)
            check_files(m)
        r.check()


def _outcome(fn, *args, **kw):
    try:
        return ("ok", fn(*args, **kw))
    except OSError as e:
        return ("errno", e.errno)
    except (mmcore.BusError, SigBus) as e:
        return ("SIGBUS", getattr(e, "address", getattr(e, "va", None)))
    except (mmcore.SegmentationFault, SegFault) as e:
        return ("SIGSEGV", getattr(e, "address", getattr(e, "va", None)))


def engine_vmas(m, t) -> list:
    """The task's file VMAs: (start, end, flags we model, inode, pgoff)."""
    s = m.state
    b, n = int(s.mm[K.MM_VBASE, t._mmi]), int(s.mm[K.MM_VCOUNT, t._mmi])
    return [(int(s.vma[K.V_START, i]), int(s.vma[K.V_END, i]), int(s.vma[K.V_FLAGS, i]) & VM_MASK,
             int(s.vma[K.V_FILE, i]), int(s.vma[K.V_PGOFF, i]))
            for i in range(b, b + n) if s.vma[K.V_FILE, i] >= 0]


def engine_smaps(m, t) -> list:
    return [t._smaps_one(a, b, int(m.state.vma[K.V_FLAGS, i]))
            for i, (a, b) in _file_vma_rows(m, t)]


def _file_vma_rows(m, t):
    s = m.state
    b, n = int(s.mm[K.MM_VBASE, t._mmi]), int(s.mm[K.MM_VCOUNT, t._mmi])
    return [(i, (int(s.vma[K.V_START, i]), int(s.vma[K.V_END, i]))) for i in range(b, b + n)
            if s.vma[K.V_FILE, i] >= 0]


def engine_folios(m) -> dict:
    """Per live inode: the first index of each PMD-sized folio it caches."""
    s, f = m.state, m.vfs.state
    out = {ii: [] for ii in range(int(f.fgs[K.FG_NR_INODES])) if f.ino[K.I_ALIVE, ii]}
    for p in f.pc[f.pc >= 0].tolist():
        if s.fr_flags[p] & K.PG_file_thp and s.fr_flags[p] & K.PG_head:
            out[int(s.fr32[K.FR_OWNER, p])].append(int(s.fr_idx[p]))
    return {ii: sorted(v) for ii, v in out.items()}


def run(pair, ops, check_every=4):
    """Both sides run ``ops``, compared after each; the engine's own invariant checks run every
    ``check_every`` ops and after the last."""
    for n, op in enumerate(ops, 1):
        pair.both(*op)
        pair.compare(engine_checks=n % check_every == 0 or n == len(ops))
    return pair


# ---- random streams -----------------------------------------------------------------------------
PAGES = (0, 1, 100, 511, 512, 513, 700, 1024, 1535, 2047, 2048, 3000)
SUBPAGE = (0, 0, 0, 1, 2048)
LENGTHS = (1, 100, PG, 3 * PG + 5, 20 * PG, HP, HP + PG, 2 * HP, 3 * HP - 7)
MAP_LENGTHS = (HP, 2 * HP, 2 * HP, 4 * HP, 3 * HP)
MAP_OFFSETS = (0, 0, 0, HP, 4096, 2 * HP)
TOUCH_LENGTHS = (1, PG, 16 * PG, HP, 2 * HP, 4 * HP)
CUT_LENGTHS = (PG, 16 * PG, HP, HP + PG, 2 * HP)
SIZES = (0, MiB, 3 * MiB + PG, 6 * MiB, 8 * MiB, 8 * MiB, 12 * MiB)
WEIGHTS = {"open": 1, "close": 1, "pread": 3, "pwrite": 4, "ftruncate": 2, "fallocate": 3,
           "unlink": 1, "nanosleep": 1, "mmap": 3, "touch": 12, "munmap": 2, "mprotect": 1,
           "madvise": 3, "fork": 1, "prctl": 0}
FDS = (3, 3, 3, 4, 4, 5, 99)
FLAGS = (RWC, RWC, RWC | os.O_TRUNC, os.O_RDONLY, os.O_CREAT | os.O_WRONLY)


def _opening(mounts, rng):
    """Each task starts with two files open (descriptors 3 and 4), each file a few MiB long."""
    ops = [(k, "open", f"{mounts[(k + i) % len(mounts)][0]}/f{i}", RWC) for k in range(2) for i in range(2)]
    return ops + [(k, "ftruncate", fd, int(rng.choice(SIZES[2:]))) for k in range(2) for fd in (3, 4)]


def random_ops(rng, mounts, n, weights=WEIGHTS, map_offsets=MAP_OFFSETS, private_one_in=3):
    paths = [f"{mp[0]}/f{i}" for mp in mounts for i in range(2)]
    kinds = [k for k, w in weights.items() for _ in range(w)]
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]  # noqa: E731
    offset = lambda: pick(PAGES) * PG + pick(SUBPAGE)  # noqa: E731
    ops = _opening(mounts, rng)
    for _ in range(n):
        k, kind = int(rng.integers(0, 4)), pick(kinds)
        if kind == "open":
            ops.append((k, "open", pick(paths), pick(FLAGS)))
        elif kind == "close":
            ops.append((k, kind, pick(FDS)))
        elif kind in ("pread", "pwrite"):
            ops.append((k, kind, pick(FDS), offset(), pick(LENGTHS)))
        elif kind == "ftruncate":
            ops.append((k, kind, pick(FDS), pick(SIZES) + pick((0, 0, 1, PG + 5))))
        elif kind == "fallocate":
            ops.append((k, kind, pick(FDS), pick((0, KEEP, PUNCH | KEEP, PUNCH | KEEP)), offset(),
                        pick(LENGTHS)))
        elif kind == "unlink":
            ops.append((k, kind, pick(paths)))
        elif kind == "nanosleep":
            ops.append((k, kind, int(rng.integers(0, 100_000))))
        elif kind == "mmap":
            ops.append((k, kind, pick(FDS[:5]), pick(MAP_LENGTHS),
                        pick((mmcore.PROT_READ | mmcore.PROT_WRITE,) * 3 + (mmcore.PROT_READ,)),
                        bool(rng.integers(0, private_one_in)), pick(map_offsets)))
        elif kind == "touch":
            ops.append((k, kind, int(rng.integers(0, 4)), pick(PAGES) * PG, pick(TOUCH_LENGTHS),
                        not rng.integers(0, 3)))
        elif kind in ("munmap", "mprotect"):
            ops.append((k, kind, int(rng.integers(0, 4)), pick(PAGES) * PG, pick(CUT_LENGTHS)))
        elif kind == "madvise":
            ops.append((k, kind, int(rng.integers(0, 4)), pick((0, 0, 512, 700, 1024)) * PG,
                        pick(CUT_LENGTHS + (8 * HP,)),
                        pick((MADV_HUGEPAGE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTNEED))))
        else:
            ops.append((k, kind))
    return ops


SETUPS = {
    "always": dict(mounts=(tmpfs("always"), RAMFS)),
    "within_size": dict(mounts=(tmpfs("within_size"), RAMFS)),
    "advise": dict(mounts=(tmpfs("advise"), RAMFS)),
    "force": dict(mounts=(tmpfs("never"), RAMFS), shmem_enabled="force"),
    "deny": dict(mounts=(tmpfs("always"), RAMFS), shmem_enabled="deny"),
    "2013": dict(mounts=(RAMFS, tmpfs("never")), hpc="2013"),
    "2013+mmap": dict(mounts=(RAMFS, tmpfs("never")), hpc="2013+mmap"),
    "4.13": dict(mounts=(tmpfs("always"), RAMFS), kernel="4.13"),
}


RANDOM_SETUPS = ("always", "within_size", "advise", "force", "deny", "2013", "2013+mmap", "4.13")


@pytest.mark.parametrize("setup,seed", [(s, seed) for s in RANDOM_SETUPS for seed in range(4)])
def test_random_streams_agree(setup, seed):
    rng = np.random.default_rng(1000 + seed)
    kw = SETUPS[setup]
    w = dict(WEIGHTS, prctl=1 if kw.get("kernel", "6.18") == "6.18" else 0)
    run(HPair(**kw), random_ops(rng, kw["mounts"], 60, w))


# streams built for PMD mappings: shared mappings at aligned offsets, many accesses, and every
# way of splitting a PMD (munmap, mprotect, madvise, truncate, punch, private writes, fork)
PMD_WEIGHTS = dict(WEIGHTS, pread=1, pwrite=2, fallocate=2, open=0, close=0, unlink=0, touch=16,
                   munmap=3, mprotect=2, madvise=3, fork=2)


@pytest.mark.parametrize("setup,seed", [(s, seed) for s in ("always", "advise", "2013+mmap", "2013")
                                        for seed in range(3)])
def test_pmd_streams_agree(setup, seed):
    rng = np.random.default_rng(2000 + seed)
    kw = SETUPS[setup]
    run(HPair(**kw), random_ops(rng, kw["mounts"], 60, dict(PMD_WEIGHTS, prctl=int(seed == 2)),
                                map_offsets=(0, 0, 0, HP, PG), private_one_in=6))


def test_file_calls_alone_agree_with_every_counter():
    """Without mappings pgalloc/pgfree and the free pages compare exactly as well."""
    rng = np.random.default_rng(5)
    kw = SETUPS["always"]
    w = {k: (v if k not in MAPPING_OPS else 0) for k, v in WEIGHTS.items()}
    pair = run(HPair(**kw), random_ops(rng, kw["mounts"], 60, w))
    assert not pair.mapped_ever and pair.m.vmstat()["thp_file_alloc"] > 0


# ---- hand-written streams -----------------------------------------------------------------------
RW = mmcore.PROT_READ | mmcore.PROT_WRITE
OPEN_T = (0, "open", "/t/f", RWC)
OPEN_R = (0, "open", "/r/f", RWC)
REGRESSIONS = {
    # huge=always: a write allocates whole folios, even for one page of data
    "always_write": ("always", [OPEN_T, (0, "pwrite", 3, 0, 2 * HP + PG), (0, "pread", 3, 0, 3 * PG),
                                (0, "pread", 3, HP + 5, 2)]),
    # within_size: small until the write (or the size) reaches the range's end; EEXIST keeps small
    "within_size": ("within_size", [OPEN_T, (0, "pwrite", 3, 0, MiB), (0, "pwrite", 3, HP, HP),
                                    (0, "pwrite", 3, MiB, PG), (0, "ftruncate", 3, 6 * MiB),
                                    (0, "fallocate", 3, 0, 5 * MiB, PG)]),
    # advise: only a fault in a MADV_HUGEPAGE VMA
    "advise_fault": ("advise", [OPEN_T, (0, "ftruncate", 3, 8 * MiB), (0, "pwrite", 3, 0, HP),
                                (0, "mmap", 3, 8 * MiB, RW, True, 0), (0, "touch", 0, HP, PG, False),
                                (0, "madvise", 0, 0, 8 * MiB, MADV_HUGEPAGE),
                                (0, "touch", 0, 4 * MiB, PG, False), (0, "touch", 0, 6 * MiB, PG, True)]),
    # a shared aligned mapping: one fault per 2 MiB; partial munmap splits; re-fault by PTEs
    "pmd_map_and_split": ("always", [OPEN_T, (0, "ftruncate", 3, 8 * MiB), (0, "mmap", 3, 8 * MiB, RW, True, 0),
                                     (0, "touch", 0, 0, 8 * MiB, True), (0, "munmap", 0, MiB, PG),
                                     (0, "touch", 0, 0, MiB, False), (0, "madvise", 0, HP, PG, MADV_DONTNEED),
                                     (0, "mprotect", 0, 4 * MiB + PG, HP),
                                     (0, "madvise", 0, 6 * MiB, 16 * PG, MADV_NOHUGEPAGE)]),
    # a misaligned offset maps the folio with PTEs; a private write copies 4 KiB
    "misaligned_and_cow": ("always", [OPEN_T, (0, "pwrite", 3, 0, 2 * HP),
                                      (0, "mmap", 3, HP, mmcore.PROT_READ, True, PG),
                                      (0, "touch", 0, 0, HP, False), (0, "mmap", 3, HP, RW, False, 0),
                                      (0, "touch", 1, 0, HP, False), (0, "touch", 1, 8192, 1, True),
                                      (0, "fork"), (2, "touch", 1, 0, 3 * PG, False),
                                      (2, "touch", 1, 8192, 1, True), (0, "touch", 1, 8192, 1, True)]),
    # prctl and MADV_NOHUGEPAGE keep faults small
    "prctl_nohugepage": ("always", [OPEN_T, (0, "ftruncate", 3, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
                                    (0, "madvise", 0, 0, HP, MADV_NOHUGEPAGE), (0, "touch", 0, 0, PG, False),
                                    (0, "prctl"), (0, "touch", 0, HP, PG, False)]),
    # truncation: whole folios go, a partial one is split (6.18) with its PMD cleared
    "truncate_split": ("always", [OPEN_T, (0, "pwrite", 3, 0, 3 * HP), (0, "mmap", 3, 3 * HP, RW, True, 0),
                                  (0, "touch", 0, 0, 3 * HP, False), (0, "ftruncate", 3, 3 * MiB),
                                  (0, "touch", 0, 0, 3 * MiB, False), (0, "touch", 0, 3 * MiB, 1, False)]),
    # 4.13: the partial folio is zeroed and kept whole
    "truncate_4_13": ("4.13", [OPEN_T, (0, "pwrite", 3, 0, 2 * HP), (0, "ftruncate", 3, 3 * MiB),
                               (0, "fallocate", 3, PUNCH | KEEP, PG, MiB)]),
    # punch and fallocate
    "punch_fallocate": ("always", [OPEN_T, (0, "fallocate", 3, 0, 0, 4 * MiB), (0, "pread", 3, 0, PG),
                                   (0, "fallocate", 3, PUNCH | KEEP, HP, HP),
                                   (0, "fallocate", 3, PUNCH | KEEP, 0, MiB), (0, "pwrite", 3, 0, PG)]),
    # tmpfs full: a write falls back to 4 KiB pages when 512 blocks are not free
    "tmpfs_full": ("always", [OPEN_T, (0, "pwrite", 3, 0, 11 * HP), (0, "pwrite", 3, 11 * HP, 2 * HP),
                              (0, "open", "/t/g", RWC), (0, "pwrite", 4, 0, 8 * PG)]),
    # unlink and close of a mapped file: it lives until munmap
    "unlink_mapped": ("always", [OPEN_T, (0, "pwrite", 3, 0, 2 * HP), (0, "mmap", 3, 2 * HP, RW, True, 0),
                                 (0, "touch", 0, 0, 2 * HP, True), (0, "close", 3), (0, "unlink", "/t/f"),
                                 (0, "munmap", 0, 0, 2 * HP)]),
    # force and deny
    "force": ("force", [OPEN_T, (0, "pwrite", 3, 0, HP)]),
    "deny": ("deny", [OPEN_T, (0, "pwrite", 3, 0, HP)]),
    # 2013: write and read of a hole allocate; a fault splits; no huge mappings
    "2013_write_read_fault": ("2013", [OPEN_R, (0, "pwrite", 3, 0, HP), (0, "ftruncate", 3, 6 * MiB),
                                       (0, "pread", 3, 4 * MiB, PG), (0, "mmap", 3, 6 * MiB, RW, True, 0),
                                       (0, "touch", 0, 0, PG, False), (0, "touch", 0, 2 * MiB + PG, PG, True),
                                       (0, "ftruncate", 3, 5 * MiB)]),
    # 2013+mmap: faults map the huge pages with PMDs
    "2013_mmap": ("2013+mmap", [OPEN_R, (0, "ftruncate", 3, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
                                (0, "touch", 0, 0, 4 * MiB, True), (0, "fork"), (2, "touch", 0, 0, PG, False),
                                (0, "ftruncate", 3, 3 * MiB)]),
    # 2013: the last writer's close splits the last huge page and frees its pages past EOF (not
    # while another descriptor is open for writing, not the PTE-mapped ones)
    "2013_close_split": ("2013", [OPEN_R, (0, "open", "/r/f", RWC), (0, "pwrite", 3, 0, 3 * MiB + 5),
                                  (0, "close", 3), (0, "mmap", 4, 4 * MiB, RW, True, 0),
                                  (0, "touch", 0, 3 * MiB + 16 * PG, PG, False), (0, "ftruncate", 4, 3 * MiB),
                                  (0, "close", 4)]),
    # 2013+mmap: a folio a PMD maps is left whole
    "2013_mmap_close": ("2013+mmap", [OPEN_R, (0, "pwrite", 3, 0, 3 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
                                      (0, "touch", 0, 2 * MiB, PG, False), (0, "close", 3),
                                      (0, "munmap", 0, 0, 4 * MiB), (0, "open", "/r/f", os.O_WRONLY),
                                      (0, "close", 3)]),
}


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_regression(case):
    setup, ops = REGRESSIONS[case]
    run(HPair(**SETUPS[setup]), ops)


# ---- the engine's departures from Linux (FILES.md 12) -----------------------------------------------
DEVIATION_STREAMS = {
    # a second fallocate over part of a fallocated huge folio, not its first page: Linux
    # initialises the folio (a read marks it), the engine leaves it reading as a hole
    "huge_falloc_head_only": ("always", [OPEN_T, (0, "fallocate", 3, 0, 0, HP),
                                         (0, "fallocate", 3, 0, PG, PG), (0, "pread", 3, 0, PG)]),
    # a fault on a tmpfs hole: shmem_fault allocates that one page
    "memfs_fault_readaround": ("always", [(0, "open", "/r/f", RWC), (0, "ftruncate", 3, MiB),
                                          (0, "mmap", 3, MiB, RW, True, 0),
                                          (0, "touch", 0, 64 * PG, 1, False)]),
    # a read fault on a fallocated page: shmem_fault zeroes it (uptodate: a read marks it)
    "fault_ignores_falloc": ("never", [OPEN_T, (0, "fallocate", 3, 0, 0, 4 * PG),
                                       (0, "mmap", 3, 4 * PG, RW, True, 0),
                                       (0, "touch", 0, 0, 1, False), (0, "pread", 3, 0, 4 * PG)]),
    # a mapped ramfs page counts in RssFile (mm_counter_file: not swap-backed)
    "ramfs_rss_shmem": ("never", [OPEN_R, (0, "pwrite", 3, 0, PG), (0, "mmap", 3, PG, RW, True, 0),
                                  (0, "touch", 0, 0, 1, False)]),
    # punching a hole keeps the private copies (unmap_mapping_range with even_cows 0)
    "punch_zaps_cows": ("never", [OPEN_T, (0, "pwrite", 3, 0, 4 * PG), (0, "mmap", 3, 4 * PG, RW, False, 0),
                                  (0, "touch", 0, 0, 4 * PG, True),
                                  (0, "fallocate", 3, PUNCH | KEEP, 0, 4 * PG)]),
}
SETUPS["never"] = dict(mounts=(tmpfs("never"), RAMFS))


def test_every_mapping_deviation_has_a_stream():
    assert set(DEVIATION_STREAMS) == set(MAPPING_DEVIATIONS) and MAPPING_DEVIATIONS <= set(DEVIATIONS)


@pytest.mark.parametrize("case", sorted(DEVIATION_STREAMS))
def test_deviation_stream_agrees_with_the_engine_model(case):
    setup, ops = DEVIATION_STREAMS[case]
    run(HPair(**SETUPS[setup]), ops)


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                                               reason=f"engine bug: {DEVIATIONS[case]}"))
    if case in ENGINE else case for case in sorted(DEVIATION_STREAMS)])
def test_deviation_stream_against_linux(case):
    setup, ops = DEVIATION_STREAMS[case]
    run(HPair(**SETUPS[setup], deviations=ENGINE - {case}), ops)


def test_errno_paths():
    """mmap's checks, munmap/madvise/mprotect errors and a touch outside every VMA."""
    run(HPair(**SETUPS["always"]), [OPEN_T, (0, "open", "/t/f", os.O_RDONLY),
                                    (0, "mmap", 4, HP, RW, True, 0), (0, "mmap", 3, HP, RW, True, 100),
                                    (0, "mmap", 3, 0, RW, True, 0), (0, "mmap", 4, HP, RW, False, 0),
                                    (0, "munmap", 0, 100, PG), (0, "madvise", 0, HP, 4 * HP, MADV_HUGEPAGE),
                                    (0, "touch", 0, 0, PG, True), (0, "mprotect", 0, 0, 4 * HP),
                                    (0, "touch", 0, 0, PG, True)])


# ---- khugepaged and MADV_COLLAPSE over page-cache ranges (FILES.md 15) ---------------------------
MS = 1_000_000                            # ns
KH = {"scan_sleep_millisecs": 100}        # a wakeup every 100 ms of simulated time
KH_WEIGHTS = {"open": 1, "close": 1, "pread": 2, "pwrite": 6, "ftruncate": 1, "fallocate": 2,
              "unlink": 0, "nanosleep": 1, "mmap": 4, "touch": 12, "munmap": 1, "mprotect": 1,
              "madvise": 8, "fork": 1, "prctl": 0, "advance": 5}
KH_ADVICES = (MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTNEED, MADV_COLLAPSE, MADV_COLLAPSE,
              MADV_COLLAPSE)
KH_ADVANCES = (30 * MS, 120 * MS, 250 * MS)
KH_SETUPS = {
    "always": dict(mounts=(tmpfs("always", 40 * MiB), RAMFS)),
    "advise": dict(mounts=(tmpfs("advise", 40 * MiB), RAMFS)),
    "never": dict(mounts=(tmpfs("never", 40 * MiB), RAMFS)),
    "force": dict(mounts=(tmpfs("never", 40 * MiB), RAMFS), shmem_enabled="force"),
    "deny": dict(mounts=(tmpfs("always", 40 * MiB), RAMFS), shmem_enabled="deny"),
    "full": dict(mounts=(tmpfs("always", 14 * MiB), RAMFS)),
    "2013+mmap": dict(mounts=(RAMFS, tmpfs("never")), hpc="2013+mmap"),
}


def kh_ops(rng, mounts, n, weights=KH_WEIGHTS):
    """Streams for khugepaged and MADV_COLLAPSE: files mostly larger than their mappings,
    small writes and faults that leave 4 KiB pages to coalesce, MADV_COLLAPSE over aligned and
    unaligned ranges, and time passing (khugepaged's wakeups)."""
    paths = [f"{mounts[0][0]}/f0", f"{mounts[0][0]}/f1", f"{mounts[1][0]}/f2"]
    kinds = [k for k, w in weights.items() for _ in range(w)]
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]  # noqa: E731
    ops = [(k, "open", paths[i], RWC) for k in range(2) for i in range(2)]
    ops += [(k, "ftruncate", fd, int(rng.choice((6 * MiB, 8 * MiB, 12 * MiB)))) for k in range(2) for fd in (3, 4)]
    for _ in range(n):
        k, kind = int(rng.integers(0, 4)), pick(kinds)
        if kind == "open":
            ops.append((k, kind, pick(paths), RWC))
        elif kind == "close":
            ops.append((k, kind, pick((3, 4, 5))))
        elif kind in ("pread", "pwrite"):
            ops.append((k, kind, pick((3, 3, 4, 5)), int(rng.integers(0, 3072)) * PG,
                        pick((PG, 4 * PG, 64 * PG, 100))))
        elif kind == "ftruncate":
            ops.append((k, kind, pick((3, 4)), pick((3 * MiB + PG, 8 * MiB, 12 * MiB))))
        elif kind == "fallocate":
            ops.append((k, kind, pick((3, 4)), pick((KEEP, PUNCH | KEEP)),
                        int(rng.integers(0, 3072)) * PG, pick((PG, 16 * PG, HP))))
        elif kind == "nanosleep":
            ops.append((k, kind, int(rng.integers(0, 100_000))))
        elif kind == "mmap":
            ops.append((k, kind, pick((3, 3, 4, 5)), pick((2 * HP, 4 * HP, HP, 2 * HP)),
                        pick((RW, RW, mmcore.PROT_READ)), bool(rng.integers(0, 5)),
                        pick((0, 0, HP, PG))))
        elif kind == "touch":
            ops.append((k, kind, int(rng.integers(0, 4)), int(rng.integers(0, 2048)) * PG,
                        pick((1, PG, 16 * PG, 64 * PG, 256 * PG)), not rng.integers(0, 3)))
        elif kind in ("munmap", "mprotect"):
            ops.append((k, kind, int(rng.integers(0, 4)), pick(PAGES) * PG, pick(CUT_LENGTHS)))
        elif kind == "madvise":
            ops.append((k, kind, int(rng.integers(0, 4)), pick((0, 0, 512, 700)) * PG,
                        pick((HP, 2 * HP, 4 * HP, 8 * HP, 16 * PG)), pick(KH_ADVICES)))
        elif kind == "advance":
            ops.append((k, kind, pick(KH_ADVANCES)))
        else:
            ops.append((k, kind))
    return ops


KH_RANDOM_SETUPS = ("always", "advise", "never", "force", "deny", "full", "2013+mmap")


@pytest.mark.parametrize("setup,seed", [(s, seed) for s in KH_RANDOM_SETUPS for seed in range(6)])
def test_khugepaged_streams_agree(setup, seed):
    """khugepaged on (wakeups every 100 ms) and MADV_COLLAPSE among the ops: both sides agree on
    everything compared plus pages_collapsed, full_scans, khugepaged's busy time and next wakeup,
    thp_collapse_alloc[_failed] and thp_scan_exceed_none_pte."""
    rng = np.random.default_rng(3000 + seed)
    kw = KH_SETUPS[setup]
    run(HPair(**kw, khugepaged=KH), kh_ops(rng, kw["mounts"], 80))


def test_khugepaged_streams_collapse():
    """The streams above do what they are for: fresh collapses by khugepaged and by
    MADV_COLLAPSE (huge=advise), passes over ranges already huge (huge=always: the mmap of a
    file VMA enrols the mm), PMDs installed."""
    totals = dict.fromkeys(("pages_collapsed", "thp_collapse_alloc", "full_scans"), 0)
    for setup, seed in [(s, k) for s in ("advise", "always") for k in range(3)]:
        rng = np.random.default_rng(3000 + seed)
        kw = KH_SETUPS[setup]
        pair = run(HPair(**kw, khugepaged=KH), kh_ops(rng, kw["mounts"], 80), check_every=80)
        kh, v = pair.m.khugepaged(), pair.m.vmstat()
        for k in totals:
            totals[k] += kh[k] if k in kh else v[k]
    assert totals["pages_collapsed"] > 0 and totals["thp_collapse_alloc"] > 3 and totals["full_scans"] > 3


KH_LIMITS = {"scan_sleep_millisecs": 100, "max_ptes_none": 256, "pages_to_scan": 1024}
KH_STREAMS = {
    # huge=advise: small pages written; MADV_HUGEPAGE makes the VMA khugepaged's; it collapses the
    # first range (the second is past EOF), retracts the emptied PTE table, and the next fault
    # maps the folio with a PMD
    "advise_collapse": ("advise", KH, [
        OPEN_T, (0, "ftruncate", 3, 3 * MiB), (0, "pwrite", 3, 0, 300 * PG),
        (0, "mmap", 3, 4 * MiB, RW, True, 0), (0, "touch", 0, 0, 16 * PG, False),
        (0, "madvise", 0, 0, 4 * MiB, MADV_HUGEPAGE), (0, "advance", 150 * MS),
        (0, "touch", 0, 0, PG, True), (0, "advance", 250 * MS)]),
    # a range a PMD maps already counts in pages_collapsed on every pass (a 6.18 host does)
    "already_huge_counts": ("always", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
        (0, "touch", 0, 0, 4 * MiB, False), (0, "advance", 250 * MS), (0, "advance", 250 * MS)]),
    # a huge folio mapped by PTEs (VM_NOHUGEPAGE at the fault): once the VMA may be huge again,
    # khugepaged frees the PTE table (collapse_pte_mapped_thp) and the next fault maps a PMD
    "pte_mapped_folio": ("always", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 2 * MiB), (0, "mmap", 3, 2 * MiB, RW, True, 0),
        (0, "madvise", 0, 0, HP, MADV_NOHUGEPAGE), (0, "touch", 0, 0, 8 * PG, False),
        (0, "madvise", 0, 0, HP, MADV_HUGEPAGE), (0, "advance", 150 * MS),
        (0, "touch", 0, 0, PG, False)]),
    # max_ptes_none and pages_to_scan lowered: sparse ranges counted in thp_scan_exceed_none_pte,
    # a pass spread over wakeups
    "limits": ("advise", KH_LIMITS, [
        OPEN_T, (0, "ftruncate", 3, 8 * MiB), (0, "pwrite", 3, 0, 100 * PG),
        (0, "pwrite", 3, 2 * MiB, 300 * PG), (0, "mmap", 3, 8 * MiB, RW, True, 0),
        (0, "madvise", 0, 0, 8 * MiB, MADV_HUGEPAGE), (0, "touch", 0, 0, PG, False),
        (0, "advance", 120 * MS), (0, "advance", 120 * MS), (0, "advance", 120 * MS)]),
    # MADV_COLLAPSE ignores huge=: a shared writable mapping gets a writable PMD at once; a private
    # read-only one a read-only PMD; another task's PTE table of the range is retracted
    "madv_collapse_maps": ("never", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
        (0, "touch", 0, 0, 32 * PG, False), (1, "open", "/t/f", os.O_RDONLY),
        (1, "mmap", 3, 4 * MiB, mmcore.PROT_READ, False, 0), (1, "touch", 1, HP, 8 * PG, False),
        (0, "madvise", 0, 0, 4 * MiB, MADV_COLLAPSE), (0, "touch", 0, 0, 4 * MiB, True),
        (1, "madvise", 1, 0, 4 * MiB, MADV_COLLAPSE), (1, "touch", 1, 0, 4 * MiB, False)]),
    # MADV_COLLAPSE's errors: a VM_NOHUGEPAGE VMA (EINVAL), a hole after the mapping (ENOMEM),
    # a misaligned file offset (EINVAL), a range past EOF (EINVAL), no aligned range (0)
    "madv_collapse_errors": ("never", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 3 * MiB), (0, "mmap", 3, 2 * MiB, RW, True, 0),
        (0, "touch", 0, 0, PG, False), (0, "madvise", 0, 0, 4 * MiB, MADV_COLLAPSE),
        (0, "madvise", 0, 0, HP, MADV_NOHUGEPAGE), (0, "madvise", 0, 0, HP, MADV_COLLAPSE),
        (0, "mmap", 3, 4 * MiB, RW, True, PG), (0, "madvise", 1, 0, 4 * MiB, MADV_COLLAPSE),
        (0, "mmap", 3, 4 * MiB, RW, True, 0), (0, "madvise", 2, 0, 4 * MiB, MADV_COLLAPSE),
        (0, "madvise", 2, PG, HP, MADV_COLLAPSE)]),
    # shmem_enabled=deny refuses even MADV_COLLAPSE; khugepaged never collapses
    "deny": ("deny", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 2 * MiB), (0, "mmap", 3, 2 * MiB, RW, True, 0),
        (0, "touch", 0, 0, PG, False), (0, "madvise", 0, 0, HP, MADV_COLLAPSE),
        (0, "advance", 150 * MS)]),
    # a private mapping written to, a fork of an enrolled address space, the prctl
    "private_fork_prctl": ("advise", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, False, 0),
        (0, "madvise", 0, 0, 4 * MiB, MADV_HUGEPAGE), (0, "touch", 0, 0, 4 * PG, True),
        (0, "touch", 0, HP, 4 * PG, False), (0, "fork"), (2, "touch", 0, HP + 64 * PG, PG, False),
        (0, "advance", 150 * MS), (2, "prctl"), (0, "advance", 150 * MS),
        (2, "touch", 0, HP, PG, False), (0, "touch", 0, HP, PG, False)]),
    # the 2013 series plus mmap: ramfs pages faulted in one by one through a misaligned mapping,
    # coalesced by khugepaged for an aligned one (nothing charged: ramfs has no limit)
    "ramfs_2013_mmap": ("2013+mmap", KH, [
        OPEN_R, (0, "ftruncate", 3, 4 * MiB), (0, "mmap", 3, 2 * MiB, RW, True, PG),
        (0, "touch", 0, 0, 64 * PG, True), (0, "mmap", 3, 4 * MiB, RW, True, 0),
        (0, "touch", 1, 3 * MiB, PG, False), (0, "advance", 150 * MS), (0, "touch", 1, 0, PG, False),
        (0, "madvise", 1, 0, 4 * MiB, MADV_COLLAPSE)]),
}


@pytest.mark.parametrize("case", sorted(KH_STREAMS))
def test_khugepaged_regression(case):
    setup, kh, ops = KH_STREAMS[case]
    run(HPair(**KH_SETUPS[setup], khugepaged=kh), ops, check_every=1)


# ---- the engine's departures from Linux in khugepaged's and MADV_COLLAPSE's page-cache work --------
# (FILES.md 15). Each stream agrees with the reference reproducing the engine and, strict xfail,
# disagrees with the reference doing what Linux does.
KH_DEVIATION_STREAMS = {
    # Linux enrols the mm at the mmap of a VMA khugepaged may collapse (__mmap_new_vma ->
    # khugepaged_enter_vma): two wakeups scan the two empty ranges (thp_scan_exceed_none_pte 4,
    # full_scans 2); the engine waits for a fault and counts nothing
    "khugepaged_enrols_on_fault": ("always", KH, [
        OPEN_T, (0, "ftruncate", 3, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
        (0, "advance", 150 * MS)]),
    # a 16 MiB VMA huge=advise does not allow, next to a 2 MiB one it does: Linux skips the first
    # (1 of progress), a wakeup's 4096 reach the end (full_scans 2 after two wakeups); the engine
    # spends 8 x 512 on its ranges and ends a pass every other wakeup (full_scans 1)
    "khugepaged_vma_check_per_range": ("advise", KH, [
        OPEN_T, (0, "ftruncate", 3, 18 * MiB), (0, "mmap", 3, 16 * MiB, RW, True, 0),
        (0, "mmap", 3, 2 * MiB, RW, True, 16 * MiB), (0, "madvise", 1, 0, HP, MADV_HUGEPAGE),
        (0, "advance", 150 * MS)]),
    # MADV_COLLAPSE of a range with nothing cached: Linux allocates, finds the extent empty
    # (SCAN_TRUNCATED) and gives EINVAL; the engine makes a zero-filled folio and returns 0
    "collapse_fills_empty_range": ("never", KH, [
        OPEN_T, (0, "ftruncate", 3, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, True, 0),
        (0, "touch", 0, HP, 1, False), (0, "madvise", 0, 0, HP, MADV_COLLAPSE)]),
    # 200 pages of a range on a 400-block tmpfs (312 holes, 200 blocks free): Linux allocates
    # (thp_collapse_alloc 1), unmaps the 16 mapped pages, then shmem_charge fails; the engine
    # fails before anything (the pages stay mapped)
    "collapse_charge_first": ("tiny", KH, [
        OPEN_T, (0, "ftruncate", 3, 2 * MiB), (0, "pwrite", 3, 0, 200 * PG),
        (0, "mmap", 3, 2 * MiB, RW, True, 0), (0, "touch", 0, 0, 16 * PG, False),
        (0, "madvise", 0, 0, HP, MADV_COLLAPSE)]),
    # a private copy in the caller's PTE table: collapse_pte_mapped_thp fails (SCAN_FAIL, EINVAL
    # in Linux); the engine returns 0 with the range still mapped by PTEs
    "collapse_ignores_own_pmd": ("never", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 2 * MiB), (0, "mmap", 3, 2 * MiB, RW, False, 0),
        (0, "touch", 0, 0, 1, True), (0, "madvise", 0, 0, HP, MADV_COLLAPSE)]),
    # ... and an address space that never faulted has no PMD table: SCAN_PMD_NULL, EINVAL
    "collapse_ignores_own_pmd/no_pmd_table": ("never", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 2 * MiB), (0, "mmap", 3, 2 * MiB, RW, True, 0),
        (0, "madvise", 0, 0, HP, MADV_COLLAPSE)]),
    # the first range cannot be charged (SCAN_FAIL): madvise_collapse stops there in Linux; the
    # engine collapses the second range too
    "madv_collapse_goes_on": ("small", KH, [
        OPEN_T, (0, "ftruncate", 3, 4 * MiB), (0, "pwrite", 3, 0, PG), (0, "pwrite", 3, 2 * MiB, 2 * MiB),
        (0, "mmap", 3, 4 * MiB, RW, True, 0), (0, "touch", 0, 0, 1, False),
        (0, "madvise", 0, 0, 2 * HP, MADV_COLLAPSE)]),
    # a private mapping with an anon_vma (a private copy in its second range) keeps its emptied
    # first-range PTE table in Linux, so its next fault there maps 4 KiB; the engine frees the
    # table (and charges its TLB flush) and the fault maps a PMD
    "retract_ignores_anon_vma": ("never", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 4 * MiB), (0, "mmap", 3, 4 * MiB, RW, False, 0),
        (0, "touch", 0, HP, 1, True), (0, "touch", 0, 0, 16 * PG, False),
        (1, "open", "/t/f", RWC), (1, "mmap", 3, 2 * MiB, RW, True, 0), (1, "touch", 1, 0, 1, False),
        (1, "madvise", 1, 0, HP, MADV_COLLAPSE), (0, "touch", 0, 32 * PG, 1, False)]),
    # collapse_file marks a tmpfs folio dirty (smaps: Private_Dirty 2048 kB); the engine's is clean
    "collapse_clean_folio": ("never", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 2 * MiB), (0, "mmap", 3, 2 * MiB, RW, True, 0),
        (0, "touch", 0, 0, 1, False), (0, "madvise", 0, 0, HP, MADV_COLLAPSE)]),
    # THP enabled=never with shmem_enabled=advise: 6.12+ runs khugepaged for tmpfs
    # (hugepage_pmd_enabled) and collapses the advised range; the engine's stays asleep
    "khugepaged_off_with_thp_never": ("shmem_advise", KH, [
        OPEN_T, (0, "pwrite", 3, 0, 64 * PG), (0, "ftruncate", 3, 2 * MiB),
        (0, "mmap", 3, 2 * MiB, RW, True, 0), (0, "madvise", 0, 0, HP, MADV_HUGEPAGE),
        (0, "advance", 150 * MS)]),
}
KH_SETUPS.update({
    "tiny": dict(mounts=(tmpfs("never", 400 * PG), RAMFS)),
    "small": dict(mounts=(tmpfs("never", 800 * PG), RAMFS)),
    "shmem_advise": dict(mounts=(tmpfs("advise", 40 * MiB), RAMFS), shmem_enabled="advise",
                         thp="never"),
})


def test_every_collapse_deviation_has_a_stream():
    assert {c.split("/")[0] for c in KH_DEVIATION_STREAMS} == set(COLLAPSE_DEVIATIONS) >= KH_ENGINE


@pytest.mark.parametrize("case", sorted(KH_DEVIATION_STREAMS))
def test_collapse_deviation_stream_agrees_with_the_engine_model(case):
    setup, kh, ops = KH_DEVIATION_STREAMS[case]
    run(HPair(**KH_SETUPS[setup], khugepaged=kh), ops, check_every=1)


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.xfail(
        strict=True, raises=AssertionError,
        reason=f"engine bug: {COLLAPSE_DEVIATIONS[case.split('/')[0]]}"))
    if case.split("/")[0] in KH_ENGINE else case for case in sorted(KH_DEVIATION_STREAMS)])
def test_collapse_deviation_stream_against_linux(case):
    setup, kh, ops = KH_DEVIATION_STREAMS[case]
    run(HPair(**KH_SETUPS[setup], khugepaged=kh, deviations=ENGINE | KH_ENGINE - {case.split("/")[0]}),
        ops, check_every=1)


def test_collapse_index_room():
    """Five mostly empty ranges collapsed by one MADV_COLLAPSE with the page-cache index at its
    initial 4096 slots: Linux collapses all five (0). The engine grows the index for the holes
    the call may fill before it starts (it once failed the fourth and fifth ranges: EINVAL)."""
    ops = [OPEN_T, (0, "ftruncate", 3, 10 * MiB), (0, "mmap", 3, 10 * MiB, RW, True, 0)]
    ops += [(0, "touch", 0, i * HP, 1, False) for i in range(5)]
    ops += [(0, "madvise", 0, 0, 5 * HP, MADV_COLLAPSE)]
    run(HPair(**KH_SETUPS["never"], khugepaged=KH, pc_room=False), ops, check_every=1)
