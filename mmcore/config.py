"""Machine configuration: one kernel-version profile plus per-feature overrides.

``Config.kernel`` picks every version-dependent behaviour (see ``PROFILES``); any field left at
``None`` takes the profile's value. Validation happens here, once, and the kernels get a frozen
int64 array.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .kernels import consts as K

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGTP]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


def parse_size(value: int | str, field_name: str) -> int:
    """Bytes from an int or a string such as ``"4GiB"``, ``"512M"``, ``"4096"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{field_name}: expected a size in bytes or a string like '4GiB', got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ConfigError(f"{field_name}: expected a non-negative size, got {value}")
        return int(value)
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = (m.group(2) or "").upper().rstrip("B").rstrip("I")
            return int(m.group(1)) * _UNITS[unit]
    raise ConfigError(f"{field_name}: expected a size in bytes or a string like '4GiB', got {value!r}")


@dataclass(frozen=True)
class Profile:
    """What a kernel version does, for every behaviour that changed over time."""
    version: int                 # 3 digits: 310, 612, ...
    thp_defrag_default: str
    defrag_modes: tuple[str, ...]
    thp_disable: int             # consts.THPDIS_*
    zero_wp: int                 # consts.ZERO_WP_*
    thp_align: int               # consts.THP_ALIGN_*
    split_mode: int              # 1: 3.10 splits page and PMD together; 0: PMD only (4.5+)
    madv_collapse: bool
    collapse_rule: int = K.COLLAPSE_ONE_WRITABLE   # consts.COLLAPSE_*: khugepaged's writable test


_DEFRAG_3 = ("always", "madvise", "never")
_DEFRAG_5 = ("always", "defer", "defer+madvise", "madvise", "never")

PROFILES: dict[str, Profile] = {
    # 3.10: defrag=always by default; no prctl; write to the huge zero page allocates a THP
    "3.10": Profile(310, "always", _DEFRAG_3, K.THPDIS_NONE, K.ZERO_WP_THP, K.THP_ALIGN_NONE, 1, False,
                    K.COLLAPSE_ALL_WRITABLE),
    # 3.12: Johannes Weiner's reliable memcg OOM handling (the OOM work uses this)
    "3.12": Profile(312, "always", _DEFRAG_3, K.THPDIS_NONE, K.ZERO_WP_THP, K.THP_ALIGN_NONE, 1, False,
                    K.COLLAPSE_ALL_WRITABLE),
    # 3.15: PR_SET_THP_DISABLE sets VM_NOHUGEPAGE in mm->def_flags (commit a0715cc22601)
    "3.15": Profile(315, "always", _DEFRAG_3, K.THPDIS_DEF_FLAGS, K.ZERO_WP_THP, K.THP_ALIGN_NONE, 1, False,
                    K.COLLAPSE_ALL_WRITABLE),
    # 4.13: MMF_DISABLE_THP (commit 1860033237d4); defrag=madvise default since 4.6; PMD-only split
    # since 4.5; a write to the huge zero page splits it and copies 4 KiB; khugepaged counts the
    # zero page as none and needs one writable PTE (since about 4.0)
    "4.13": Profile(413, "madvise", _DEFRAG_5, K.THPDIS_MMF, K.ZERO_WP_SPLIT, K.THP_ALIGN_NONE, 0, False,
                    K.COLLAPSE_ONE_WRITABLE),
    # 6.18: PR_THP_DISABLE_EXCEPT_ADVISED; 2 MiB-multiple anonymous mmaps aligned (6.12);
    # do_huge_zero_wp_pmd allocates a THP on a write to the huge zero page (checked on 6.18);
    # MADV_COLLAPSE of a range whose pages are all mapped read-only succeeds (no writable test,
    # checked on 6.18)
    "6.18": Profile(618, "madvise", _DEFRAG_5, K.THPDIS_EXCEPT_ADVISED, K.ZERO_WP_THP, K.THP_ALIGN_MULTIPLE, 0, True,
                    K.COLLAPSE_ANY),
}

OOM_MODELS = ("legacy", "reliable", "current")

THP_ENABLED = {"never": K.THP_NEVER, "madvise": K.THP_MADVISE, "always": K.THP_ALWAYS}
THP_DEFRAG = {"never": K.DEFRAG_NEVER, "madvise": K.DEFRAG_MADVISE,
              "defer+madvise": K.DEFRAG_DEFER_MADVISE, "defer": K.DEFRAG_DEFER,
              "always": K.DEFRAG_ALWAYS}


@dataclass
class Costs:
    """Simulated cost of each event, in nanoseconds (a 3 GHz core; every one a parameter).

    Sources: TLB and walk latencies from Intel's optimization manual, table 2-15 (Skylake), and
    published Haswell measurements (STLB hit about 9 cycles, a cached walk about 20-30 cycles over
    four levels); fault, clearing and copying costs are typical of a current x86-64 server
    (clear_page at about 40 GB/s; an anonymous fault's exception and handle_mm_fault about 0.4 us).
    """
    access_ns: float = 0.333          # an access whose translation hits the L1 dTLB (1 cycle)
    stlb_hit_ns: float = 3.0          # STLB lookup after an L1 dTLB miss (9 cycles)
    walk_load_ns: float = 2.333       # one page-walk memory reference that hits in cache (7 cycles)
    fault_ns: float = 400.0           # exception entry/exit and handle_mm_fault, no page work
    clear_page_ns: float = 100.0      # zeroing 4 KiB (a 2 MiB page costs 512x)
    copy_page_ns: float = 200.0       # copying 4 KiB (copy-on-write, migration, collapse)
    pgtable_alloc_ns: float = 150.0   # allocating and zeroing a page-table page
    syscall_ns: float = 100.0         # system call entry and exit
    tlb_flush_ns: float = 100.0       # a TLB flush (INVLPG or a shootdown round)
    compact_scan_ns: float = 5.0      # compaction scanner, per pfn examined
    migrate_page_ns: float = 700.0    # migrating one 4 KiB page (copy, unmap, remap)
    copy_pte_ns: float = 2.0          # fork: copying one page-table leaf entry
    # files (spec section 8 calibrates the write-fault ratios: a first write to a sparse or
    # fallocated page costs several times one to an already-written page). XFS uses ext4's costs.
    pagecache_copy_ns: float = 150.0  # read()/write(): copying 4 KiB from or into the page cache
    pagecache_alloc_ns: float = 100.0  # allocating a page-cache page and indexing it
    mkwrite_ns: float = 150.0         # page_mkwrite / write_begin on mapped blocks (+ mtime)
    da_reserve_ns: float = 2500.0     # ext4/XFS delalloc: reserving one block, buffer heads, quota
    unwritten_map_ns: float = 2000.0  # ext4/XFS: mapping buffers over an unwritten extent
    block_alloc_ns: float = 500.0     # writeback: allocating one delalloc block (journalled)
    unwritten_convert_ns: float = 500.0  # writeback: unwritten -> written, per block (journalled)
    reclaim_page_ns: float = 200.0    # direct reclaim or drop_caches: freeing one clean page
    kswapd_page_ns: float = 200.0     # kswapd's own time per page it frees
    lookup_hit_ns: float = 150.0      # a path lookup whose dentry and inode are cached
    lookup_miss_ns: float = 2000.0    # ... that allocates them (plus an inode-table disk read)
    scan_pte_ns: float = 10.0         # khugepaged: examining one PTE (its folio, flags, mapcount)
    # swap (the device is an SSD like the file disks' default: 80 us read latency, 3 GB/s read,
    # 2 GB/s write)
    swap_read_ns: float = 81_365.0    # a swap-in: the read latency plus 4 KiB at 3 GB/s
    swap_write_ns: float = 2_048.0    # a swap-out: 4 KiB at 2 GB/s (queued: no latency waited)


@dataclass
class TLBConfig:
    """TLB geometry; defaults are Skylake's (Intel optimization manual, table 2-15)."""
    l1_4k_entries: int = 64
    l1_4k_ways: int = 4
    l1_2m_entries: int = 32
    l1_2m_ways: int = 4
    stlb_entries: int = 1536
    stlb_ways: int = 12
    pde_cache_entries: int = 32       # paging-structure cache of PMD entries (va >> 21)
    pdpte_cache_entries: int = 4      # paging-structure cache of PUD entries (va >> 30)


@dataclass
class KhugepagedConfig:
    """``/sys/kernel/mm/transparent_hugepage/khugepaged/*``; defaults are the kernel's (spec 3.6)."""
    pages_to_scan: int = 4096
    scan_sleep_millisecs: int = 10000
    alloc_sleep_millisecs: int = 60000
    defrag: int = 1
    max_ptes_none: int = 511
    max_ptes_swap: int = 64
    max_ptes_shared: int = 256

    LIMITS = {"pages_to_scan": (1, (1 << 32) - 1), "scan_sleep_millisecs": (0, (1 << 32) - 1),
              "alloc_sleep_millisecs": (0, (1 << 32) - 1), "defrag": (0, 1),
              "max_ptes_none": (0, 511), "max_ptes_swap": (0, 511), "max_ptes_shared": (0, 511)}

    def validate(self) -> None:
        for name, (lo, hi) in self.LIMITS.items():
            _check_int(f"khugepaged.{name}", getattr(self, name), lo, hi)


@dataclass
class Config:
    """A simulated machine. Sizes are bytes or strings such as ``"4GiB"``.

    THP defaults are mainline's Kconfig defaults (``enabled=always``, ``defrag=madvise``); many
    distributions build with ``enabled=madvise`` instead.
    """
    memory: int | str = "4GiB"
    swap: int | str = 0                       # a swap device's size (0: none); page 0 is its header
    swappiness: int = 60                      # vm.swappiness (0..200)
    kernel: str = "6.18"
    ncpus: int = 2
    thp_enabled: str = "always"
    thp_defrag: str | None = None             # None: the profile's default
    thp_use_zero_page: bool = True
    # transparent_hugepage/shrink_underused (6.12+): the deferred-split shrinker also splits THPs
    # with more than khugepaged.max_ptes_none zero-filled subpages (kernels older than 6.12 have
    # no such shrinker: this setting then does nothing)
    thp_shrink_underused: bool = True
    page_table_levels: int = 4
    mmap_base: int = K.TASK_SIZE - (128 << 20)  # x86 mmap_base() with ASLR off, 8 MiB stack
    tlb: TLBConfig = field(default_factory=TLBConfig)
    costs: Costs = field(default_factory=Costs)
    khugepaged: KhugepagedConfig = field(default_factory=KhugepagedConfig)
    # what a run records (event records go to HDF5 traces; off: the hot path pays nothing)
    record_faults: bool = False               # one record per page fault
    record_syscalls: bool = False             # one record per system call
    sample_interval_ns: int = 0               # vmstat/meminfo sampled every so often (0: off)
    # per-feature overrides of the profile (None: as the profile says)
    thp_disable_semantics: str | None = None  # "none", "def_flags", "mmf", "except_advised"
    zero_page_write: str | None = None        # "thp", "split"
    # page cache, writeback and reclaim (the vm.* sysctls' defaults)
    lru_policy: str = "linux"                 # "linux" (active/inactive), "lru", "clock", "fifo"
    dirty_background_ratio: int = 10
    dirty_ratio: int = 20
    dirty_expire_centisecs: int = 3000
    dirty_writeback_centisecs: int = 500
    min_free_kbytes: int | None = None        # None: the kernel's int_sqrt(lowmem_kbytes * 16)
    watermark_scale_factor: int = 10
    fault_around_bytes: int = 65536
    read_ahead_kb: int = 128
    # the disk's max_sectors_kb: bdi->io_pages, how far a read larger than a readahead window and
    # POSIX_FADV_WILLNEED may read at once (4.10+); 1280 is the block layer's usual default
    max_sectors_kb: int = 1280
    willwrite_cow_ahead: bool = False         # MADV_WILLWRITE future work: private mappings
    willwrite_full_prep: bool = False         # MADV_WILLWRITE future work: map pages dirty
    # out of memory: the kernel's OOM killer picks a victim and the failed fault restarts; False
    # leaves the failure to the caller as ENOMEM (what the reference model does)
    oom_killer: bool = True
    # compaction (the vm.* sysctls' defaults)
    compaction_proactiveness: int = 20        # 5.9+; 0 turns proactive compaction off
    extfrag_threshold: int = 500
    # the transparent huge page cache: "mainline" (tmpfs huge=, 4.8+ profiles), "2013" (the 2013
    # series: ramfs huge pages through write/read/fault, never mapped huge) or "2013+mmap" (the
    # same plus PMD mappings on fault)
    huge_page_cache: str = "mainline"
    shmem_enabled: str = "never"              # /sys/kernel/mm/transparent_hugepage/shmem_enabled
    # overcommit accounting (the vm.* sysctls; None: the kernel's boot-time defaults, from memory)
    overcommit_memory: int = 0                # 0 heuristic, 1 always, 2 strict
    overcommit_ratio: int = 50
    overcommit_kbytes: int = 0
    admin_reserve_kbytes: int | None = None   # min(3% of memory, 8 MiB)
    user_reserve_kbytes: int | None = None    # min(3% of memory, 128 MiB)
    # memory cgroups and the OOM handling model (None: the profile's). cgroup_version 1 or 2 (the
    # v2 memory controller is stable from 4.5). oom_model "legacy" (before 3.12: kill and wait in
    # the charge path, locks held), "reliable" (3.12: syscalls get ENOMEM, user faults unwind,
    # kill or wait, restart), "current" (4.19+: the kill back in the charge path, only the
    # oom_kill_disable wait deferred; the oom_reaper frees the victim's memory)
    cgroup_version: int | None = None
    oom_model: str | None = None
    hung_task_timeout_secs: int = 120         # kernel.hung_task_timeout_secs (0: never report)

    def __post_init__(self) -> None:
        if isinstance(self.tlb, Mapping):
            self.tlb = _from_mapping(TLBConfig, self.tlb, "tlb")
        if isinstance(self.costs, Mapping):
            self.costs = _from_mapping(Costs, self.costs, "costs")
        if isinstance(self.khugepaged, Mapping):
            self.khugepaged = _from_mapping(KhugepagedConfig, self.khugepaged, "khugepaged")
        self.validate()

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        return _from_mapping(cls, d, "config")

    @classmethod
    def from_toml(cls, path: str) -> "Config":
        import tomllib
        with open(path, "rb") as f:
            try:
                d = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"{path}: not valid TOML: {e}") from None
        return cls.from_dict(d.get("machine", d))

    # ---- validation ---------------------------------------------------------------------
    @property
    def profile(self) -> Profile:
        return PROFILES[self.kernel]

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory, "memory")

    @property
    def defrag(self) -> str:
        return self.thp_defrag if self.thp_defrag is not None else self.profile.thp_defrag_default

    def validate(self) -> None:
        if self.kernel not in PROFILES:
            raise ConfigError(f"kernel: expected one of {sorted(PROFILES)}, got {self.kernel!r}")
        mem = self.memory_bytes
        if mem < (4 << 20) or mem % (4 << 20):
            raise ConfigError(f"memory: expected a positive multiple of 4 MiB, got {self.memory!r}")
        swap = parse_size(self.swap, "swap")
        if 0 < swap < 40 << 10:
            raise ConfigError(f"swap: expected 0 or at least 40 KiB (10 pages, as mkswap "
                              f"requires), got {self.swap!r}")
        _check_int("swappiness", self.swappiness, 0, 200 if self.profile.version >= 508 else 100)
        _check_int("ncpus", self.ncpus, 1, 4096)
        if self.thp_enabled not in THP_ENABLED:
            raise ConfigError(f"thp_enabled: expected one of {list(THP_ENABLED)}, got {self.thp_enabled!r}")
        if self.defrag not in self.profile.defrag_modes:
            raise ConfigError(f"thp_defrag: kernel {self.kernel} offers {list(self.profile.defrag_modes)}, "
                              f"got {self.defrag!r}")
        if not isinstance(self.thp_use_zero_page, bool):
            raise ConfigError(f"thp_use_zero_page: expected true or false, got {self.thp_use_zero_page!r}")
        if not isinstance(self.thp_shrink_underused, bool):
            raise ConfigError(f"thp_shrink_underused: expected true or false, got "
                              f"{self.thp_shrink_underused!r}")
        if self.page_table_levels not in (4, 5):
            raise ConfigError(f"page_table_levels: expected 4 or 5, got {self.page_table_levels!r}")
        _check_int("mmap_base", self.mmap_base, 1 << 24, K.TASK_SIZE)
        if self.mmap_base % 4096:
            raise ConfigError(f"mmap_base: expected a page-aligned address, got {self.mmap_base:#x}")
        for name in ("l1_4k", "l1_2m", "stlb"):
            n = getattr(self.tlb, f"{name}_entries")
            w = getattr(self.tlb, f"{name}_ways")
            _check_int(f"tlb.{name}_entries", n, 1, 1 << 20)
            _check_int(f"tlb.{name}_ways", w, 1, n)
            if n % w:
                raise ConfigError(f"tlb.{name}_entries: {n} is not a multiple of tlb.{name}_ways = {w}")
        _check_int("tlb.pde_cache_entries", self.tlb.pde_cache_entries, 0, 1 << 16)
        _check_int("tlb.pdpte_cache_entries", self.tlb.pdpte_cache_entries, 0, 1 << 16)
        if not isinstance(self.khugepaged, KhugepagedConfig):
            raise ConfigError(f"khugepaged: expected a table of settings, got {self.khugepaged!r}")
        self.khugepaged.validate()
        for f in fields(Costs):
            v = getattr(self.costs, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"costs.{f.name}: expected a non-negative number of ns, got {v!r}")
        for name in ("record_faults", "record_syscalls"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        _check_int("sample_interval_ns", self.sample_interval_ns, 0, 1 << 50)
        if self.thp_disable_semantics not in (None, "none", "def_flags", "mmf", "except_advised"):
            raise ConfigError("thp_disable_semantics: expected one of none, def_flags, mmf, "
                              f"except_advised, got {self.thp_disable_semantics!r}")
        if self.zero_page_write not in (None, "thp", "split"):
            raise ConfigError(f"zero_page_write: expected 'thp' or 'split', got {self.zero_page_write!r}")
        if self.lru_policy not in K.POLICY_NAMES:
            raise ConfigError(f"lru_policy: expected one of {list(K.POLICY_NAMES)}, got {self.lru_policy!r}")
        _check_int("dirty_background_ratio", self.dirty_background_ratio, 0, 100)
        _check_int("dirty_ratio", self.dirty_ratio, 1, 100)
        _check_int("dirty_expire_centisecs", self.dirty_expire_centisecs, 0, (1 << 31) - 1)
        _check_int("dirty_writeback_centisecs", self.dirty_writeback_centisecs, 1, (1 << 31) - 1)
        if self.min_free_kbytes is not None:
            _check_int("min_free_kbytes", self.min_free_kbytes, 128, self.memory_bytes >> 11)
        _check_int("watermark_scale_factor", self.watermark_scale_factor, 1, 3000)
        _check_int("fault_around_bytes", self.fault_around_bytes, 4096, 1 << 21)
        if self.fault_around_bytes & (self.fault_around_bytes - 1):
            raise ConfigError(f"fault_around_bytes: expected a power of two, got {self.fault_around_bytes}")
        _check_int("read_ahead_kb", self.read_ahead_kb, 0, 1 << 20)
        _check_int("max_sectors_kb", self.max_sectors_kb, 4, 1 << 20)
        if isinstance(self.huge_page_cache, int) and not isinstance(self.huge_page_cache, bool):
            self.huge_page_cache = str(self.huge_page_cache)      # "2013" read as a number
        if self.huge_page_cache not in K.HPC_NAMES:
            raise ConfigError(f"huge_page_cache: expected one of {list(K.HPC_NAMES)}, "
                              f"got {self.huge_page_cache!r}")
        if self.shmem_enabled not in K.SHMEM_HUGE_NAMES:
            raise ConfigError(f"shmem_enabled: expected one of {list(K.SHMEM_HUGE_NAMES)}, "
                              f"got {self.shmem_enabled!r}")
        if self.shmem_enabled != "never" and self.profile.version < 408:
            raise ConfigError(f"shmem_enabled: kernel {self.kernel} has no tmpfs huge pages (4.8+), "
                              f"got {self.shmem_enabled!r}")
        _check_int("overcommit_memory", self.overcommit_memory, 0, 2)
        _check_int("overcommit_ratio", self.overcommit_ratio, 0, 1 << 31)
        _check_int("overcommit_kbytes", self.overcommit_kbytes, 0, 1 << 50)
        for name in ("admin_reserve_kbytes", "user_reserve_kbytes"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 0, 1 << 50)
        for name in ("willwrite_cow_ahead", "willwrite_full_prep"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        if not isinstance(self.oom_killer, bool):
            raise ConfigError(f"oom_killer: expected true or false, got {self.oom_killer!r}")
        if self.cgroup_version is not None:
            if self.cgroup_version not in (1, 2) or isinstance(self.cgroup_version, bool):
                raise ConfigError(f"cgroup_version: expected 1 or 2, got {self.cgroup_version!r}")
            if self.cgroup_version == 2 and self.profile.version < 405:
                raise ConfigError(f"cgroup_version: kernel {self.kernel} has no cgroup v2 memory "
                                  f"controller (4.5+), got 2")
        if self.oom_model is not None and self.oom_model not in OOM_MODELS:
            raise ConfigError(f"oom_model: expected one of {list(OOM_MODELS)}, got {self.oom_model!r}")
        _check_int("hung_task_timeout_secs", self.hung_task_timeout_secs, 0, 1 << 31)
        _check_int("compaction_proactiveness", self.compaction_proactiveness, 0, 100)
        _check_int("extfrag_threshold", self.extfrag_threshold, 0, 1000)

    @property
    def min_free_kbytes_effective(self) -> int:
        """``calculate_min_free_kbytes``: int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144],
        raised while THP is enabled to khugepaged's ``set_recommended_min_free_kbytes`` (for our
        one zone: 2 + MIGRATE_PCPTYPES^2 = 11 pageblocks, at most 5% of memory)."""
        if self.min_free_kbytes is not None:
            return self.min_free_kbytes
        import math
        kb = self.memory_bytes >> 10
        v = min(max(math.isqrt(kb * 16), 128), 262144)
        if self.thp_enabled != "never":
            recommended = min(11 * 512 * 4, kb // 20)
            v = max(v, recommended)
        return v

    def watermarks(self) -> tuple[int, int, int]:
        """(min, low, high) in pages, as ``__setup_per_zone_wmarks`` sets them for one zone."""
        pages = self.memory_bytes >> 12
        wmin = self.min_free_kbytes_effective >> 2
        tmp = max(wmin >> 2, pages * self.watermark_scale_factor // 10000)
        return wmin, wmin + tmp, wmin + 2 * tmp

    @property
    def reserves_kbytes(self) -> tuple[int, int]:
        """(admin_reserve_kbytes, user_reserve_kbytes): init_admin_reserve / init_user_reserve
        take 1/32 of the free memory at boot, at most 8 MiB and 128 MiB."""
        free_kb = self.memory_bytes >> 10
        a = self.admin_reserve_kbytes
        u = self.user_reserve_kbytes
        return (min(free_kb // 32, 1 << 13) if a is None else a,
                min(free_kb // 32, 1 << 17) if u is None else u)

    @property
    def cgroups(self) -> int:
        """The cgroup hierarchy's version: the setting, else 1 before 4.5 and 2 from it."""
        if self.cgroup_version is not None:
            return self.cgroup_version
        return 1 if self.profile.version < 405 else 2

    @property
    def oom(self) -> str:
        """The OOM handling model: the setting, else the profile's (legacy before 3.12,
        reliable 3.12 to 4.18, current from 4.19)."""
        if self.oom_model is not None:
            return self.oom_model
        v = self.profile.version
        return "legacy" if v < 312 else "reliable" if v < 419 else "current"

    # ---- the kernels' view ----------------------------------------------------------------
    def to_array(self) -> np.ndarray:
        p = self.profile
        c = np.zeros(K.NR_CFG, np.int64)
        c[K.C_KERNEL] = p.version
        c[K.C_THP_ENABLED] = THP_ENABLED[self.thp_enabled]
        c[K.C_THP_DEFRAG] = THP_DEFRAG[self.defrag]
        c[K.C_USE_ZERO_PAGE] = int(self.thp_use_zero_page)
        c[K.C_SHRINK_UNDERUSED] = int(p.version >= 612 and self.thp_shrink_underused)
        c[K.C_ZERO_REMAP] = int(p.version >= 612)
        sem = self.thp_disable_semantics
        c[K.C_THP_DISABLE_MODE] = p.thp_disable if sem is None else {
            "none": K.THPDIS_NONE, "def_flags": K.THPDIS_DEF_FLAGS, "mmf": K.THPDIS_MMF,
            "except_advised": K.THPDIS_EXCEPT_ADVISED}[sem]
        zw = self.zero_page_write
        c[K.C_ZERO_WP] = p.zero_wp if zw is None else {"thp": K.ZERO_WP_THP, "split": K.ZERO_WP_SPLIT}[zw]
        c[K.C_THP_ALIGN] = p.thp_align
        c[K.C_SPLIT_MODE] = p.split_mode
        c[K.C_COLLAPSE_RULE] = p.collapse_rule
        c[K.C_COMPACT_PROACTIVENESS] = self.compaction_proactiveness
        c[K.C_EXTFRAG_THRESHOLD] = self.extfrag_threshold
        c[K.C_KCOMPACTD] = int(p.version >= 406)
        c[K.C_OOM_KILLER] = int(self.oom_killer)
        c[K.C_HPC_MODEL] = K.HPC_NAMES.index(self.huge_page_cache)
        c[K.C_OVERCOMMIT] = self.overcommit_memory
        c[K.C_OVERCOMMIT_RATIO] = self.overcommit_ratio
        c[K.C_OVERCOMMIT_KBYTES] = self.overcommit_kbytes
        c[K.C_ADMIN_RESERVE_KB], c[K.C_USER_RESERVE_KB] = self.reserves_kbytes
        c[K.C_SHMEM_ENABLED] = K.SHMEM_HUGE_NAMES.index(self.shmem_enabled)
        c[K.C_SWAPPINESS] = self.swappiness
        c[K.C_WORKINGSET] = 2 if p.version >= 509 else int(p.version >= 315)
        c[K.C_SWAP_PAGES] = max(parse_size(self.swap, "swap") // 4096 - 1, 0)
        kh = self.khugepaged
        c[K.C_KH_PAGES_TO_SCAN] = kh.pages_to_scan
        c[K.C_KH_SCAN_SLEEP_PS] = kh.scan_sleep_millisecs * 1_000_000_000
        c[K.C_KH_ALLOC_SLEEP_PS] = kh.alloc_sleep_millisecs * 1_000_000_000
        c[K.C_KH_DEFRAG] = kh.defrag
        c[K.C_KH_MAX_PTES_NONE] = kh.max_ptes_none
        c[K.C_KH_MAX_PTES_SWAP] = kh.max_ptes_swap
        c[K.C_KH_MAX_PTES_SHARED] = kh.max_ptes_shared
        c[K.C_PT_LEVELS] = self.page_table_levels
        c[K.C_NCPUS] = self.ncpus
        t = self.tlb
        c[K.C_L1_4K_SETS], c[K.C_L1_4K_WAYS] = t.l1_4k_entries // t.l1_4k_ways, t.l1_4k_ways
        c[K.C_L1_2M_SETS], c[K.C_L1_2M_WAYS] = t.l1_2m_entries // t.l1_2m_ways, t.l1_2m_ways
        c[K.C_STLB_SETS], c[K.C_STLB_WAYS] = t.stlb_entries // t.stlb_ways, t.stlb_ways
        c[K.C_PDE_CACHE] = t.pde_cache_entries
        c[K.C_PDPTE_CACHE] = t.pdpte_cache_entries
        c[K.C_MMAP_BASE] = self.mmap_base
        c[K.C_NR_FRAMES] = self.memory_bytes // 4096
        c[K.C_RECORD] = (K.REC_FAULT if self.record_faults else 0) | (
            K.REC_SYSCALL if self.record_syscalls else 0)
        c[K.C_SAMPLE_PS] = self.sample_interval_ns * 1000
        c[K.C_LRU_POLICY] = K.POLICY_NAMES.index(self.lru_policy)
        c[K.C_DIRTY_BG_RATIO] = self.dirty_background_ratio
        c[K.C_DIRTY_RATIO] = self.dirty_ratio
        c[K.C_DIRTY_EXPIRE_PS] = min(self.dirty_expire_centisecs * 10_000_000_000, 1 << 62)
        c[K.C_DIRTY_WB_PS] = min(self.dirty_writeback_centisecs * 10_000_000_000, 1 << 62)
        c[K.C_FAULT_AROUND] = self.fault_around_bytes >> 12
        c[K.C_READ_AHEAD] = self.read_ahead_kb >> 2
        c[K.C_IO_PAGES] = self.max_sectors_kb >> 2
        c[K.C_WILLWRITE] = (K.WW_COW_AHEAD if self.willwrite_cow_ahead else 0) | (
            K.WW_FULL_PREP if self.willwrite_full_prep else 0)
        k = self.costs
        for idx, ns in ((K.C_COST_PC_COPY, k.pagecache_copy_ns), (K.C_COST_PC_ALLOC, k.pagecache_alloc_ns),
                        (K.C_COST_MKWRITE, k.mkwrite_ns), (K.C_COST_DA_RESERVE, k.da_reserve_ns),
                        (K.C_COST_UNWRITTEN_MAP, k.unwritten_map_ns),
                        (K.C_COST_BLOCK_ALLOC, k.block_alloc_ns),
                        (K.C_COST_UNWRITTEN_CONVERT, k.unwritten_convert_ns),
                        (K.C_COST_RECLAIM_PAGE, k.reclaim_page_ns), (K.C_COST_KSWAPD_PAGE, k.kswapd_page_ns),
                        (K.C_COST_LOOKUP_HIT, k.lookup_hit_ns), (K.C_COST_LOOKUP_MISS, k.lookup_miss_ns),
                        (K.C_COST_SWAP_READ, k.swap_read_ns), (K.C_COST_SWAP_WRITE, k.swap_write_ns)):
            c[idx] = round(ns * 1000)
        for idx, ns in ((K.C_COST_ACCESS, k.access_ns), (K.C_COST_STLB_HIT, k.stlb_hit_ns),
                        (K.C_COST_WALK_LOAD, k.walk_load_ns), (K.C_COST_FAULT, k.fault_ns),
                        (K.C_COST_CLEAR_PAGE, k.clear_page_ns), (K.C_COST_COPY_PAGE, k.copy_page_ns),
                        (K.C_COST_PGTABLE_ALLOC, k.pgtable_alloc_ns), (K.C_COST_SYSCALL, k.syscall_ns),
                        (K.C_COST_TLB_FLUSH, k.tlb_flush_ns), (K.C_COST_COMPACT_SCAN, k.compact_scan_ns),
                        (K.C_COST_MIGRATE_PAGE, k.migrate_page_ns),
                        (K.C_COST_COPY_PTE, k.copy_pte_ns), (K.C_COST_SCAN_PTE, k.scan_pte_ns)):
            c[idx] = round(ns * 1000)
        return c

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_int(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ConfigError(f"{name}: expected an integer in [{lo}, {hi}], got {v!r}")


def _from_mapping(cls: type, d: Mapping[str, Any], where: str) -> Any:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a table of settings, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    try:
        return cls(**dict(d))
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None
