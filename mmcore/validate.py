"""Host-kernel fidelity check: small scenarios run on the Linux host and in the engine, compared.

Each scenario runs twice: on the host, in a fresh child process (so a ``prctl`` or a page-table
count of one scenario cannot leak into another, or into the caller), through ``ctypes`` calls to
``mmap``, ``madvise`` and ``prctl``; and in a ``Machine`` with the kernel profile closest to the
host's kernel and the host's THP settings (``enabled`` for PMD-sized pages, ``defrag``,
``use_zero_page``). What is compared is what the kernel shows: a mapping's ``Rss`` and
``AnonHugePages`` in ``/proc/PID/smaps``, ``VmPTE`` and ``THP_enabled`` in ``/proc/PID/status``,
the ``/proc/vmstat`` THP counters, zero-page mappings read from ``/proc/PID/pagemap`` and
``/proc/kpageflags``, ``PR_GET_THP_DISABLE`` and ``/proc/PID/oom_score``.

The tmpfs group (``TMPFS_SCENARIOS``) checks the huge page cache: the child mounts a 64 MiB
tmpfs with ``huge=always``, ``within_size`` or ``never`` on a temporary directory, in a mount
namespace of its own (so the mount goes with the child however it ends; it is unmounted in any
case), writes, maps, truncates or collapses one file, and reports the mapping's smaps
``Rss``/``ShmemPmdMapped``/``Anonymous``, the mount's statfs usage and the ``/proc/meminfo``
(``ShmemHugePages``, ...) and ``/proc/vmstat`` (``thp_file_alloc``, ...) deltas; the engine
mounts a tmpfs with the same option on a machine with the host's profile and ``shmem_enabled``.

The file group (``file-readahead``) checks readahead and mlock on a disk filesystem: the child
writes a file in a directory on one (``/var/tmp`` by default), evicts it with
``POSIX_FADV_DONTNEED``, maps it shared and faults single pages in at the places a read-around
window and its PG_readahead marks fall for the device's ``read_ahead_kb``, counting the file's
cached pages after each fault (``cachestat``: cached plus evicted, since a host may reclaim
cold page cache at any moment; ``mincore`` before 6.5), running again while some were evicted;
then it mlocks and munlocks the first window and reports the ``unevictable_pgs_*`` deltas.
The engine runs the same on an ext4 mount with the same ``read_ahead_kb``.

Every host region sits in a ``PROT_NONE`` reservation at a 2 MiB-aligned address, so it is one
VMA that no neighbour merges into. The host side needs Linux on x86-64 with ``/proc``; a scenario
whose needs the host lacks (transparent huge pages, shmem THP, a capability, a ``prctl`` option,
a tmpfs it may mount) is reported as skipped, with the reason. Host allocations stay small: at
most 8 MiB written per region scenario, 6 MiB per tmpfs scenario, 48 MiB over all the OOM
scenario's children.

>>> report = run()                       # doctest: +SKIP
>>> print(report.table())                # doctest: +SKIP
>>> report.ok                            # doctest: +SKIP

The host side of this module imports nothing but the standard library: each host scenario runs
this file as a script in a child interpreter (``python -I validate.py --child ...``).
"""
from __future__ import annotations

import errno
import json
import os
import platform
import re
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

HPAGE = 2 << 20                  # HPAGE_PMD_SIZE on x86-64
PAGE = 4096
MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE = 14, 15, 25
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_THP_DISABLE_EXCEPT_ADVISED = 1 << 1
PR_SET_PDEATHSIG = 1
PROT_NONE, PROT_READ, PROT_WRITE = 0x0, 0x1, 0x2          # Linux x86-64 values
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE = 0x01, 0x02, 0x10, 0x20, 0x4000
CLONE_NEWNS, MS_REC, MS_PRIVATE, MNT_DETACH = 0x00020000, 0x4000, 1 << 18, 2
SYS_CACHESTAT = 451                       # the same number on every architecture (6.5+)
KPF_THP, KPF_ZERO_PAGE = 22, 24          # include/uapi/linux/kernel-page-flags.h
CAP_SYS_ADMIN, CAP_SYS_RESOURCE = 21, 24
THP_SYSFS = "/sys/kernel/mm/transparent_hugepage"
SHMEM_HUGE = ("never", "always", "within_size", "advise", "deny", "force")   # shmem_enabled
CHILD_TIMEOUT_S = 30
SYSFS_LOCK = "/tmp/mmcore-validate-sysfs.lock"   # held while a child changes a host-wide knob
HOST_LOCK = "/tmp/mmcore-validate-host.lock"     # held while a scenario runs on the host


# ---- the host: what it is and what it offers ------------------------------------------------

@dataclass
class HostInfo:
    """What the check needs to know of the host before running anything on it."""
    system: str                          # sys.platform
    machine: str                         # platform.machine()
    release: str                         # the kernel release (uname -r)
    proc: bool                           # /proc/self/smaps readable
    root: bool                           # effective uid 0
    cap_eff: int = 0                     # CapEff of /proc/self/status (a root in a container may
                                         # lack some capabilities)
    thp: dict[str, str] | None = None    # enabled (PMD size), defrag, use_zero_page; None: no THP
    mthp_other: list[str] = field(default_factory=list)   # other mTHP sizes not "never"
    shmem_thp: str | None = None         # shmem_enabled (what overrides every tmpfs's huge=);
                                         # None: no shmem THP in this kernel
    mem_total_kb: int | None = None
    swap_total_kb: int | None = None

    @property
    def linux(self) -> bool:
        return self.system.startswith("linux")

    def capable(self, cap: int) -> bool:
        return bool(self.cap_eff >> cap & 1)

    @property
    def kernel(self) -> str:
        """``major.minor`` of the host kernel (what the OOM arithmetic follows)."""
        m = re.match(r"(\d+)\.(\d+)", self.release)
        return f"{m.group(1)}.{m.group(2)}" if m else ""


def _sysfs_choice(text: str) -> str:
    """The bracketed choice of a sysfs selector such as ``always [madvise] never``."""
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else text.strip()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def probe_thp(root: str = THP_SYSFS) -> tuple[dict[str, str] | None, list[str]]:
    """The host's THP settings for PMD-sized pages (``enabled`` as the 2048 kB size resolves its
    ``inherit``), ``defrag`` and ``use_zero_page``; and the other mTHP sizes that are not
    ``never`` (the engine models PMD-sized THPs only). ``(None, [])`` without THP support."""
    enabled = _read(os.path.join(root, "enabled"))
    if enabled is None:
        return None, []
    out = {"enabled": _sysfs_choice(enabled)}
    pmd = _read(os.path.join(root, f"hugepages-{HPAGE >> 10}kB", "enabled"))
    if pmd is not None and _sysfs_choice(pmd) != "inherit":
        out["enabled"] = _sysfs_choice(pmd)
    out["defrag"] = _sysfs_choice(_read(os.path.join(root, "defrag")) or "madvise")
    out["use_zero_page"] = (_read(os.path.join(root, "use_zero_page")) or "1").strip()
    other = []
    try:
        sizes = sorted(d for d in os.listdir(root) if d.startswith("hugepages-"))
    except OSError:
        sizes = []
    for d in sizes:
        if d == f"hugepages-{HPAGE >> 10}kB":
            continue
        v = _sysfs_choice(_read(os.path.join(root, d, "enabled")) or "never")
        if v == "inherit":
            v = _sysfs_choice(enabled)
        if v != "never":
            other.append(f"{d.removeprefix('hugepages-')}={v}")
    return out, other


def probe_shmem_thp(root: str = THP_SYSFS) -> str | None:
    """The host's ``shmem_enabled`` (``deny`` and ``force`` override a tmpfs mount's ``huge=``;
    the other choices concern the internal shm mount only); None when the kernel has no shmem
    THP (before 4.8, or without CONFIG_TRANSPARENT_HUGEPAGE)."""
    text = _read(os.path.join(root, "shmem_enabled"))
    return None if text is None else _sysfs_choice(text)


def probe_host() -> HostInfo:
    """Probe the host (nothing is changed on it)."""
    info = HostInfo(system=sys.platform, machine=platform.machine(), release=platform.release(),
                    proc=os.access("/proc/self/smaps", os.R_OK),
                    root=hasattr(os, "geteuid") and os.geteuid() == 0)
    if not info.linux:
        return info
    info.thp, info.mthp_other = probe_thp()
    info.shmem_thp = probe_shmem_thp()
    m = re.search(r"^CapEff:\s+([0-9a-f]+)", _read("/proc/self/status") or "", re.M)
    info.cap_eff = int(m.group(1), 16) if m else 0
    mi = _read("/proc/meminfo") or ""
    for key, attr in (("MemTotal", "mem_total_kb"), ("SwapTotal", "swap_total_kb")):
        m = re.search(rf"^{key}:\s+(\d+) kB", mi, re.M)
        if m:
            setattr(info, attr, int(m.group(1)))
    return info


def closest_profile(release: str) -> str:
    """The engine's kernel profile closest to a host release: the newest profile not newer
    than it (the oldest profile for an older host)."""
    from .config import PROFILES
    m = re.match(r"(\d+)\.(\d+)", release)
    v = int(m.group(1)) * 100 + int(m.group(2)) if m else 10 ** 6
    older = [name for name, p in PROFILES.items() if p.version <= v]
    if not older:
        return min(PROFILES, key=lambda n: PROFILES[n].version)
    return max(older, key=lambda n: PROFILES[n].version)


def engine_config(host: HostInfo, memory: str = "256MiB"):
    """The engine's ``Config`` for a host: its closest profile and its THP settings (a
    ``defrag`` mode the profile lacks keeps the profile's default; ``shmem_enabled`` is the
    host's where the profile has tmpfs huge pages, 4.8+)."""
    from .config import PROFILES, Config
    kernel = closest_profile(host.release)
    thp = host.thp or {"enabled": "never"}
    defrag = thp.get("defrag")
    if defrag not in PROFILES[kernel].defrag_modes:
        defrag = None
    shmem = host.shmem_thp if host.shmem_thp in SHMEM_HUGE else "never"
    if PROFILES[kernel].version < 408:
        shmem = "never"
    return Config(memory=memory, kernel=kernel, thp_enabled=thp["enabled"], thp_defrag=defrag,
                  thp_use_zero_page=thp.get("use_zero_page", "1") != "0", shmem_enabled=shmem)


# ---- what is compared ---------------------------------------------------------------------

@dataclass
class Check:
    """One observable of one scenario, on the host and in the engine.

    ``tol`` is the allowed range of host minus engine: ``(0, 0)`` for exact equality.
    """
    scenario: str
    observable: str
    unit: str
    host: Any = None
    engine: Any = None
    tol: tuple[int, int] = (0, 0)
    skipped: str | None = None
    note: str = ""

    @property
    def matches(self) -> bool:
        if self.skipped is not None:
            return True
        if isinstance(self.host, int) and isinstance(self.engine, int):
            return self.tol[0] <= self.host - self.engine <= self.tol[1]
        return self.host == self.engine and self.host is not None

    @property
    def result(self) -> str:
        if self.skipped is not None:
            return f"skipped: {self.skipped}"
        return "match" if self.matches else "MISMATCH"

    @property
    def tolerance(self) -> str:
        lo, hi = self.tol
        if lo == hi == 0:
            return "exact"
        if lo == -hi:
            return f"±{hi}"
        return f"{lo:+d}..{hi:+d}"


@dataclass(frozen=True)
class Region:
    """One host/engine region scenario: an anonymous private mapping of ``length`` bytes at a
    2 MiB-aligned address, ``advice`` (or none), a byte written (or read) every ``stride``."""
    length: int
    advice: int | None = None
    write: bool = True
    stride: int = PAGE
    prctl: tuple[int, int] | None = None      # PR_SET_THP_DISABLE (arg2, arg3), set first
    # khugepaged/max_ptes_none while the scenario runs (a host-wide knob: set, then restored), and
    # drop_caches 2 after the touches (drop_slab runs the deferred-split shrinker, 6.12+: its
    # underused-THP check); Rss, AnonHugePages and the split counters are then read after it
    max_ptes_none: int | None = None
    drop_slab: bool = False
    # after the touches: MADV_HUGEPAGE and MADV_COLLAPSE over the region (``collapse_first``),
    # one byte written at its start, MADV_COLLAPSE again (``collapse_after_write``); smaps is read
    # after that (the anon_vma test: a region only read has none, 6.1+)
    collapse: bool = False


@dataclass(frozen=True)
class Observable:
    key: str                        # the key in both sides' result dicts
    label: str                      # the kernel's name, where it shows
    unit: str = "kB"
    tol: tuple[int, int] = (0, 0)
    needs_pfns: bool = False        # pagemap PFNs: CAP_SYS_ADMIN
    system_wide: bool = False       # a /proc/vmstat counter: other processes add to it
    gauge: bool = False             # (system-wide) a /proc/meminfo level: others move it either way
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    region: Region
    observables: tuple[Observable, ...]
    needs_thp: bool = False


_PTE_TOL = (-8, 8)
_PTE_NOTE = ("the PUD and PMD tables over the region may exist already on the host (its other "
             "mappings), never in the engine's fresh mm: up to 2 tables")
_SYSTEM_WIDE = (0, 2)
SYSTEM_WIDE_RUNS = 3
_SYSTEM_NOTE = (f"system-wide counters: other processes' faults may add to the host's delta (a "
                f"value above the tolerance is measured again, the least of {SYSTEM_WIDE_RUNS} "
                f"runs counts)")

RSS = Observable("Rss", "smaps Rss")
AHP = Observable("AnonHugePages", "smaps AnonHugePages")
PTE = Observable("VmPTE", "status VmPTE delta", tol=_PTE_TOL, note=_PTE_NOTE)
FAULT_ALLOC = Observable("thp_fault_alloc", "vmstat thp_fault_alloc delta", "", _SYSTEM_WIDE,
                         system_wide=True, note=_SYSTEM_NOTE)
FAULT_FALLBACK = Observable("thp_fault_fallback", "vmstat thp_fault_fallback delta", "",
                            _SYSTEM_WIDE, system_wide=True, note=_SYSTEM_NOTE)
THP_ENABLED = Observable("THP_enabled", "status THP_enabled", "")
PRCTL_GET = Observable("prctl_get", "prctl PR_GET_THP_DISABLE", "")
HUGE_ZERO = Observable("huge_zero_pmds", "pagemap huge zero PMDs", "", needs_pfns=True,
                       note="2 MiB ranges mapped by the huge zero page (pagemap + kpageflags)")
ZERO_PTES = Observable("zero_ptes", "pagemap zero-page PTEs", "", needs_pfns=True,
                       note="4 KiB pages mapped to the zero page (pagemap + kpageflags)")
_SHRINK_NOTE = (f"system-wide counters: drop_caches 2 runs the shrinker over every process's "
                f"THPs (one drop before the touches takes what others hold underused already; "
                f"a value above the tolerance is measured again, the least of "
                f"{SYSTEM_WIDE_RUNS} runs counts)")
SPLIT_KEYS = ("thp_underused_split_page", "thp_split_page", "thp_split_pmd")
UNDERUSED = tuple(Observable(k, f"vmstat {k} delta", "", _SYSTEM_WIDE, system_wide=True,
                             note=_SHRINK_NOTE) for k in SPLIT_KEYS)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("madv-hugepage", "8 MiB anonymous, 2 MiB-aligned, MADV_HUGEPAGE, a write to every "
             "page", Region(8 << 20, MADV_HUGEPAGE),
             (AHP, RSS, FAULT_ALLOC, FAULT_FALLBACK, PTE), needs_thp=True),
    Scenario("madv-nohugepage", "the same with MADV_NOHUGEPAGE", Region(8 << 20, MADV_NOHUGEPAGE),
             (AHP, RSS, FAULT_ALLOC, PTE), needs_thp=True),
    Scenario("prctl-thp-disable", "PR_SET_THP_DISABLE(1, 0) in the child, then 8 MiB with "
             "MADV_HUGEPAGE written", Region(8 << 20, MADV_HUGEPAGE, prctl=(1, 0)),
             (AHP, RSS, THP_ENABLED, PRCTL_GET), needs_thp=True),
    Scenario("prctl-except-advised", "PR_SET_THP_DISABLE(1, PR_THP_DISABLE_EXCEPT_ADVISED), then "
             "8 MiB with MADV_HUGEPAGE written (6.18+)",
             Region(8 << 20, MADV_HUGEPAGE, prctl=(1, PR_THP_DISABLE_EXCEPT_ADVISED)),
             (AHP, RSS, THP_ENABLED, PRCTL_GET), needs_thp=True),
    Scenario("read-huge-zero", "8 MiB with MADV_HUGEPAGE, a read of every page (the huge zero "
             "page, or a THP with use_zero_page=0)", Region(8 << 20, MADV_HUGEPAGE, write=False),
             (RSS, AHP, HUGE_ZERO, ZERO_PTES), needs_thp=True),
    Scenario("read-zero", "8 MiB with MADV_NOHUGEPAGE, a read of every page (the 4 KiB zero page)",
             Region(8 << 20, MADV_NOHUGEPAGE, write=False), (RSS, AHP, HUGE_ZERO, ZERO_PTES)),
    Scenario("pte-growth", "16 pages written 2 MiB apart in 32 MiB with MADV_NOHUGEPAGE: one "
             "PTE table each", Region(32 << 20, MADV_NOHUGEPAGE, stride=HPAGE), (PTE, RSS, AHP)),
    Scenario("collapse-anon-vma", "2 MiB anonymous read through 4 KiB zero-page faults "
             "(MADV_NOHUGEPAGE), then MADV_HUGEPAGE and MADV_COLLAPSE (no anon_vma: EINVAL), one "
             "byte written (anon_vma_prepare), MADV_COLLAPSE again (6.1+)",
             Region(HPAGE, MADV_NOHUGEPAGE, write=False, collapse=True),
             (Observable("collapse_first", "MADV_COLLAPSE result, pages only read", "",
                         note="0 or -errno"),
              Observable("collapse_after_write", "MADV_COLLAPSE result after one write", "",
                         note="0 or -errno"), AHP), needs_thp=True),
    Scenario("underused-shrink", "8 MiB with MADV_HUGEPAGE, one page in 8 written, "
             "khugepaged/max_ptes_none 409, then drop_caches 2: the underused-THP shrinker "
             "(6.12+) splits the four THPs (448 of 512 pages zero-filled) and frees the zero "
             "pages", Region(8 << 20, MADV_HUGEPAGE, stride=8 * PAGE, max_ptes_none=409,
                            drop_slab=True),
             (RSS, AHP) + UNDERUSED, needs_thp=True),
)


# ---- the tmpfs huge page cache group -------------------------------------------------------------

@dataclass(frozen=True)
class Tmpfs:
    """One tmpfs scenario: a fresh tmpfs of ``size`` bytes mounted with ``huge=``, one file in it
    opened read-write, and ``steps`` run in order on both sides:

    - ``("write", offset, length)``: ``pwrite`` of ``length`` bytes at ``offset``
    - ``("truncate", size)``: ``ftruncate``
    - ``("map", length, offset, shared, writable)``: the file from ``offset``, ``MAP_SHARED`` or
      ``MAP_PRIVATE``, at a 2 MiB-aligned address in a ``PROT_NONE`` reservation (one mapping)
    - ``("touch", offset, length, write)``: a byte of every page of the mapping read or written
    - ``("collapse",)``: ``madvise(MADV_COLLAPSE)`` over the mapping (its result: ``madvise``)
    - ``("mark",)``: the meminfo and vmstat deltas count from here (from the mount before it)
    - ``("snap", tag)``: every value as it is now, keyed ``tag:key``

    The values, at the end and at each snap: the meminfo deltas (``ShmemHugePages``,
    ``ShmemPmdMapped``, ``Shmem``, kB), the vmstat deltas (``thp_file_*``, ``thp_split_*``,
    ``thp_collapse_alloc``), the mount's statfs ``used`` (kB) and the mapping's smaps ``Rss``,
    ``ShmemPmdMapped`` and ``Anonymous`` (kB)."""
    huge: str
    steps: tuple[tuple, ...]
    size: int = 64 << 20


@dataclass(frozen=True)
class TmpfsScenario:
    name: str
    description: str
    tmpfs: Tmpfs
    observables: tuple[Observable, ...]


TMPFS_MEMINFO = ("ShmemHugePages", "ShmemPmdMapped", "Shmem")
TMPFS_VMSTAT = ("thp_file_alloc", "thp_file_fallback", "thp_file_mapped", "thp_split_pmd",
                "thp_split_page", "thp_collapse_alloc")
TMPFS_SMAPS = ("Rss", "ShmemPmdMapped", "Anonymous")
_GAUGE_NOTE = (f"system-wide levels: other processes' shmem may move the host's delta either way "
               f"(a value outside the tolerance is measured again, the median of "
               f"{SYSTEM_WIDE_RUNS} runs counts)")
_USED_NOTE = "the tmpfs mount's (f_blocks - f_bfree) * f_bsize from statfs: what its folios occupy"


def _vmstat(key: str) -> Observable:
    return Observable(key, f"vmstat {key} delta", "", _SYSTEM_WIDE, system_wide=True,
                      note=_SYSTEM_NOTE)


def _meminfo(key: str, tag: str = "", when: str = "") -> Observable:
    return Observable(f"{tag}:{key}" if tag else key,
                      f"meminfo {key} delta" + (f" ({when})" if when else ""), "kB",
                      system_wide=True, gauge=True, note=_GAUGE_NOTE)


def _used(tag: str = "", when: str = "") -> Observable:
    return Observable(f"{tag}:used" if tag else "used",
                      "statfs used" + (f" ({when})" if when else ""), "kB", note=_USED_NOTE)


def _smaps(key: str, tag: str = "", when: str = "") -> Observable:
    return Observable(f"{tag}:{key}" if tag else key,
                      f"smaps {key}" + (f" ({when})" if when else ""))


COLLAPSE_RESULT = Observable("madvise", "madvise MADV_COLLAPSE result", "",
                             note="0, or -errno (EINVAL before 6.1)")
_4M1 = (4 << 20) + PAGE

TMPFS_SCENARIOS: tuple[TmpfsScenario, ...] = (
    TmpfsScenario("tmpfs-write", "huge=always: write() of 4 MiB + 4 KiB to a new file (three "
                  "PMD-sized folios, the last for one page)", Tmpfs("always", (("write", 0, _4M1),)),
                  (_meminfo("ShmemHugePages"), _used(), _vmstat("thp_file_alloc"),
                   _vmstat("thp_file_fallback"))),
    TmpfsScenario("tmpfs-map-shared", "huge=always: 4 MiB written, mapped MAP_SHARED read-only "
                  "2 MiB-aligned, every page read (a PMD per 2 MiB)",
                  Tmpfs("always", (("write", 0, 4 << 20), ("map", 4 << 20, 0, True, False),
                                   ("mark",), ("touch", 0, 4 << 20, False))),
                  (_smaps("Rss"), _smaps("ShmemPmdMapped"), _meminfo("ShmemPmdMapped"),
                   _vmstat("thp_file_mapped"), _vmstat("thp_file_alloc"))),
    TmpfsScenario("tmpfs-map-offset", "huge=always: 4 MiB written, 2 MiB of it from file offset "
                  "4 KiB mapped MAP_SHARED 2 MiB-aligned and read (address and offset disagree "
                  "mod 2 MiB: PTEs)",
                  Tmpfs("always", (("write", 0, 4 << 20), ("map", HPAGE, PAGE, True, False),
                                   ("mark",), ("touch", 0, HPAGE, False))),
                  (_smaps("Rss"), _smaps("ShmemPmdMapped"), _vmstat("thp_file_mapped"))),
    TmpfsScenario("tmpfs-private-write", "huge=always: 2 MiB written, mapped MAP_PRIVATE "
                  "read-write, every page read, then one byte written (the PMD split, one page "
                  "copied)",
                  Tmpfs("always", (("write", 0, HPAGE), ("map", HPAGE, 0, False, True),
                                   ("touch", 0, HPAGE, False), ("snap", "read"), ("mark",),
                                   ("touch", 2 * PAGE, 1, True))),
                  (_smaps("ShmemPmdMapped", "read", "after the reads"), _smaps("Rss"),
                   _smaps("Anonymous"), _smaps("ShmemPmdMapped"), _vmstat("thp_split_pmd"))),
    TmpfsScenario("tmpfs-truncate", "huge=always: 4 MiB + 4 KiB written, then ftruncate to 3 MiB "
                  "(the folio at 4 MiB freed, the one across 3 MiB split: 5.17+)",
                  Tmpfs("always", (("write", 0, _4M1), ("truncate", 3 << 20))),
                  (_meminfo("ShmemHugePages"), _meminfo("Shmem"), _used(),
                   _vmstat("thp_split_page"))),
    TmpfsScenario("tmpfs-within-size", "huge=within_size: 1 MiB written (small pages: the file "
                  "stays under 2 MiB), then 2 MiB at 2 MiB (its end covers the range: a folio)",
                  Tmpfs("within_size", (("write", 0, 1 << 20), ("snap", "1M"),
                                        ("write", HPAGE, HPAGE))),
                  (_meminfo("ShmemHugePages", "1M", "after 1 MiB"), _used("1M", "after 1 MiB"),
                   _meminfo("ShmemHugePages"), _used(), _vmstat("thp_file_alloc"))),
    TmpfsScenario("tmpfs-collapse", "huge=never: 2 MiB written, mapped MAP_SHARED read-write, "
                  "every page read, then MADV_COLLAPSE (6.1+; it ignores huge=)",
                  Tmpfs("never", (("write", 0, HPAGE), ("map", HPAGE, 0, True, True),
                                  ("touch", 0, HPAGE, False), ("snap", "read"), ("mark",),
                                  ("collapse",))),
                  (_smaps("ShmemPmdMapped", "read", "after the reads"), COLLAPSE_RESULT,
                   _smaps("ShmemPmdMapped"), _smaps("Rss"), _meminfo("ShmemHugePages"),
                   _vmstat("thp_file_mapped"), _vmstat("thp_collapse_alloc"),
                   _vmstat("thp_file_alloc"))),
)

# the OOM scenario's children: (name, bytes written, oom_score_adj)
OOM_CHILDREN: tuple[tuple[str, int, int], ...] = (
    ("a", 4 << 20, 0), ("b", 20 << 20, 0), ("c", 4 << 20, 500), ("d", 8 << 20, 250),
    ("e", 12 << 20, -300))


def _requirements(host: HostInfo, thp: bool) -> str | None:
    """Why a host scenario cannot run here, or None."""
    if not host.linux:
        return f"not Linux ({host.system})"
    if host.machine not in ("x86_64", "amd64", "AMD64"):
        return f"not x86-64 ({host.machine}); the engine models x86-64"
    if not host.proc:
        return "no /proc (procfs not mounted)"
    if thp:
        if host.thp is None:
            return f"no transparent huge pages ({THP_SYSFS} missing)"
        if host.thp["enabled"] == "never":
            return "THP disabled (enabled=never)"
    return None


def _tmpfs_requirements(host: HostInfo) -> str | None:
    """Why the tmpfs scenarios cannot run here, or None (the mount itself may still fail)."""
    why = _requirements(host, False)
    if why is not None:
        return why
    if host.shmem_thp is None:
        return f"no shmem THP ({THP_SYSFS}/shmem_enabled missing)"
    if host.shmem_thp == "deny":
        return "shmem THP disabled (shmem_enabled=deny)"
    if not host.capable(CAP_SYS_ADMIN):
        return "no CAP_SYS_ADMIN: mounting a tmpfs needs it"
    return None


# ---- the host side: runs in a child interpreter, standard library only -------------------------

class _Libc:
    """The few libc calls the host scenarios make, through ctypes."""

    def __init__(self) -> None:
        import ctypes
        self.ct = ct = ctypes
        libc = ct.CDLL(None, use_errno=True)
        libc.mmap.restype = ct.c_void_p
        libc.mmap.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int, ct.c_int, ct.c_int, ct.c_long]
        libc.munmap.argtypes = [ct.c_void_p, ct.c_size_t]
        libc.madvise.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int]
        libc.prctl.argtypes = [ct.c_int, ct.c_ulong, ct.c_ulong, ct.c_ulong, ct.c_ulong]
        libc.mount.argtypes = [ct.c_char_p, ct.c_char_p, ct.c_char_p, ct.c_ulong, ct.c_char_p]
        libc.umount2.argtypes = [ct.c_char_p, ct.c_int]
        libc.unshare.argtypes = [ct.c_int]
        libc.mincore.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_void_p]
        libc.mlock.argtypes = [ct.c_void_p, ct.c_size_t]
        libc.munlock.argtypes = [ct.c_void_p, ct.c_size_t]
        libc.syscall.restype = ct.c_long
        self.libc = libc

    def _err(self, what: str) -> OSError:
        e = self.ct.get_errno()
        return OSError(e, f"{what}: {os.strerror(e)}")

    def map_isolated(self, length: int, align: int = HPAGE, prot: int = PROT_READ | PROT_WRITE,
                     flags: int = MAP_PRIVATE | MAP_ANONYMOUS, fd: int = -1, offset: int = 0) -> int:
        """A mapping (anonymous private read-write, or ``fd`` from ``offset`` with ``flags``) at
        an ``align``-aligned address inside a PROT_NONE reservation: one VMA, which no
        neighbouring VMA can merge with."""
        size = length + align + 2 * PAGE
        res = self.libc.mmap(None, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if res in (None, 2 ** 64 - 1, -1):
            raise self._err("mmap (reservation)")
        start = (res + PAGE + align - 1) & ~(align - 1)
        got = self.libc.mmap(start, length, prot, flags | MAP_FIXED, fd, offset)
        if got != start:
            raise self._err("mmap (MAP_FIXED)")
        return start

    def madvise_result(self, addr: int, length: int, advice: int) -> int:
        """madvise(2): 0, or -errno."""
        r = self.libc.madvise(addr, length, advice)
        return -self.ct.get_errno() if r != 0 else 0

    def private_mounts(self) -> bool:
        """A mount namespace of this process's own, with no propagation to the host's: what it
        mounts goes when the process does, however it ends. False where that is not allowed."""
        if self.libc.unshare(CLONE_NEWNS) != 0:
            return False
        if self.libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise self._err("mount --make-rprivate /")
        return True

    def mount_tmpfs(self, where: str, options: str) -> int:
        """mount -t tmpfs -o OPTIONS tmpfs WHERE: 0, or -errno."""
        r = self.libc.mount(b"tmpfs", where.encode(), b"tmpfs", 0, options.encode())
        return -self.ct.get_errno() if r != 0 else 0

    def umount(self, where: str) -> int:
        """umount -l WHERE (lazy: a file still open or mapped keeps its memory until it goes)."""
        r = self.libc.umount2(where.encode(), MNT_DETACH)
        return -self.ct.get_errno() if r != 0 else 0

    def madvise(self, addr: int, length: int, advice: int) -> None:
        if self.libc.madvise(addr, length, advice) != 0:
            raise self._err(f"madvise({advice})")

    def prctl(self, option: int, a2: int = 0, a3: int = 0) -> int:
        """prctl(option, a2, a3, 0, 0): the result, or -errno."""
        r = self.libc.prctl(option, a2, a3, 0, 0)
        return -self.ct.get_errno() if r < 0 else r

    def resident(self, addr: int, length: int) -> int:
        """mincore(2): how many pages of [addr, addr + length) are in the page cache."""
        n = length // PAGE
        vec = (self.ct.c_ubyte * n)()
        if self.libc.mincore(addr, length, vec) != 0:
            raise self._err("mincore")
        return sum(v & 1 for v in vec)

    def cachestat(self, fd: int, offset: int, length: int) -> dict[str, int] | None:
        """cachestat(2) (6.5+) over [offset, offset + length) of ``fd``: nr_cache, nr_dirty,
        nr_writeback, nr_evicted, nr_recently_evicted; None where the kernel lacks it."""
        ct = self.ct
        names = ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")

        class Range(ct.Structure):
            _fields_ = [("off", ct.c_uint64), ("len", ct.c_uint64)]

        class Stat(ct.Structure):
            _fields_ = [(n, ct.c_uint64) for n in names]
        rng, st = Range(offset, length), Stat()
        if self.libc.syscall(SYS_CACHESTAT, ct.c_uint(fd), ct.byref(rng), ct.byref(st),
                             ct.c_uint(0)) != 0:
            if ct.get_errno() == errno.ENOSYS:
                return None
            raise self._err("cachestat")
        return {n: getattr(st, n) for n in names}

    def mlock(self, addr: int, length: int, lock: bool) -> int:
        """mlock(2) or munlock(2): 0, or -errno."""
        r = (self.libc.mlock if lock else self.libc.munlock)(addr, length)
        return -self.ct.get_errno() if r != 0 else 0

    def touch(self, addr: int, length: int, stride: int, write: bool) -> None:
        """One byte every ``stride`` bytes, in address order (as ``Task.touch``)."""
        ct = self.ct
        if write:
            for off in range(0, length, stride):
                ct.memset(addr + off, 1, 1)
        else:
            for off in range(0, length, stride):
                ct.c_char.from_address(addr + off).value


def _fields(path: str, sep: str = ":") -> dict[str, int]:
    """``Key: value [kB]`` lines (or ``key value``) as integers."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(sep)
            parts = v.split()
            if parts and parts[0].lstrip("-").isdigit():
                out[k.strip()] = int(parts[0])
    return out


def _smaps_of(addr: int, pid: str = "self") -> dict[str, int]:
    """The /proc/PID/smaps entry of the VMA that contains ``addr``."""
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ")
    found, out = False, {}
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = head.match(line)
            if m:
                if found:
                    break
                found = int(m.group(1), 16) <= addr < int(m.group(2), 16)
                continue
            if found:
                k, _, v = line.partition(":")
                parts = v.split()
                if parts and parts[0].isdigit():
                    out[k] = int(parts[0])
    if not found:
        raise LookupError(f"no VMA of /proc/{pid}/smaps contains {addr:#x}")
    return out


def _zero_mappings(addr: int, length: int) -> dict[str, int]:
    """Pages of [addr, addr + length) mapped to the zero page, from pagemap and kpageflags:
    ``huge_zero_pmds`` (2 MiB ranges on the huge zero page) and ``zero_ptes`` (4 KiB pages on
    the 4 KiB zero page). Or ``pagemap_skip``, why they cannot be read."""
    import struct
    n = length // PAGE
    try:
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(addr // PAGE * 8)
            ents = struct.unpack(f"<{n}Q", f.read(n * 8))
        kf = open("/proc/kpageflags", "rb")
    except OSError as e:
        return {"pagemap_skip": f"{e.filename}: {e.strerror}"}
    pfn_mask = (1 << 55) - 1
    present = [(e & pfn_mask) if e >> 63 & 1 else -1 for e in ents]
    if any(p == 0 for p in present):        # present without a PFN: pagemap hides them
        kf.close()
        return {"pagemap_skip": "no CAP_SYS_ADMIN: pagemap shows no PFNs"}
    flags: dict[int, int] = {}
    with kf:
        def kpf(pfn: int) -> int:
            if pfn not in flags:
                kf.seek(pfn * 8)
                flags[pfn] = struct.unpack("<Q", kf.read(8))[0]
            return flags[pfn]
        huge = zero = 0
        per = HPAGE // PAGE
        for i in range(0, n, per):
            p = present[i]
            if p >= 0 and kpf(p) >> KPF_ZERO_PAGE & 1 and kpf(p) >> KPF_THP & 1:
                huge += 1
                continue
            for q in present[i:i + per]:
                if q >= 0 and kpf(q) >> KPF_ZERO_PAGE & 1 and not kpf(q) >> KPF_THP & 1:
                    zero += 1
    return {"huge_zero_pmds": huge, "zero_ptes": zero}


def host_region(spec: dict) -> dict:
    """Run a region scenario in this (child) process; the values the engine is compared with."""
    r = Region(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
    libc = _Libc()
    out: dict[str, Any] = {}
    if r.prctl is not None:
        if libc.prctl(PR_GET_THP_DISABLE) < 0:
            return {"skip": "prctl PR_GET_THP_DISABLE unsupported (before 3.15)"}
        got = libc.prctl(PR_SET_THP_DISABLE, *r.prctl)
        if got < 0:
            why = os.strerror(-got)
            if r.prctl[1] & PR_THP_DISABLE_EXCEPT_ADVISED:
                return {"skip": f"prctl PR_THP_DISABLE_EXCEPT_ADVISED unsupported ({why}; 6.18+)"}
            return {"skip": f"prctl PR_SET_THP_DISABLE unsupported ({why})"}
        out["prctl_get"] = libc.prctl(PR_GET_THP_DISABLE)
    knob = os.path.join(THP_SYSFS, "khugepaged", "max_ptes_none")
    old = None
    if r.max_ptes_none is not None:
        if (_read(os.path.join(THP_SYSFS, "shrink_underused")) or "").strip() != "1":
            return {"skip": "no underused-THP shrinker here (6.12+, shrink_underused 1)"}
        old = (_read(knob) or "").strip() or None
        if old is None or not os.access(knob, os.W_OK):
            return {"skip": f"{knob} is not writable (root needed)"}
    addr = libc.map_isolated(r.length)
    if r.advice is not None:
        libc.madvise(addr, r.length, r.advice)
    lock = None
    try:
        if old is not None:
            # one host-wide knob: runs that change it (other checks' children) take turns, so
            # each restores the value it found
            import fcntl
            lock = open(SYSFS_LOCK, "a")
            fcntl.flock(lock, fcntl.LOCK_EX)
            old = (_read(knob) or "").strip() or old
            with open(knob, "w") as f:
                f.write(str(r.max_ptes_none))
        if r.drop_slab:
            # a first drop_caches 2 splits what other processes' THPs hold underused already, so
            # the counters below move by this region's THPs and the few made in between
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("2")
        st0, vm0 = _fields("/proc/self/status"), _fields("/proc/vmstat", " ")
        libc.touch(addr, r.length, r.stride, r.write)
        vm1, st1 = _fields("/proc/vmstat", " "), _fields("/proc/self/status")
        if r.collapse:
            libc.madvise(addr, r.length, MADV_HUGEPAGE)
            out["collapse_first"] = libc.madvise_result(addr, r.length, MADV_COLLAPSE)
            libc.touch(addr, 1, PAGE, True)
            out["collapse_after_write"] = libc.madvise_result(addr, r.length, MADV_COLLAPSE)
        if r.drop_slab:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("2")
            vm2 = _fields("/proc/vmstat", " ")
            out.update({k: vm2.get(k, 0) - vm0.get(k, 0) for k in SPLIT_KEYS})
    finally:
        if lock is not None:
            with open(knob, "w") as f:
                f.write(old)
            lock.close()
    sm = _smaps_of(addr)
    out.update(Rss=sm["Rss"], AnonHugePages=sm["AnonHugePages"], VmPTE=st1["VmPTE"] - st0["VmPTE"],
               thp_fault_alloc=vm1.get("thp_fault_alloc", 0) - vm0.get("thp_fault_alloc", 0),
               thp_fault_fallback=vm1.get("thp_fault_fallback", 0) - vm0.get("thp_fault_fallback", 0),
               addr=addr)
    if "THP_enabled" in st1:
        out["THP_enabled"] = st1["THP_enabled"]
    if not r.write:
        out.update(_zero_mappings(addr, r.length))
    return out


def run_tmpfs_steps(fs, tm: Tmpfs) -> dict[str, Any]:
    """The steps of a tmpfs scenario on one side (``fs``: ``_HostTmpfs`` or ``_EngineTmpfs``,
    the file open on a fresh mount): the values it is compared by (see ``Tmpfs``)."""
    base = fs.counters()
    addr = length = None
    out: dict[str, Any] = {}

    def values() -> dict[str, Any]:
        now = fs.counters()
        d: dict[str, Any] = {k: now[k] - base[k] for k in base}
        d["used"] = fs.used_kb()
        if addr is not None:
            sm = fs.smaps(addr)
            d.update({k: sm.get(k, 0) for k in TMPFS_SMAPS})
        return d
    for op, *args in tm.steps:
        if op == "write":
            fs.write(*args)
        elif op == "truncate":
            fs.truncate(*args)
        elif op == "map":
            if addr is not None:
                raise ValueError("a tmpfs scenario maps its file once")
            length = args[0]
            addr = fs.map(*args)
        elif op == "touch":
            fs.touch(addr + args[0], args[1], args[2])
        elif op == "collapse":
            out["madvise"] = fs.collapse(addr, length)
        elif op == "mark":
            base = fs.counters()
        elif op == "snap":
            out.update({f"{args[0]}:{k}": v for k, v in values().items()})
        else:
            raise ValueError(f"unknown tmpfs step {op!r}")
    out.update(values())
    return out


class _HostTmpfs:
    """The host side of a tmpfs scenario: a file on the tmpfs mounted at ``where``."""

    def __init__(self, libc: _Libc, where: str) -> None:
        self.libc, self.where, self.maps = libc, where, []
        self.fd = os.open(os.path.join(where, "f"), os.O_CREAT | os.O_RDWR, 0o600)

    def counters(self) -> dict[str, int]:
        mi, vm = _fields("/proc/meminfo"), _fields("/proc/vmstat", " ")
        return {**{k: mi.get(k, 0) for k in TMPFS_MEMINFO}, **{k: vm.get(k, 0) for k in TMPFS_VMSTAT}}

    def used_kb(self) -> int:
        st = os.statvfs(self.where)
        return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024

    def write(self, offset: int, length: int) -> None:
        buf = memoryview(b"\1" * length)
        done = 0
        while done < length:
            done += os.pwrite(self.fd, buf[done:], offset + done)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def map(self, length: int, offset: int, shared: bool, writable: bool) -> int:
        addr = self.libc.map_isolated(length, prot=PROT_READ | (PROT_WRITE if writable else 0),
                                      flags=MAP_SHARED if shared else MAP_PRIVATE, fd=self.fd,
                                      offset=offset)
        self.maps.append((addr, length))
        return addr

    def touch(self, addr: int, length: int, write: bool) -> None:
        self.libc.touch(addr, length, PAGE, write)

    def collapse(self, addr: int, length: int) -> int:
        return self.libc.madvise_result(addr, length, MADV_COLLAPSE)

    def smaps(self, addr: int) -> dict[str, int]:
        return _smaps_of(addr)

    def close(self) -> None:
        for addr, length in self.maps:
            self.libc.libc.munmap(addr, length)
        os.close(self.fd)


def host_tmpfs(spec: dict) -> dict:
    """Run a tmpfs scenario in this (child) process: mount a tmpfs on ``spec["dir"]`` (in a
    mount namespace of its own unless ``spec["unshare"]`` is false), run the steps, unmount.
    The values, or ``{"skip": why}`` when the host cannot mount it."""
    tm = Tmpfs(**{**spec["tmpfs"], "steps": tuple(tuple(st) for st in spec["tmpfs"]["steps"])})
    where = spec["dir"]
    libc = _Libc()
    if spec.get("unshare", True):
        libc.private_mounts()
    options = f"size={tm.size >> 10}k,mode=0700"
    err = libc.mount_tmpfs(where, f"{options},huge={tm.huge}")
    if err == -22 and libc.mount_tmpfs(where, options) == 0:     # EINVAL for huge= only
        libc.umount(where)
        return {"skip": f"tmpfs rejects huge={tm.huge} (Invalid argument): no shmem THP"}
    if err < 0:
        return {"skip": f"cannot mount a tmpfs ({os.strerror(-err)})"}
    try:
        fs = _HostTmpfs(libc, where)
        try:
            return run_tmpfs_steps(fs, tm)
        finally:
            fs.close()
    finally:
        libc.umount(where)


def host_oom_child(spec: dict) -> None:
    """An OOM-scenario child: set oom_score_adj, map and write ``length`` bytes, report the
    status it had just before the writes, then stop itself (SIGSTOP) for the parent to read."""
    import signal
    libc = _Libc()
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))     # never outlive the check
    signal.alarm(CHILD_TIMEOUT_S)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(spec["adj"]))
    addr = libc.map_isolated(spec["length"])
    before = _fields("/proc/self/status")
    sys.stdout.write(json.dumps({"before": before, "addr": addr}) + "\n")
    sys.stdout.flush()
    libc.touch(addr, spec["length"], PAGE, True)
    os.kill(os.getpid(), signal.SIGSTOP)


def _child_main(argv: list[str]) -> int:
    what, spec = argv[0], json.loads(argv[1])
    if what == "region":
        print(json.dumps(host_region(spec)))
    elif what == "tmpfs":
        print(json.dumps(host_tmpfs(spec)))
    elif what == "oom":
        host_oom_child(spec)
    elif what == "file":
        print(json.dumps(host_file(spec)))
    elif what == "folios":
        print(json.dumps(host_folios(spec)))
    else:
        raise SystemExit(f"unknown child scenario {what!r}")
    return 0


def _child_cmd(what: str, spec: dict) -> list[str]:
    # -I: no user site, no PYTHON* variables, and not this directory on sys.path
    return [sys.executable, "-I", os.path.abspath(__file__), "--child", what, json.dumps(spec)]


def run_host_region(region: Region) -> dict:
    """A region scenario in a fresh child interpreter: its result dict (or ``{"skip": why}``)."""
    r = subprocess.run(_child_cmd("region", asdict(region)), capture_output=True, text=True,
                       timeout=CHILD_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"host scenario failed (exit {r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def run_host_tmpfs(tm: Tmpfs, unshare: bool = True) -> dict:
    """A tmpfs scenario in a fresh child interpreter, on a temporary directory: its result dict
    (or ``{"skip": why}``). The child mounts in a mount namespace of its own (where the kernel
    lets it), so its tmpfs goes with it; should it still be mounted here afterwards (no
    namespace, and the child killed), it is unmounted before the directory goes."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="mmcore-validate-") as where:
        try:
            r = subprocess.run(_child_cmd("tmpfs", {"tmpfs": asdict(tm), "dir": where,
                                                    "unshare": unshare}),
                               capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        finally:
            if os.path.ismount(where):
                _Libc().umount(where)
        if r.returncode != 0:
            raise RuntimeError(f"host tmpfs scenario failed (exit {r.returncode}): "
                               f"{r.stderr.strip()}")
        return json.loads(r.stdout)


def run_host_oom(children=OOM_CHILDREN) -> list[dict]:
    """Start the OOM children, wait until each has stopped itself, read what the host shows
    for each (``/proc/PID/oom_score``, ``status``), then kill them all."""
    procs = []
    try:
        for _, length, adj in children:
            procs.append(subprocess.Popen(_child_cmd("oom", {"length": length, "adj": adj}),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        out = []
        for p in procs:
            line = p.stdout.readline()
            _, status = os.waitpid(p.pid, os.WUNTRACED)
            if not line or not os.WIFSTOPPED(status):
                raise RuntimeError(f"OOM child {p.pid} did not stop: {p.stderr.read().strip()}")
            d = json.loads(line)
            d["pid"] = p.pid
            with open(f"/proc/{p.pid}/oom_score") as f:
                d["oom_score"] = int(f.read())
            d["after"] = _fields(f"/proc/{p.pid}/status")
            out.append(d)
        return out
    finally:
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()


# ---- the engine side -----------------------------------------------------------------------

def _engine_map(t, length: int) -> int:
    """The host's layout in the engine: a PROT_NONE reservation and a MAP_FIXED region at its
    first 2 MiB-aligned address past one guard page."""
    res = t.mmap(length + HPAGE + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
    start = (res + PAGE + HPAGE - 1) & ~(HPAGE - 1)
    return t.mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, start)


def _engine_zero(m, t, addr: int, length: int) -> dict[str, int]:
    """The engine's zero-page mappings of a range, from its page-table leaves."""
    from .kernels import consts as K
    zero_pfn = int(m.state.cfg[K.C_NR_FRAMES])             # the 4 KiB zero page's frame
    huge = zero = 0
    for va, e in t.page_table().items():
        if not addr <= va < addr + length:
            continue
        pfn = (e >> 12) & ((1 << 40) - 1)
        if e & K._PAGE_PSE:
            huge += bool(m.state.fr_flags[pfn] & K.PG_hugezero)
        else:
            zero += pfn == zero_pfn
    return {"huge_zero_pmds": huge, "zero_ptes": zero}


def engine_region(config, region: Region) -> dict:
    """A region scenario on a fresh engine machine: the same keys as ``host_region``."""
    from . import Machine
    from .kernels import consts as K
    m = Machine(config)
    t = m.spawn("validate")
    out: dict[str, Any] = {}
    if region.prctl is not None:
        try:
            t.prctl(K.PR_SET_THP_DISABLE, *region.prctl)
        except OSError as e:
            return {"skip": f"profile {config.kernel}: prctl {os.strerror(e.errno)}"}
        out["prctl_get"] = t.prctl(K.PR_GET_THP_DISABLE)
    if region.max_ptes_none is not None:
        if config.profile.version < 612 or not config.thp_shrink_underused:
            return {"skip": f"profile {config.kernel}: no underused-THP shrinker (6.12+)"}
        m.sysfs_write("kernel/mm/transparent_hugepage/khugepaged/max_ptes_none",
                      region.max_ptes_none)
    addr = _engine_map(t, region.length)
    if region.advice is not None:
        t.madvise(addr, region.length, region.advice)
    pte0, vm0 = t.status()["VmPTE"], m.vmstat()
    t.touch(addr, region.length, region.stride, region.write)
    vm1, st1 = m.vmstat(), t.status()
    if region.collapse:
        t.madvise(addr, region.length, K.MADV_HUGEPAGE)

        def collapse() -> int:
            try:
                return t.madvise(addr, region.length, K.MADV_COLLAPSE) or 0
            except OSError as e:
                return -e.errno
        out["collapse_first"] = collapse()
        t.touch(addr, 1, PAGE, True)
        out["collapse_after_write"] = collapse()
    if region.drop_slab:
        t.write_sysctl("vm.drop_caches", 2)
        vm2 = m.vmstat()
        out.update({k: vm2[k] - vm0[k] for k in SPLIT_KEYS})
    sm = t.smaps(addr)
    out.update(Rss=sm["Rss"], AnonHugePages=sm["AnonHugePages"], VmPTE=st1["VmPTE"] - pte0,
               THP_enabled=st1["THP_enabled"], addr=addr,
               **{k: vm1[k] - vm0[k] for k in ("thp_fault_alloc", "thp_fault_fallback")})
    if not region.write:
        out.update(_engine_zero(m, t, addr, region.length))
    return out


class _EngineTmpfs:
    """The engine side of a tmpfs scenario: a file on the machine's tmpfs at ``MOUNT``."""
    MOUNT = "/validate"

    def __init__(self, m, t) -> None:
        self.m, self.t = m, t
        self.fd = t.open(f"{self.MOUNT}/f", os.O_CREAT | os.O_RDWR, 0o600)

    def counters(self) -> dict[str, int]:
        mi, vm = self.m.meminfo(), self.m.vmstat()
        return {**{k: mi.get(k, 0) for k in TMPFS_MEMINFO}, **{k: vm.get(k, 0) for k in TMPFS_VMSTAT}}

    def used_kb(self) -> int:
        st = self.m.fs_stats(self.MOUNT)
        return (st["blocks"] - st["free_blocks"]) * PAGE // 1024

    def write(self, offset: int, length: int) -> None:
        self.t.pwrite(self.fd, offset, length)

    def truncate(self, size: int) -> None:
        self.t.ftruncate(self.fd, size)

    def map(self, length: int, offset: int, shared: bool, writable: bool) -> int:
        t = self.t
        res = t.mmap(length + HPAGE + 2 * PAGE, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
        start = (res + PAGE + HPAGE - 1) & ~(HPAGE - 1)
        return t.mmap(length, PROT_READ | (PROT_WRITE if writable else 0),
                      (MAP_SHARED if shared else MAP_PRIVATE) | MAP_FIXED, start, fd=self.fd,
                      offset=offset)

    def touch(self, addr: int, length: int, write: bool) -> None:
        self.t.touch(addr, length, PAGE, write)

    def collapse(self, addr: int, length: int) -> int:
        try:
            return self.t.madvise(addr, length, MADV_COLLAPSE) or 0
        except OSError as e:
            return -e.errno

    def smaps(self, addr: int) -> dict[str, int]:
        return self.t.smaps(addr)


def engine_tmpfs(config, tm: Tmpfs) -> dict:
    """A tmpfs scenario on a fresh engine machine with a tmpfs mounted ``huge=tm.huge``: the
    same keys as ``host_tmpfs``."""
    from . import Machine
    m = Machine(config)
    try:
        m.mount(_EngineTmpfs.MOUNT, "tmpfs", size=tm.size, huge=tm.huge)
    except ValueError as e:                  # a profile before 4.8
        return {"skip": f"profile {config.kernel}: {e}"}
    return run_tmpfs_steps(_EngineTmpfs(m, m.spawn("validate")), tm)


def engine_oom(config, host: HostInfo, children: list[dict]) -> list[dict]:
    """The OOM children in the engine: a machine with the host's RAM plus swap as
    ``totalpages`` and its kernel's OOM arithmetic (``Machine.from_proc``), one task per child
    holding the child's memory from before its writes as a baseline, which then maps and writes
    the same region. Each child's ``oom_score`` and ``VmRSS`` as the engine computes them."""
    from . import Machine
    from .procfs import ProcTask, Snapshot
    tasks = []
    for c in children:
        b = c["before"]
        tasks.append(ProcTask(pid=c["pid"], ppid=os.getpid(), comm=c["name"],
                              rss_anon_kb=b["RssAnon"], rss_file_kb=b["RssFile"],
                              rss_shmem_kb=b["RssShmem"], swap_kb=b.get("VmSwap", 0),
                              pte_kb=b["VmPTE"], oom_score_adj=c["adj"], oom_score=-1,
                              cap_sys_admin=host.capable(CAP_SYS_ADMIN)))
    snap = Snapshot(tasks=tasks, mem_total_kb=host.mem_total_kb, mem_free_kb=0,
                    swap_total_kb=host.swap_total_kb or 0, kernel=host.kernel)
    m = Machine.from_proc(snap, config)
    out = []
    for c in children:
        t = next(x for x in m.tasks() if x.pid == c["pid"])
        a = _engine_map(t, c["length"])
        t.touch(a, c["length"])
        out.append({"oom_score": t.oom_score, "VmRSS": t.status()["VmRSS"]})
    return out


# ---- the check -----------------------------------------------------------------------------

@dataclass
class Report:
    """The checks of one run, with the host and engine settings they ran under."""
    host: HostInfo
    engine: dict[str, Any]
    checks: list[Check]
    scenarios: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when every check that ran matched."""
        return all(c.matches for c in self.checks)

    def counts(self) -> dict[str, int]:
        ran = [c for c in self.checks if c.skipped is None]
        return {"checks": len(self.checks), "match": sum(c.matches for c in ran),
                "mismatch": sum(not c.matches for c in ran),
                "skipped": len(self.checks) - len(ran)}

    def rows(self) -> list[list[Any]]:
        def v(x):
            return "-" if x is None else x
        return [[c.scenario, c.observable, c.unit, v(c.host), v(c.engine), c.tolerance, c.result]
                for c in self.checks]

    HEADERS = ("scenario", "observable", "unit", "host", "engine", "tolerance", "result")

    def table(self, markdown: bool = False) -> str:
        """The checks as aligned text (numbers to the right, words to the left) or markdown."""
        from .cli import _cell, table
        if markdown:
            return table(list(self.HEADERS), self.rows(), markdown=True)
        cells = [list(self.HEADERS)] + [[_cell(v) for v in r] for r in self.rows()]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.HEADERS))]
        right = (False, False, False, True, True, False, False)
        return "\n".join("  ".join(c.rjust(w) if rj else c.ljust(w)
                                   for c, w, rj in zip(r, widths, right)).rstrip() for r in cells)

    def format(self, markdown: bool = False) -> str:
        """The whole report: the settings, the table, the notes and the counts."""
        n = self.counts()
        bullet = "- " if markdown else "  "
        return "\n".join([
            *(f"{bullet}{line}" if markdown else line for line in self.header().splitlines()), "",
            self.table(markdown), "", "notes:" + ("\n" if markdown else ""),
            *(f"{bullet}{line}" for line in self.notes()), "",
            f"{n['checks']} checks: {n['match']} match, {n['mismatch']} mismatch, "
            f"{n['skipped']} skipped"])

    def header(self) -> str:
        h, e = self.host, self.engine
        thp = ("no THP" if h.thp is None else
               f"THP enabled={h.thp['enabled']} defrag={h.thp['defrag']} "
               f"use_zero_page={h.thp['use_zero_page']}")
        thp += ", no shmem THP" if h.shmem_thp is None else f" shmem_enabled={h.shmem_thp}"
        other = f", other mTHP sizes on: {', '.join(h.mthp_other)}" if h.mthp_other else ""
        lacks = [n for n, cap in (("CAP_SYS_ADMIN", CAP_SYS_ADMIN),
                                  ("CAP_SYS_RESOURCE", CAP_SYS_RESOURCE)) if not h.capable(cap)]
        who = ("root" if h.root else "not root") + (f" without {', '.join(lacks)}" if lacks else "")
        return (f"host: {h.system} {h.machine} {h.release}, {who}, {thp}{other}\n"
                f"engine: profile {e['kernel']}, THP enabled={e['thp_enabled']} "
                f"defrag={e['thp_defrag']} use_zero_page={int(e['thp_use_zero_page'])} "
                f"shmem_enabled={e.get('shmem_enabled', 'never')}")

    def notes(self) -> list[str]:
        """The scenarios' descriptions and the notes of the tolerant or partial checks."""
        out = [f"{name}: {d}" for name, d in self.scenarios.items()]
        seen: dict[str, list[str]] = {}          # note -> observables (without their details)
        for c in self.checks:
            name = re.sub(r" \(.*\)$", "", c.observable)
            if c.note and name not in seen.setdefault(c.note, []):
                seen[c.note].append(name)
        return out + [f"{', '.join(names)}: {note}" for note, names in seen.items()]

    def to_dict(self) -> dict[str, Any]:
        return {"host": asdict(self.host), "engine": self.engine, "scenarios": self.scenarios,
                "summary": {**self.counts(), "ok": self.ok},
                "checks": [{"scenario": c.scenario, "observable": c.observable, "unit": c.unit,
                            "host": c.host, "engine": c.engine, "tolerance": list(c.tol),
                            "result": "skipped" if c.skipped is not None else
                            ("match" if c.matches else "mismatch"),
                            "skipped": c.skipped, "note": c.note} for c in self.checks]}


@contextmanager
def host_turn():
    """Hold the host while a scenario runs there. Several observables are system-wide
    (ShmemHugePages, MemAvailable, vmstat counters), so two validate runs at once (two
    terminals, two test workers) would see each other's pages: they take turns, one scenario
    (with its repeats) at a time."""
    import fcntl
    with open(HOST_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _measure_again(observables, got: dict, eng: dict, again) -> None:
    """Host values of system-wide observables that other processes may have moved, measured
    again (``again()``: the host scenario once more) where they fall outside their band: a
    counter only grows by noise, the least of the runs counts, and it stops once within the
    band; a level (``gauge``) moves either way, the median of ``SYSTEM_WIDE_RUNS`` runs counts."""
    def both(ob):
        return isinstance(got.get(ob.key), int) and isinstance(eng.get(ob.key), int)
    samples: dict[str, list[int]] = {}
    for _ in range(SYSTEM_WIDE_RUNS - 1):
        noisy = []
        for ob in observables:
            if not (ob.system_wide and both(ob)):
                continue
            diff = got[ob.key] - eng[ob.key]
            if ob.gauge:
                if ob.key in samples or not ob.tol[0] <= diff <= ob.tol[1]:
                    noisy.append(ob)
            elif diff > ob.tol[1]:
                noisy.append(ob)
        if not noisy:
            break
        more = again()
        for ob in noisy:
            if not isinstance(more.get(ob.key), int):
                continue
            if ob.gauge:
                samples.setdefault(ob.key, [got[ob.key]]).append(more[ob.key])
            else:
                got[ob.key] = min(got[ob.key], more[ob.key])
    for k, vals in samples.items():
        got[k] = sorted(vals)[(len(vals) - 1) // 2]


def _scenario_checks(sc: Scenario | TmpfsScenario, host: HostInfo, config) -> list[Check]:
    if isinstance(sc, TmpfsScenario):
        why = _tmpfs_requirements(host)
        eng = engine_tmpfs(config, sc.tmpfs)

        def on_host():
            return run_host_tmpfs(sc.tmpfs)
    else:
        why = _requirements(host, sc.needs_thp)
        eng = engine_region(config, sc.region)

        def on_host():
            return run_host_region(sc.region)
    got: dict[str, Any] = {}
    with host_turn():
        if why is None:
            got = on_host()
            why = got.get("skip")
        if why is None:
            why = eng.get("skip")
        if why is None:
            _measure_again(sc.observables, got, eng, on_host)
    checks = []
    for ob in sc.observables:
        c = Check(sc.name, ob.label, ob.unit, got.get(ob.key), eng.get(ob.key), ob.tol, why,
                  ob.note)
        if c.skipped is None and ob.needs_pfns and ob.key not in got:
            c.skipped = got.get("pagemap_skip", "no pagemap values")
        checks.append(c)
    return checks


def _ordering(pairs: list[tuple[str, int]], slack: int = 0) -> str:
    """Names by descending score, ties joined with '='; e.g. ``c > b = a > d``. Scores within
    ``slack`` of the next higher one count as ties."""
    groups: list[list[str]] = []
    prev = None
    for name, s in sorted(pairs, key=lambda p: -p[1]):
        if prev is None or prev - s > slack:
            groups.append([])
        groups[-1].append(name)
        prev = s
    return " > ".join(" = ".join(sorted(g)) for g in groups)


# A child's RSS may differ from the engine's by a few pages (its interpreter's own; the VmRSS rows'
# +-64 kB), and oom_score moves in steps of totalpages / 1000 * 3 / 2 pages (over 64 kB on any
# machine of more than 42 MiB): a child near a step may land one off
OOM_SCORE_TOL = (-1, 1)


def oom_labels(name: str, length: int, adj: int) -> tuple[str, str]:
    """The observables of one OOM child: its oom_score and its VmRSS."""
    return f"oom_score ({name}: {length >> 20} MiB, adj {adj})", f"status VmRSS ({name})"


OOM_ORDER = "oom_score order (victim first)"


def _oom_checks(host: HostInfo, config, children=OOM_CHILDREN) -> list[Check]:
    why = _requirements(host, False)
    if why is None and host.mem_total_kb is None:
        why = "no MemTotal in /proc/meminfo"
    kids = list(children)
    no_cap = "no CAP_SYS_RESOURCE: a negative oom_score_adj needs it"
    if why is None and not host.capable(CAP_SYS_RESOURCE):
        kids = [c for c in kids if c[2] >= 0]
    got: dict[str, tuple[dict, dict]] = {}            # child -> (host, engine)
    if why is None:
        with host_turn():
            host_out = run_host_oom(kids)
        for (name, length, adj), h in zip(kids, host_out):
            h.update(name=name, length=length, adj=adj)
        got = {h["name"]: (h, e) for h, e in zip(host_out, engine_oom(config, host, host_out))}
    total = ("" if host.mem_total_kb is None else
             f"engine totalpages = host MemTotal + SwapTotal = "
             f"{(host.mem_total_kb + (host.swap_total_kb or 0)) // 4} pages")
    checks = []
    for name, length, adj in children:
        skip = why if why is not None or name in got else no_cap
        h, e = got.get(name, ({}, {}))
        score, rss = oom_labels(name, length, adj)
        checks.append(Check("oom-score", score, "", h.get("oom_score"), e.get("oom_score"),
                            OOM_SCORE_TOL, skip, (total + "; " if total else "") + "a child "
                            "whose RSS is within a few pages of a score step may land one off"))
        checks.append(Check("oom-score", rss, "kB", h.get("after", {}).get("VmRSS"),
                            e.get("VmRSS"), (-64, 64), skip,
                            "the child's interpreter may touch a few pages after its report"))
    order = [(_ordering([(n, side[k]["oom_score"]) for n, side in got.items()], OOM_SCORE_TOL[1])
              if got else None) for k in (0, 1)]
    checks.append(Check("oom-score", OOM_ORDER, "", order[0], order[1], skipped=why,
                        note="the children that ran, by oom_score; scores within 1 are ties, "
                             "joined by '='"))
    return checks


# ---- the file group: readahead windows and mlock on a disk filesystem ---------------------------

FILE_DIR = "/var/tmp"
FILE_SETTLE_S = 0.2
FILE_SETTLE_MAX_S = 5.0
FILE_MAX_RA_KB = 16 << 10         # a read_ahead_kb above this would need a file over 64 MiB
FILE_RUNS = 4                     # runs, while something else evicts the file's pages mid-run
MLOCK_KEYS = ("unevictable_pgs_mlocked", "unevictable_pgs_culled", "unevictable_pgs_munlocked",
              "unevictable_pgs_rescued")


FILE_FAULTS = ("a cold page", "the read-around window's mark", "the next window's mark",
               "a page inside that window", "the third window's mark")


def file_faults(ra_pages: int) -> tuple[int, ...]:
    """Where the file scenario faults, for a window of ``ra_pages``: a cold page (read-around
    [0, ra_pages), marked at 3/4), its mark (the next window, async), that window's mark, a page
    inside it (nothing new), the third window's mark."""
    return (5, ra_pages - ra_pages // 4, ra_pages, ra_pages + 8, 2 * ra_pages)


def _read_ahead_kb(path: str, name: str = "read_ahead_kb") -> tuple[int | None, str]:
    """A queue setting (``read_ahead_kb``, ``max_sectors_kb``) of the block device holding
    ``path`` (a partition's is its disk's), or (None, why)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    if os.major(st.st_dev) == 0:
        return None, f"{path} is on no block device (device {dev})"
    base = f"/sys/dev/block/{dev}"
    for q in (f"{base}/queue/{name}", f"{base}/../queue/{name}"):
        v = _read(q)
        if v is not None and v.strip().isdigit():
            return int(v), ""
    return None, f"no {name} for block device {dev}"


def host_file(spec: dict) -> dict:
    """Run the file scenario in this (child) process (see the module docstring): up to
    ``FILE_RUNS`` times, until a run sees none of the file's pages evicted while it ran."""
    ra_kb, why = _read_ahead_kb(spec["dir"])
    if ra_kb is None:
        return {"skip": why}
    if not 16 <= ra_kb <= FILE_MAX_RA_KB:
        return {"skip": f"read_ahead_kb {ra_kb} outside [16, {FILE_MAX_RA_KB}]"}
    libc = _Libc()
    for run in range(1, FILE_RUNS + 1):
        out = _host_file_run(libc, spec["dir"], ra_kb)
        out.update(read_ahead_kb=ra_kb, runs=run,
                   max_sectors_kb=_read_ahead_kb(spec["dir"], "max_sectors_kb")[0])
        if not out.get("evicted"):
            break
    return out


def _host_file_run(libc: _Libc, directory: str, ra_kb: int) -> dict:
    """One run of the file scenario. The pages counted after each fault are those the reads
    brought in: cached ones (mincore, or cachestat where the kernel has it) and, with cachestat,
    those evicted since (a host may reclaim unmapped cold page cache at any moment, as DAMON's
    proactive ``pageout`` does); ``evicted`` says how many were."""
    import tempfile
    import time
    if hasattr(os, "sched_setaffinity"):
        # one CPU: the pages it reads wait in that CPU's LRU batch, which mlock drains
        # (lru_add_drain is per CPU); moved between CPUs, some would miss the cull
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    ra = ra_kb // 4
    size = 4 * ra * PAGE
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mmcore-validate-", dir=directory) as d:
        fd = os.open(os.path.join(d, "f"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            buf = b"\1" * (1 << 20)
            for off in range(0, size, len(buf)):
                os.pwrite(fd, buf[:min(len(buf), size - off)], off)
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            addr = libc.map_isolated(size, prot=PROT_READ, flags=MAP_SHARED, fd=fd)
            if libc.resident(addr, size):
                return {"skip": "POSIX_FADV_DONTNEED left the file cached"}

            def brought() -> tuple[int, int]:
                cs = libc.cachestat(fd, 0, size)
                if cs is None:
                    return libc.resident(addr, size), 0
                return cs["nr_cache"] + cs["nr_evicted"], cs["nr_evicted"]
            for k, page in enumerate(file_faults(ra)):
                libc.touch(addr + page * PAGE, 1, PAGE, False)
                # a large window is still being added to the page cache when the fault
                # returns (the host submits it in batches): count once the I/O has settled,
                # the count unchanged over FILE_SETTLE_S (a loaded disk takes longer)
                n, _ = brought()
                deadline = time.monotonic() + FILE_SETTLE_MAX_S
                while True:
                    time.sleep(FILE_SETTLE_S)
                    m, gone = brought()
                    if m == n or time.monotonic() > deadline:
                        break
                    n = m
                out[f"cached{k}"] = m
                out["evicted"] = gone
                if k == 0:
                    out["Rss"] = _smaps_of(addr)["Rss"]
            vm0 = _fields("/proc/vmstat", " ")
            if libc.mlock(addr, ra * PAGE, True) == 0:
                vm1 = _fields("/proc/vmstat", " ")
                libc.mlock(addr, ra * PAGE, False)
                vm2 = _fields("/proc/vmstat", " ")
                for key in MLOCK_KEYS:
                    a, b = (vm0, vm1) if key in MLOCK_KEYS[:2] else (vm1, vm2)
                    out[key] = b.get(key, 0) - a.get(key, 0)
            libc.libc.munmap(addr, size)
        finally:
            os.close(fd)
    return out


def engine_file(config, ra_kb: int, max_sectors_kb: int | None = None) -> dict:
    """The file scenario on an engine machine with ``read_ahead_kb`` ``ra_kb`` (and the host's
    ``max_sectors_kb`` where known)."""
    import dataclasses

    from . import MAP_FIXED, MAP_SHARED as E_SHARED, PROT_READ as E_READ, Machine
    from .kernels import consts as K
    ra = ra_kb // 4
    size = 4 * ra * PAGE
    more = {} if max_sectors_kb is None else {"max_sectors_kb": max_sectors_kb}
    m = Machine(dataclasses.replace(config, read_ahead_kb=ra_kb, **more))
    m.mount("/d", "ext4", size=2 * size + (64 << 20))
    t = m.spawn("validate")
    fd = t.open("/d/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, size)
    t.fsync(fd)
    t.write_sysctl("vm.drop_caches", 1)       # the engine's own machine: its one file goes
    ii = m.vfs.fdtable(t.pid)[fd].ino
    addr = t.mmap(size, E_READ, E_SHARED | MAP_FIXED, fd=fd, addr=1 << 32)

    def resident() -> int:
        pc = m.vfs.state.pc
        pfns = pc[pc >= 0]
        return int((m.state.fr32[K.FR_OWNER, pfns] == ii).sum())
    out: dict[str, Any] = {"read_ahead_kb": ra_kb}
    for k, page in enumerate(file_faults(ra)):
        t.touch(addr + page * PAGE, 1, PAGE, write=False)
        out[f"cached{k}"] = resident()
        if k == 0:
            out["Rss"] = t.smaps(addr)["Rss"]
    vm0 = m.vmstat()
    t.mlock(addr, ra * PAGE)
    vm1 = m.vmstat()
    t.munlock(addr, ra * PAGE)
    vm2 = m.vmstat()
    for key in MLOCK_KEYS:
        a, b = (vm0, vm1) if key in MLOCK_KEYS[:2] else (vm1, vm2)
        out[key] = b[key] - a[key]
    return out


def run_host_file(directory: str = FILE_DIR) -> dict:
    r = subprocess.run(_child_cmd("file", {"dir": directory}), capture_output=True, text=True,
                       timeout=CHILD_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"host file scenario failed (exit {r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


FILE_MLOCK = tuple(_vmstat(key) for key in MLOCK_KEYS)
FILE_SCENARIO = "file-readahead"
FILE_DESCRIPTION = (f"a file of four readahead windows on the disk filesystem of {FILE_DIR}, "
                    "evicted, mapped shared, single pages faulted at a cold page and at the "
                    "readahead marks; then the first window mlocked and munlocked")


# ---- the folio group: the sizes of the page-cache folios a write makes on the disk filesystem ------

# (name, the pwrite calls (offset, length) in bytes): one file each, whose written pages are read
# through a mapping of the whole file
FOLIO_CASES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("100 pages written at page 3 by one pwrite", ((3 * PAGE, 100 * PAGE),)),
    ("4 MiB written at 0 by one pwrite", ((0, 4 << 20),)),
    ("64 pages written by one pwrite each", tuple((i * PAGE, PAGE) for i in range(64))),
)


def _written(writes) -> tuple[int, int]:
    """[first, end) bytes of a case's writes; the file's length is the end."""
    return min(o for o, _ in writes), max(o + n for o, n in writes)
FOLIO_SCENARIO = "ext4-folios"
FOLIO_DESCRIPTION = (f"files written on the ext4 filesystem of {FILE_DIR} by pwrite, mapped "
                     "shared 2 MiB-aligned and read: the folio sizes behind their pages "
                     "(pagemap + kpageflags: a head and its tails are one folio), and the "
                     "4 MiB file's FilePmdMapped")
FOLIO_PMD = "smaps FilePmdMapped of the 4 MiB file, read"


def folio_label(case: str) -> str:
    return f"folio sizes (pages): {case}"


def runs_text(runs: list[int]) -> str:
    """Folio sizes in address order, repeats folded: [1, 4, 32, 32, 1] -> "1 4 32x2 1"."""
    out: list[str] = []
    k = 0
    while k < len(runs):
        j = k
        while j < len(runs) and runs[j] == runs[k]:
            j += 1
        out.append(str(runs[k]) if j - k == 1 else f"{runs[k]}x{j - k}")
        k = j
    return " ".join(out)


def _fs_type(path: str) -> str | None:
    """The filesystem type of the mount holding ``path`` (/proc/self/mountinfo)."""
    path = os.path.realpath(path)
    best, kind = "", None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, right.split()[0]
    return kind


def host_folios(spec: dict) -> dict:
    """Run the folio scenario in this (child) process."""
    import struct
    import tempfile
    kind = _fs_type(spec["dir"])
    if kind != "ext4":
        return {"skip": f"{spec['dir']} is on {kind}, not ext4"}
    libc = _Libc()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mmcore-validate-", dir=spec["dir"]) as d:
        for k, (case, writes) in enumerate(FOLIO_CASES):
            fd = os.open(os.path.join(d, f"f{k}"), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                for off, n in writes:
                    os.pwrite(fd, b"\1" * n, off)
                first, length = _written(writes)
                addr = libc.map_isolated(length, prot=PROT_READ, flags=MAP_SHARED, fd=fd)
                libc.touch(addr + first, length - first, PAGE, False)
                n = (length - first) // PAGE
                with open("/proc/self/pagemap", "rb") as f:
                    f.seek((addr + first) // PAGE * 8)
                    ents = struct.unpack(f"<{n}Q", f.read(8 * n))
                pfns = [e & ((1 << 55) - 1) for e in ents]
                if any(e >> 63 & 1 and p == 0 for e, p in zip(ents, pfns)):
                    return {"skip": "no CAP_SYS_ADMIN: pagemap shows no PFNs"}
                with open("/proc/kpageflags", "rb") as f:
                    flags = []
                    for p in pfns:
                        f.seek(p * 8)
                        flags.append(struct.unpack("<Q", f.read(8))[0])
                out[case] = [list(ents), flags]      # the parent reads the folios from them
                if length == 4 << 20:
                    out[FOLIO_PMD] = _smaps_of(addr).get("FilePmdMapped", 0)
            finally:
                os.close(fd)
    return out


def run_host_folios(directory: str = FILE_DIR) -> dict:
    """The folio scenario in a fresh child interpreter: folio sizes read from its pagemap and
    kpageflags values (or ``{"skip": why}``)."""
    import numpy as np

    from .pageflags import folio_runs_from
    r = subprocess.run(_child_cmd("folios", {"dir": directory}), capture_output=True, text=True,
                       timeout=CHILD_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"host folio scenario failed (exit {r.returncode}): {r.stderr.strip()}")
    out = json.loads(r.stdout)
    for case, _ in FOLIO_CASES:
        if case in out:
            ents, flags = out[case]
            out[case] = runs_text(folio_runs_from(np.array(ents, np.uint64),
                                                  np.array(flags, np.uint64)))
    return out


def engine_folios(config) -> dict:
    """The folio scenario on an engine machine: the same files on an ext4 mount."""
    from . import MAP_FIXED, MAP_SHARED as E_SHARED, PROT_READ as E_READ, Machine
    from .pageflags import folio_runs
    m = Machine(config)
    m.mount("/d", "ext4", size=64 << 20)
    t = m.spawn("validate")
    out: dict[str, Any] = {}
    for k, (case, writes) in enumerate(FOLIO_CASES):
        fd = t.open(f"/d/f{k}", os.O_CREAT | os.O_RDWR)
        for off, n in writes:
            t.pwrite(fd, off, n)
        first, length = _written(writes)
        addr = t.mmap(length, E_READ, E_SHARED | MAP_FIXED, fd=fd, addr=(k + 1) << 32)
        t.touch(addr + first, length - first, PAGE, write=False)
        out[case] = runs_text(folio_runs(m.state, t.pagemap(addr + first, length - first)))
        if length == 4 << 20:
            out[FOLIO_PMD] = t.smaps(addr)["FilePmdMapped"]
    return out


def _dir_requirements(host: HostInfo, directory: str) -> str | None:
    """Why a scenario on the disk filesystem of ``directory`` cannot run here, or None."""
    why = _requirements(host, False)
    if why is None and not os.path.isdir(directory):
        why = f"no directory {directory}"
    return why


def _folio_checks(host: HostInfo, config, directory: str = FILE_DIR) -> list[Check]:
    why = _dir_requirements(host, directory)
    got: dict[str, Any] = {}
    if why is None:
        with host_turn():
            got = run_host_folios(directory)
        why = got.get("skip")
    eng = engine_folios(config) if why is None else {}
    checks = [Check(FOLIO_SCENARIO, folio_label(case), "", got.get(case), eng.get(case),
                    skipped=why, note="sizes in address order; 32x2 is two folios of 32 pages")
              for case, _ in FOLIO_CASES]
    checks.append(Check(FOLIO_SCENARIO, FOLIO_PMD, "kB", got.get(FOLIO_PMD), eng.get(FOLIO_PMD),
                        skipped=why, note="a fault maps a PMD-sized, aligned folio by its PMD"))
    return checks


def _file_checks(host: HostInfo, config, directory: str = FILE_DIR) -> list[Check]:
    why = _dir_requirements(host, directory)
    got: dict[str, Any] = {}
    eng: dict[str, Any] = {}
    with host_turn():
        if why is None:
            got = run_host_file(directory)
            why = got.get("skip")
        if why is None:
            eng = engine_file(config, got["read_ahead_kb"], got.get("max_sectors_kb"))
            _measure_again(FILE_MLOCK, got, eng, lambda: run_host_file(directory))
    ra = got.get("read_ahead_kb", 128) // 4
    pages = ", ".join(f"{where} at page {p}" for where, p in zip(FILE_FAULTS, file_faults(ra)))
    counted = ("mincore" if got.get("evicted") is None else
               "cachestat nr_cache + nr_evicted (pages evicted by another hand count, "
               f"{got['evicted']} in the run counted, run {got.get('runs', 1)} of at most "
               f"{FILE_RUNS})")
    checks = [Check(FILE_SCENARIO, "read_ahead_kb of the device", "", got.get("read_ahead_kb"),
                    eng.get("read_ahead_kb"), skipped=why, note="the engine takes the host's")]
    for k, where in enumerate(FILE_FAULTS):
        checks.append(Check(FILE_SCENARIO, f"pages cached after a fault on {where}", "",
                            got.get(f"cached{k}"), eng.get(f"cached{k}"), skipped=why,
                            note=f"{counted} over the whole file once its I/O settled; {pages}"))
    checks.append(Check(FILE_SCENARIO, "smaps Rss after the first fault", "kB", got.get("Rss"),
                        eng.get("Rss"), skipped=why, note="fault-around maps the cached pages"))
    no_mlock = why or (None if MLOCK_KEYS[0] in got else "mlock not allowed (RLIMIT_MEMLOCK)")
    for ob in FILE_MLOCK:
        checks.append(Check(FILE_SCENARIO, ob.label, ob.unit, got.get(ob.key), eng.get(ob.key),
                            ob.tol, no_mlock, ob.note))
    return checks


def run(host: HostInfo | None = None,
        scenarios: tuple[Scenario | TmpfsScenario, ...] = SCENARIOS + TMPFS_SCENARIOS,
        oom: bool = True, file: bool = True) -> Report:
    """Run every scenario on the host (where it can) and in the engine; the report."""
    host = probe_host() if host is None else host
    config = engine_config(host)
    checks = []
    for sc in scenarios:
        checks += _scenario_checks(sc, host, config)
    descr = {sc.name: sc.description for sc in scenarios}
    if file:
        checks += _file_checks(host, config)
        descr[FILE_SCENARIO] = FILE_DESCRIPTION
        checks += _folio_checks(host, config)
        descr[FOLIO_SCENARIO] = FOLIO_DESCRIPTION
    if oom:
        checks += _oom_checks(host, config)
        descr["oom-score"] = ("children with known RSS and oom_score_adj, stopped (SIGSTOP): "
                              "/proc/PID/oom_score against Task.oom_score on a machine with the "
                              "host's totalpages")
    engine = {"kernel": config.kernel, "thp_enabled": config.thp_enabled,
              "thp_defrag": config.defrag, "thp_use_zero_page": config.thp_use_zero_page,
              "shmem_enabled": config.shmem_enabled}
    return Report(host, engine, checks, descr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:           # a host scenario's child interpreter
        sys.exit(_child_main(sys.argv[2:]))
    from mmcore.cli import main
    sys.exit(main(["validate", "--host", *sys.argv[1:]]))
