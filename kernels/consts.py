"""Constants shared by the kernels: the Linux values where Linux has one.

Flag-bit constants are module globals on purpose: Numba freezes them at compile time, which is what
a constant wants. Tunables never live here; they travel in the ``cfg`` array.
"""

# ---- geometry -------------------------------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PMD_SHIFT = 21
HPAGE_PMD_SIZE = 1 << PMD_SHIFT
HPAGE_PMD_ORDER = 9
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER
PUD_SHIFT = 30
PGDIR_SHIFT = 39
P4D_SHIFT = 48
PTRS_PER_TABLE = 512
TASK_SIZE = 0x7FFFFFFFF000
MMAP_MIN_ADDR = 65536

NR_PAGE_ORDERS = 11          # orders 0..10 (MAX_PAGE_ORDER = 10 since 6.8)
MAX_PAGE_ORDER = 10
PAGEBLOCK_ORDER = 9
MAX_ORDER_NR_PAGES = 1 << MAX_PAGE_ORDER

# ---- migratetypes (include/linux/mmzone.h) ----------------------------------------------------
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_PCPTYPES = 3

# ---- x86-64 page-table entry bits (arch/x86/include/asm/pgtable_types.h) ----------------------
_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_PWT = 1 << 3
_PAGE_PCD = 1 << 4
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7
_PAGE_GLOBAL = 1 << 8
_PAGE_SPECIAL = 1 << 9
_PAGE_SOFT_DIRTY = 1 << 11
_PAGE_PROTNONE = _PAGE_GLOBAL   # a PROT_NONE leaf: not present, still mapped (x86)
_PAGE_NX = -(1 << 63)        # bit 63, the sign bit of an int64
PTE_PFN_MASK = ((1 << 52) - 1) & ~((1 << 12) - 1)
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY

# ---- struct page flags (our own compact set; names follow include/linux/page-flags.h) --------
PG_buddy = 1 << 0            # head of a free buddy block (order in fr_order)
PG_head = 1 << 1             # head of an allocated folio (order in fr_order)
PG_tail = 1 << 2             # tail page of an allocated folio of order > 0
PG_anon = 1 << 3             # anonymous folio (owner = anon root, index = virtual page number)
PG_pgtable = 1 << 4          # page-table page (owner = mm, index = page-table pool slot)
PG_hugezero = 1 << 5         # the huge zero folio
PG_lru = 1 << 6
PG_dirty = 1 << 7
PG_mlocked = 1 << 8
PG_reserved = 1 << 9         # the 4 KiB zero page
PG_anon_exclusive = 1 << 10  # PageAnonExclusive: no other mm may map this page
PG_lazyfree = 1 << 11        # MADV_FREE'd and not written since
PG_referenced = 1 << 12      # folio_mark_accessed saw one access (or CLOCK's reference bit)
PG_active = 1 << 13          # on the active LRU list
PG_writeback = 1 << 14       # under writeback I/O
PG_workingset = 1 << 15      # was active before (refault accounting)
PG_swapbacked = 1 << 16      # tmpfs/ramfs page: cannot be read back from a disk
PG_reclaim = 1 << 17         # reclaim wants it written and rotated to the inactive tail
PG_unevictable = 1 << 18     # on the unevictable list (ramfs, mlocked): counted, never linked
PG_mappedtodisk = 1 << 19    # its buffers map blocks already (write_begin/page_mkwrite done)
PG_falloc_new = 1 << 20      # tmpfs: added by fallocate and not written yet (reads as a hole)
PG_partially_mapped = 1 << 21  # THP head: some subpages unmapped (it is on the deferred split queue)
PG_file_thp = 1 << 22        # every frame of a large page-cache folio (head: PG_head too), its
                             # order in bits FOLIO_ORDER_SHIFT.. of each frame's flags (so any
                             # frame finds its head at once); page[1]'s FR_NEXT holds the entire
                             # (PMD) mapcount of a PMD-sized one (FILE_ENTIRE)
PG_ramfs = 1 << 23           # a page of an unevictable mapping (ramfs: mapping_unevictable)
PG_readahead = 1 << 24       # readahead's mark: reaching it starts the next window (async)
PG_deferred = 1 << 25        # THP head: on the deferred split queue (folio->_deferred_list linked)
PG_written = 1 << 26         # a store reached the page since it was zero-filled: its content is
                             # not all zeros (thp_underused, the zero-page remap on split, 6.12+)
FOLIO_ORDER_SHIFT = 27       # bits 27-30: the order of the large page-cache folio (PG_file_thp)
FOLIO_ORDER_MASK = 15 << FOLIO_ORDER_SHIFT

# ---- LRU lists (include/linux/mmzone.h enum lru_list) and replacement policies ---------------
LRU_INACTIVE_ANON = 0
LRU_ACTIVE_ANON = 1
LRU_INACTIVE_FILE = 2
LRU_ACTIVE_FILE = 3
LRU_UNEVICTABLE = 4
NR_LRU_LISTS = 5
LV_HEAD = 0                  # lru array rows: head pfn of each list (-1: empty)
LV_TAIL = NR_LRU_LISTS       # tail pfn of each list
LV_PAGES = 2 * NR_LRU_LISTS  # pages on each list (lru_zone_size)
SH_KEY = 0                   # shadow table rows (kernels/workingset.py): (inode + 1) << 40 | index
SH_VAL = 1                   # the packed shadow: eviction age, memcg, workingset bit, generation
SH_WAYS = 4                  # entries per set of the shadow table
LV_AGE = 3 * NR_LRU_LISTS     # nonresident_age: evictions and activations in this lruvec alone
NR_LV_FIELDS = 3 * NR_LRU_LISTS + 1
SWAP_CLUSTER_MAX = 32
MAX_WRITEBACK_PAGES = 1024   # background writeback's chunk (fs-writeback.c, 4 MiB)
FAULT_PC_RESERVE = 1024      # page-cache entries (and writeback slots) a file fault may need

POLICY_LINUX = 0             # active/inactive lists, folio_mark_accessed, shrink_active_list
POLICY_LRU = 1               # exact LRU: every access moves the folio to the head
POLICY_CLOCK = 2             # second chance: one reference bit, FIFO order otherwise
POLICY_FIFO = 3
POLICY_NAMES = ("linux", "lru", "clock", "fifo")

# fr_i32 rows
FR_NEXT = 0
FR_PREV = 1
FR_OWNER = 2                 # for page[1] of a large folio: the entire (PMD) mapcount
FR_MAPCOUNT = 3
FR_MEMCG = 4                 # packed word: the memcg the frame's folio is charged to (bits 0-15,
                             # State.fr_memcg), its order (16-23, State.fr_order) and, on a
                             # pageblock's first frame, the pageblock's migratetype (24-31)
FR_MEMCG_MASK = 0xFFFF       # the memcg id's bits of the FR_MEMCG word
NR_FR_I32 = 5

# ---- VM flags (include/linux/mm.h) ------------------------------------------------------------
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_LOCKED = 0x2000
VM_SEQ_READ = 0x8000         # MADV_SEQUENTIAL: fault readahead reads ahead, not around
VM_RAND_READ = 0x10000       # MADV_RANDOM: no fault readahead
VM_LOCKONFAULT = 0x00080000
VM_ACCOUNT = 0x00100000     # the mapping's pages are charged to vm_committed_as
VM_NORESERVE = 0x00200000   # MAP_NORESERVE outside overcommit mode 2: not charged
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000

# ---- mm->flags bits (include/linux/mm_types.h) ------------------------------------------------
MMF_VM_HUGEPAGE = 17
MMF_DISABLE_THP_EXCEPT_ADVISED = 23
MMF_DISABLE_THP_COMPLETELY = 24   # MMF_DISABLE_THP in 4.13 .. 6.17
MMF_OOM_SKIP = 21            # the OOM killer passes over this mm (reaped, or exit_mmap done)
MMF_OOM_VICTIM = 25          # the mm belongs to an OOM victim (mm_is_oom_victim)

# ---- mmap / madvise / prctl (include/uapi) -----------------------------------------------------
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_FIXED_NOREPLACE = 0x100000

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_COLD = 20               # 5.4+
MADV_PAGEOUT = 21            # 5.4+
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_COLLAPSE = 25

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4

PR_SET_THP_DISABLE = 41
PR_GET_THP_DISABLE = 42
PR_THP_DISABLE_EXCEPT_ADVISED = 1 << 1

# ---- errno (include/uapi/asm-generic/errno-base.h) --------------------------------------------
EPERM = 1
EINTR = 4
EAGAIN = 11
ENOMEM = 12
EFAULT = 14
EBUSY = 16
EEXIST = 17
EINVAL = 22
ENOSPC = 28

# ---- kernel status codes beyond errno (negative errno is an error; these are positive) -------
OK = 0
SEGV = 1000                  # access outside a VMA or against its protection
NEED_GROW = 1001             # a pool is full: Python enlarges it and re-enters at the resume index
FLUSH = 1002                 # the event buffer is full
BLOCKED = 1003               # the task waits (lock, memory)
TIMER = 1004                 # background work (khugepaged) is due: run it, then re-enter
OOM = 1005                   # an allocation failed in a way that needs the OOM path
SIGBUS = 1006                # a file-mapping access beyond the end of the file (or mkwrite ENOSPC)
KILLED = 1007                # batch runs: the task was killed (OOM killer) before or during this op

# ---- sysfs THP modes ---------------------------------------------------------------------------
THP_NEVER = 0
THP_MADVISE = 1
THP_ALWAYS = 2
DEFRAG_NEVER = 0
DEFRAG_MADVISE = 1
DEFRAG_DEFER_MADVISE = 2
DEFRAG_DEFER = 3
DEFRAG_ALWAYS = 4

# THP disable semantics by kernel profile
THPDIS_NONE = 0              # 3.10, 3.12: no prctl
THPDIS_DEF_FLAGS = 1         # 3.15 .. 4.12: VM_NOHUGEPAGE in mm->def_flags
THPDIS_MMF = 2               # 4.13 .. 6.17: MMF_DISABLE_THP master override
THPDIS_EXCEPT_ADVISED = 3    # 6.18: adds PR_THP_DISABLE_EXCEPT_ADVISED

# write fault on the huge zero page
ZERO_WP_THP = 0              # allocate a THP (3.10; 6.18's do_huge_zero_wp_pmd), else split
ZERO_WP_SPLIT = 1            # split to 4 KiB zero-page PTEs and COW one page

# mmap THP alignment of anonymous mappings
THP_ALIGN_NONE = 0           # before 6.8
THP_ALIGN_ANY = 1            # 6.8 .. 6.11: any length >= 2 MiB
THP_ALIGN_MULTIPLE = 2       # 6.12+: lengths that are a multiple of 2 MiB

# ---- cfg array layout (validated, frozen in Python; see mmcore/config.py) ----------------------
C_KERNEL = 0                 # version as 3 digits: 310, 312, 315, 413, 618
C_THP_ENABLED = 1
C_THP_DEFRAG = 2
C_USE_ZERO_PAGE = 3
C_THP_DISABLE_MODE = 4
C_ZERO_WP = 5
C_THP_ALIGN = 6
C_PT_LEVELS = 7
C_NCPUS = 8
C_L1_4K_SETS = 9
C_L1_4K_WAYS = 10
C_L1_2M_SETS = 11
C_L1_2M_WAYS = 12
C_STLB_SETS = 13
C_STLB_WAYS = 14
C_PDE_CACHE = 15
C_PDPTE_CACHE = 16
C_MMAP_BASE = 17
C_NR_FRAMES = 18
C_COST_ACCESS = 19
C_COST_STLB_HIT = 20
C_COST_WALK_LOAD = 21
C_COST_FAULT = 22
C_COST_CLEAR_PAGE = 23
C_COST_COPY_PAGE = 24
C_COST_PGTABLE_ALLOC = 25
C_COST_SYSCALL = 26
C_COST_TLB_FLUSH = 27
C_COST_COMPACT_SCAN = 28
C_COST_MIGRATE_PAGE = 29
C_RECORD = 30                # bit mask of event classes recorded
C_SPLIT_MODE = 31            # 0: split PMD only (4.5+); 1: split page and PMD together (3.10)
C_COST_COPY_PTE = 32         # fork: per leaf entry copied
C_SAMPLE_PS = 33             # interval of the meminfo/vmstat sampler (0: off)
C_LRU_POLICY = 34            # POLICY_*
C_COST_PC_COPY = 35          # read()/write(): copying 4 KiB to or from a page-cache page
C_COST_PC_ALLOC = 36         # allocating a page-cache page and adding it (not zeroing)
C_COST_MKWRITE = 37          # page_mkwrite (or write_begin) on a page whose blocks are mapped
C_COST_DA_RESERVE = 38       # delalloc: reserving one block (ext4_da_get_block_prep; XFS too)
C_COST_UNWRITTEN_MAP = 39    # preparing a buffer over an unwritten (fallocated) block
C_COST_BLOCK_ALLOC = 40      # writeback: allocating one delalloc block (journalled)
C_COST_UNWRITTEN_CONVERT = 41  # writeback: converting one unwritten block to written
C_COST_RECLAIM_PAGE = 42     # reclaim: isolating and freeing one clean page
C_COST_LOOKUP_MISS = 43      # a path lookup that misses the dentry/inode cache
C_COST_LOOKUP_HIT = 44
C_DIRTY_BG_RATIO = 45        # vm.dirty_background_ratio (percent)
C_DIRTY_RATIO = 46           # vm.dirty_ratio (percent)
C_DIRTY_EXPIRE_PS = 47       # vm.dirty_expire_centisecs, in ps
C_DIRTY_WB_PS = 48           # vm.dirty_writeback_centisecs, in ps
C_FAULT_AROUND = 49          # fault_around_bytes / 4096
C_READ_AHEAD = 50            # read_ahead_kb / 4
C_WILLWRITE = 51             # MADV_WILLWRITE extensions: WW_* bits
C_COST_KSWAPD_PAGE = 52      # kswapd: scanning and freeing one page, on its own clock
C_KH_PAGES_TO_SCAN = 53      # khugepaged/pages_to_scan (PTEs per wakeup)
C_KH_SCAN_SLEEP_PS = 54      # khugepaged/scan_sleep_millisecs, in ps
C_KH_ALLOC_SLEEP_PS = 55     # khugepaged/alloc_sleep_millisecs, in ps
C_KH_DEFRAG = 56             # khugepaged/defrag: its allocations may compact
C_KH_MAX_PTES_NONE = 57
C_KH_MAX_PTES_SWAP = 58
C_KH_MAX_PTES_SHARED = 59
C_COLLAPSE_RULE = 60         # COLLAPSE_*: which present PTEs a collapse needs writable
C_COST_SCAN_PTE = 61         # khugepaged: examining one PTE (its page, flags, mapcount)
C_COMPACT_PROACTIVENESS = 62  # vm.compaction_proactiveness (0..100; 5.9+, else 0)
C_EXTFRAG_THRESHOLD = 63     # vm.extfrag_threshold (0..1000)
C_KCOMPACTD = 64             # 1: the profile has kcompactd (4.6+)
C_OOM_KILLER = 65            # 1: a user fault that finds no memory stops with OOM (the OOM killer)
C_HPC_MODEL = 66             # HPC_*: which transparent huge page cache the machine has
C_SHMEM_ENABLED = 67         # /sys/kernel/mm/transparent_hugepage/shmem_enabled (SHMEM_HUGE_*)
C_OVERCOMMIT = 68            # vm.overcommit_memory (OVERCOMMIT_*)
C_OVERCOMMIT_RATIO = 69      # vm.overcommit_ratio (percent)
C_OVERCOMMIT_KBYTES = 70     # vm.overcommit_kbytes (0: the ratio applies)
C_ADMIN_RESERVE_KB = 71      # vm.admin_reserve_kbytes
C_USER_RESERVE_KB = 72       # vm.user_reserve_kbytes
C_SWAPPINESS = 73            # vm.swappiness (0..200)
C_COST_SWAP_READ = 74        # ps: reading one page from the swap device (latency + transfer)
C_COST_SWAP_WRITE = 75       # ps: writing one page to it (its transfer: writes are queued)
C_SWAP_PAGES = 76            # total_swap_pages: the swap device's slots less its header
C_WORKINGSET = 77            # 1: evicted file pages leave shadow entries (mm/workingset.c, 3.15+);
                             # 2: swapped-out anonymous pages too (5.9+)
C_IO_PAGES = 78              # bdi->io_pages: max_sectors_kb / 4
C_SHRINK_UNDERUSED = 79      # 6.12+: every anon THP is queued for the deferred-split shrinker, which
                             # splits underused ones (transparent_hugepage/shrink_underused)
C_ZERO_REMAP = 80            # 6.12+: page contents matter: an anon THP's split maps zero-filled
                             # subpages to the zero page; a zero-filled page swapped out goes to
                             # the swap zeromap (no write, no read back)
NR_CFG = 81
OVERCOMMIT_GUESS = 0
OVERCOMMIT_ALWAYS = 1
OVERCOMMIT_NEVER = 2

# huge page cache models (cfg[C_HPC_MODEL])
HPC_MAINLINE = 0             # tmpfs huge= (4.8+), PMD-mapped on fault
HPC_2013 = 1                 # the 2013 series: ramfs only, no huge mappings (a fault splits)
HPC_2013_MMAP = 2            # the 2013 series plus what it lacked: PMD-mapped on fault
HPC_NAMES = ("mainline", "2013", "2013+mmap")
# tmpfs huge= (fs[FS_HUGE]) and shmem_enabled
SHMEM_HUGE_NEVER = 0
SHMEM_HUGE_ALWAYS = 1
SHMEM_HUGE_WITHIN_SIZE = 2
SHMEM_HUGE_ADVISE = 3
SHMEM_HUGE_DENY = 4          # shmem_enabled only: off for every mount
SHMEM_HUGE_FORCE = 5         # shmem_enabled only: on for every mount
SHMEM_HUGE_NAMES = ("never", "always", "within_size", "advise", "deny", "force")
FILE_ENTIRE = 0              # fr32 row (= FR_NEXT) of page[1] of a file THP: its PMD mapcount

# which PTEs of a range a collapse needs writable (spec 3.8)
COLLAPSE_ALL_WRITABLE = 0    # 3.10: every present PTE writable; a zero-page PTE aborts
COLLAPSE_ONE_WRITABLE = 1    # ~4.0 .. 6.17: the zero page counts as none, one writable PTE
COLLAPSE_ANY = 2             # 6.18 (checked on a 6.18 host): no writable check

# khugepaged scan results (enum scan_result, mm/khugepaged.c; the ones the engine produces)
SCAN_FAIL = 0
SCAN_SUCCEED = 1
SCAN_PMD_NULL = 2
SCAN_PMD_MAPPED = 3
SCAN_EXCEED_NONE_PTE = 4
SCAN_EXCEED_SWAP_PTE = 5
SCAN_EXCEED_SHARED_PTE = 6
SCAN_PAGE_RO = 7
SCAN_LACK_REFERENCED_PAGE = 8
SCAN_PAGE_NULL = 9
SCAN_PAGE_LRU = 10
SCAN_PAGE_ANON = 11
SCAN_VMA_CHECK = 12
SCAN_ALLOC_HUGE_PAGE_FAIL = 13
SCAN_PAGE_COUNT = 14
SCAN_PAGE_COMPOUND = 15
SCAN_PTE_MAPPED_HUGEPAGE = 16   # the range's page-cache folio is huge already (map it by a PMD)
SCAN_CGROUP_CHARGE_FAIL = 17    # the new folio's memcg charge failed

# ---- global scalar state (gs) ------------------------------------------------------------------
G_HIGH_WATER = 0             # lazily initialised frames start here
G_NR_FREE = 1
G_HUGE_ZERO_PFN = 2          # -1 until allocated
G_PT_NFREE = 3
G_PT_NEXT = 4                # next never-used page-table pool slot
G_PT_CAP = 5
G_VMA_NEXT = 6               # next unused VMA pool slot
G_VMA_CAP = 7
G_NOW = 8                    # machine clock (ps)
G_NEXT_ANON = 9              # next anon root id
G_EV_N = 10                  # events in the record buffer
G_EV_CAP = 11
G_NR_MM = 12                 # mm slots in use
G_NR_TASKS = 13
G_NEXT_EVENT = 14             # due time (ps) of the next timed background event
G_SMP_N = 15                  # rows in the sample buffer
G_NEXT_SAMPLE = 16           # due time (ps) of the next vmstat sample
G_KH_WAKE = 17               # ps: khugepaged's next wakeup (NEVER: asleep until an mm enrols)
G_KH_MM = 18                 # the mm khugepaged is scanning (-1: none; next: lowest MM_KH_SEQ)
G_KH_ADDR = 19               # khugepaged_scan.address within it
G_KH_SEQ = 20                # enrolment counter (MM_KH_SEQ of the latest mm)
G_KH_COLLAPSED = 21          # khugepaged/pages_collapsed
G_KH_FULL_SCANS = 22         # khugepaged/full_scans
G_KH_BUSY_PS = 23            # khugepaged's CPU time
G_TIMER_UNTIL = 24           # TIMER: background work is due up to this time
G_KH_SCANNED = 25            # PTEs khugepaged has examined (progress, as it counts them)
G_DEFERRED_HEAD = 26         # deferred split queue (linked through page[2]'s FR_NEXT/FR_PREV)
G_DEFERRED_TAIL = 27
G_DEFERRED_N = 28
G_KC_WAKE = 29               # ps: kcompactd's next wakeup (NEVER: asleep until woken)
G_KC_ORDER = 30              # the order kcompactd was woken for (-1: none)
G_KC_BUSY_PS = 31            # kcompactd's CPU time
G_KC_PROACTIVE_SHIFT = 32    # proactive compaction deferred: checks 2^shift x 500 ms apart
G_COMPACT_CONSIDERED = 33    # zone->compact_considered, compact_defer_shift, compact_order_failed
G_COMPACT_DEFER_SHIFT = 34
G_COMPACT_ORDER_FAILED = 35
G_COMMITTED = 36             # vm_committed_as: pages charged by VM_ACCOUNT mappings
G_NR_MEMCG = 37              # memory cgroups (ids 0..n-1; 0 is the root)
G_OOM_MEMCG = 38             # the memcg whose limit an allocation last failed against (-1: none)
G_CUR_MEMCG = 39             # the memcg page-cache insertions are charged to (current's)
G_RECLAIM_CURSOR = 40        # the memcg global reclaim starts its round-robin walk at
G_MEMCG_WAIT = 41            # a memcg charge failed in a syscall and the OOM model must act
G_NR_SWAP_FREE = 42          # free swap slots (nr_swap_pages)
G_SWAP_CURSOR = 43           # the slot the next swap-slot search starts at
G_ANON_SCAN_MM = 44          # the anon reclaim scan's position: mm slot and address
G_ANON_SCAN_VA = 45
G_SWAP_IO_PS = 46            # swap writes issued by the reclaim in progress (its cost, ps)
G_STALL_PS = 47              # memory stall time (PSI memstall) not yet given to the task at hand
G_FREE_HEAD = 48             # + order * MIGRATE_PCPTYPES + mt: head pfn or -1
G_FREE_COUNT = G_FREE_HEAD + NR_PAGE_ORDERS * MIGRATE_PCPTYPES
G_HIST_FAULT = G_FREE_COUNT + NR_PAGE_ORDERS * MIGRATE_PCPTYPES
NR_HIST = 48                 # log2 buckets: [0] < 1 ns, [k] in [2^(k-1), 2^k) ns
G_MCG = G_HIST_FAULT + NR_HIST   # the memory-cgroup table: gs[G_MCG + id * NR_MC + MC_*]
NR_GS = G_MCG                # scalars before the table (the table adds NR_MC per memcg)

# ---- memory cgroups (mm/memcontrol.c; page counters in pages) ---------------------------------
MC_PARENT = 0                # parent id (-1 for the root)
MC_ONLINE = 1                # 1 while the cgroup exists
MC_MAX = 2                   # memory.max / memory.limit_in_bytes (PAGE_COUNTER_MAX: no limit)
MC_HIGH = 3                  # memory.high
MC_LOW = 4                   # memory.low
MC_MIN = 5                   # memory.min
MC_SWAP_MAX = 6              # memory.swap.max
MC_MEMSW_MAX = 7             # v1 memory.memsw.limit_in_bytes
MC_USAGE = 8                 # memory page counter: hierarchical (memory.current)
MC_SWAP_USAGE = 9            # swap page counter: hierarchical (memory.swap.current)
MC_WATERMARK = 10            # the memory counter's peak (memory.peak, max_usage_in_bytes)
MC_FAILCNT = 11              # v1 memory.failcnt: charges refused at this counter's limit
MC_ANON = 12                 # local statistics (memory.stat sums them over the subtree)
MC_FILE = 13
MC_SHMEM = 14
MC_ANON_THP = 15
MC_FILE_THP = 16
MC_SHMEM_THP = 17
MC_PGSCAN = 18
MC_PGSTEAL = 19
MC_EV_LOW = 20               # memory.events.local
MC_EV_HIGH = 21
MC_EV_MAX = 22
MC_EV_OOM = 23
MC_EV_OOM_KILL = 24
MC_EV_OOM_GROUP_KILL = 25
MC_OOM_GROUP = 26            # memory.oom.group
MC_OOM_KILL_DISABLE = 27     # v1 memory.oom_control oom_kill_disable
MC_UNDER_OOM = 28            # v1 under_oom: tasks are waiting on this memcg's OOM
MC_THP_FALLBACK_CHARGE = 29  # thp_fault_fallback_charge counted in this memcg
MC_EV_SWAP_MAX = 30          # memory.swap.events.local: max, fail
MC_EV_SWAP_FAIL = 31
MC_WS_REFAULT = 32           # workingset_refault_file of pages charged here
MC_WS_ACTIVATE = 33          # workingset_activate_file
MC_WS_RESTORE = 34           # workingset_restore_file
MC_WS_REFAULT_ANON = 35      # workingset_refault_anon (5.9+)
MC_WS_ACTIVATE_ANON = 36
MC_WS_RESTORE_ANON = 37
MC_SPLIT_DEFERRED = 38       # the deferred-split shrinker's nr_deferred for this memcg's queue
NR_MC = 39
PAGE_COUNTER_MAX = ((1 << 63) - 1) // 4096   # "max": no limit (LONG_MAX / PAGE_SIZE)
MAX_RECLAIM_RETRIES = 16

# ---- filesystems, inodes and blocks (kernels/fs.py) --------------------------------------------
FST_EXT4 = 1                 # delayed allocation, unwritten extents, willwrite
FST_EXT2 = 2                 # blocks allocated by write() or at writeback; nothing at mkwrite
FST_TMPFS = 3                # memory only, swap-backed (Shmem)
FST_RAMFS = 4                # memory only, unevictable
FST_XFS = 5                  # ext4's block model (iomap delalloc, unwritten extents); no willwrite
FSTYPE_NAMES = ("", "ext4", "ext2", "tmpfs", "ramfs", "xfs")
# the Python layer's form of kernels/fs.py's delalloc_fs and block_fs
DELALLOC_FSTYPES = (FST_EXT4, FST_XFS)
BLOCK_FSTYPES = (FST_EXT4, FST_EXT2, FST_XFS)
# xfs_alloc_file_space: a transaction reserves at most one extent's worth of data blocks
# (XFS_MAX_BMBT_EXTLEN) plus XFS_EXTENTADD_SPACE_RES, the bmap btree's levels less one: 4 for 4 KiB
# blocks without nrext64 (mkfs.xfs 6.1's default: on a 6.18 host a fallocate of free - 4 blocks
# succeeded, of free - 3 failed; with nrext64=1, newer mkfs.xfs's default, it is 6)
XFS_MAX_BMBT_EXTLEN = (1 << 21) - 1
XFS_EXTENTADD_SPACE_RES = 4
FS_TYPE = 0
FS_BLOCKS = 1                # capacity in 4 KiB blocks (tmpfs: pages)
FS_FREE = 2                  # blocks neither allocated nor reserved
FS_DISK_FREE_AT = 3          # ps: when the disk's queue drains
FS_RD_LAT = 4                # ps per request
FS_WR_LAT = 5
FS_RD_PAGE = 6               # ps per 4 KiB transferred
FS_WR_PAGE = 7
FS_BYTES_READ = 8
FS_BYTES_WRITTEN = 9
FS_ERR_LOST = 10             # pages whose blocks could not be allocated at writeback
FS_HUGE = 11                 # tmpfs huge= mount option (SHMEM_HUGE_*)
NR_FS_FIELDS = 12

I_FS = 0
I_SIZE = 1                   # bytes
I_NLINK = 2                  # 0: unlinked (freed when the last reference goes)
I_REFS = 3                   # open files and mappings
I_BLK = 4                    # offset of the block states in the blk pool
I_BLKCAP = 5
I_NRPAGES = 6                # pages in the page cache
I_NRDIRTY = 7
I_DIRTIED_WHEN = 8           # ps when the inode became dirty (-1: clean)
I_RA_NEXT = 9                # unused (readahead state: the RA_* arrays below)
I_WB_ERR = 10                # a writeback error not yet reported (-errno)
I_WB_DONE = 11               # ps: when this inode's submitted writeback completes
I_ALIVE = 12
I_RA_SIZE = 13               # unused
I_DCACHE = 14                # 1: its dentry and inode are in the (reclaimable slab) caches
I_WB_NEXT = 15               # writeback_index: where the next cyclic writeback starts
I_PAGES_END = 16             # one past the highest page index ever cached (truncation scans to it)
I_SHADOW_GEN = 17            # bumped when truncation drops the file's shadow entries
I_MRA = 18                   # the readahead state mappings of the file use (file_ra_state:
                             # the RA_* fields in rows I_MRA to I_MRA + NR_RA_FIELDS - 1)
I_IO_LO = 25                 # the latest read request maybe still in flight: pages
I_IO_HI = 26                 # [I_IO_LO, I_IO_HI) are locked until I_IO_DONE (ps)
I_IO_DONE = 27
I_IO_LO_OLD = 28             # the one before it
I_IO_HI_OLD = 29
I_IO_DONE_OLD = 30
NR_I_FIELDS = 31

# file_ra_state fields (an open file's ``ra`` array, or a column of ino rows from I_MRA)
RA_START = 0                 # where the most recent readahead window starts
RA_SIZE = 1                  # its pages
RA_ASYNC = 2                 # async_size: the mark sits at RA_START + RA_SIZE - RA_ASYNC
RA_PREV = 3                  # prev_pos: the byte after the last read (-1: none)
RA_PAGES = 4                 # ra_pages: the window's maximum (-1: the device's read_ahead_kb)
RA_FLAGS = 5                 # RA_RANDOM: FMODE_RANDOM (POSIX_FADV_RANDOM)
RA_ORDER = 6                 # the folio order the next window asks for (6.11+ ra->order)
NR_RA_FIELDS = 7
RA_RANDOM = 1

POSIX_FADV_NORMAL = 0
POSIX_FADV_RANDOM = 1
POSIX_FADV_SEQUENTIAL = 2
POSIX_FADV_WILLNEED = 3
POSIX_FADV_DONTNEED = 4
POSIX_FADV_NOREUSE = 5

BLK_HOLE = 0
BLK_DELALLOC = 1             # reserved by delayed allocation (ext4, XFS), no block yet
BLK_UNWRITTEN = 2            # allocated by fallocate, reads as zeros
BLK_WRITTEN = 3

WW_COW_AHEAD = 1             # MADV_WILLWRITE on private mappings copies ahead
WW_FULL_PREP = 2             # MADV_WILLWRITE also maps the pages writable and dirty
MADV_WILLWRITE = 64          # the RFC's 18 is MADV_WIPEONFORK in mainline; 64 is free

# file-state globals (fgs array)
FG_PC_USED = 0               # entries in the page-cache index
FG_WB_HEAD = 1               # writeback completion ring: oldest entry
FG_WB_TAIL = 2               # next free entry
FG_NEXT_FLUSH = 3            # ps: the flusher's next periodic wakeup
FG_KSWAPD_CLOCK = 4          # ps: how far kswapd's own work has got
FG_WMARK_MIN = 5             # zone watermarks, pages
FG_WMARK_LOW = 6
FG_WMARK_HIGH = 7
FG_SLAB = 8                  # reclaimable slab objects (dentries and inodes) cached
FG_SLAB_MAX = 9              # objects a full cache holds (one dentry + inode per file)
FG_NR_INODES = 10
FG_NEED_PC = 11              # NEED_GROW from a file path: page-cache entries wanted in all
FG_NEED_WB = 12              # ... writeback ring entries wanted in all
FG_NEED_PT = 13              # ... free page-table pool slots wanted
FG_KSWAPD_FAILURES = 14      # kswapd runs that reclaimed nothing (MAX_RECLAIM_RETRIES: it gives up)
FG_KSWAPD_BUSY_PS = 15       # ps: kswapd's work so far (its memory stall, for PSI)
FG_KSWAPD_LAST_END = 16      # ps: where kswapd's clock stood when it last went to sleep
NR_FG = 17

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_WRITE_ZEROES = 0x80   # 6.17
EBADF = 9
ENOENT = 2
EOPNOTSUPP = 95
EFBIG = 27
EOVERFLOW = 75
EACCES = 13
ENODEV = 19
EISDIR = 21

# ---- mm fields (mm array rows) -----------------------------------------------------------------
MM_PGD = 0                   # pfn of the PGD, -1 until the first fault
MM_FLAGS = 1
MM_DEF_FLAGS = 2
MM_ANON = 3                  # anon root id (shared along fork: the anon_vma tree)
MM_USERS = 4
MM_VBASE = 5                 # VMA pool segment
MM_VCOUNT = 6
MM_VCAP = 7
MM_ANONPAGES = 8             # rss counters (include/linux/mm_types_task.h MM_*)
MM_FILEPAGES = 9
MM_SHMEMPAGES = 10
MM_SWAPENTS = 11
MM_PGTABLES = 12             # page-table pages (PGD excluded): mm_pgtables_bytes / 4096
MM_LOCKED = 13               # pages in VM_LOCKED VMAs (VmLck)
MM_TOTAL_VM = 14
MM_ANON_THP = 15             # PMD-mapped anonymous THPs
MM_HIWATER_RSS = 16
MM_BRK_START = 17
MM_BRK = 18
MM_HAD_PMD = 19              # 1 once any PMD leaf was mapped: 2 MiB TLB entries may exist
MM_KH_SEQ = 20               # khugepaged enrolment order (0: not on its list)
MM_MEMCG = 21                # the memory cgroup its pages are charged to (mm->owner's; 0: root)
NR_MM_FIELDS = 22

# ---- VMA fields (vma array rows) ---------------------------------------------------------------
V_START = 0
V_END = 1
V_FLAGS = 2
V_PGOFF = 3
V_FILE = 4
V_ANON_VMA = 5               # 1 once an anon_vma is attached: a write fault in a private VMA
                             # (anon_vma_prepare); split halves keep it, a merge ORs it, fork copies
NR_V_FIELDS = 6

# ---- task fields (task array rows) -------------------------------------------------------------
T_PID = 0
T_MM = 1
T_CPU = 2
T_FLAGS = 3
T_ADJ = 4
T_CLOCK = 5                  # ps
T_MINFLT = 6
T_MAJFLT = 7
T_ACCESSES = 8
T_DTLB_MISS = 9              # L1 dTLB misses
T_STLB_MISS = 10             # STLB misses = page walks
T_WALK_LOADS = 11
T_WALK_PS = 12
T_FAULT_PS = 13
T_TGID = 14
T_ALIVE = 15
T_MEMCG = 16                 # the memory cgroup the task is in (0: the root)
TF_CAP_SYS_ADMIN = 1         # task flags (T_FLAGS): holds CAP_SYS_ADMIN
TF_KTHREAD = 2               # PF_KTHREAD: a kernel thread (never an OOM victim)
TF_OOM_ORIGIN = 4            # oom_task_origin: swapoff/KSM unmerge; selected first
TF_EXITING = 8               # PF_EXITING: the task is exiting
TF_MEMDIE = 16               # tsk_is_oom_victim (TIF_MEMDIE before 4.x): killed, not yet gone
SLAB_BYTES_PER_FILE = 192 + 1096  # bytes of slab one cached dentry + inode take (mmcore.files)
T_STALL_PS = 17              # ps in memory stalls (direct reclaim, compaction, thrashing swap-ins)
NR_T_FIELDS = 18
# swap slots (State.swp rows, one column per slot; slot 0 holds the swap header, never used)
SWP_COUNT = 0                # swap_map: the PTEs that hold this slot's entry (0: free)
SWP_MEMCG = 1                # swap_cgroup: the memcg the slot is charged to
SWP_WORKINGSET = 2           # bit 0: the page was in the workingset when written; the reclaim root
                             # memcg above it (the shadow's memcg, kernels/workingset.py)
SWP_AGE = 3                  # the reclaim root's nonresident_age at swap-out (31 bits, wrapping)
SWP_WRITTEN = 4              # 1: the page held data (PG_written) when it was written out
NR_SWP = 5

# ---- per-CPU (cpu array columns) ---------------------------------------------------------------
CPU_STAMP = 0
CPU_FREE_AT = 1
NR_CPU_FIELDS = 2

# ---- vmstat (mm/vmstat.c vmstat_text order is not reproduced; names are) -----------------------
VMSTAT_NAMES = (
    "nr_free_pages", "nr_anon_pages", "nr_anon_transparent_hugepages", "nr_page_table_pages",
    "nr_mlock", "pgalloc_normal", "pgfree", "pgfault", "pgmajfault",
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
    "thp_zero_page_alloc", "thp_zero_page_alloc_failed", "thp_split_pmd", "thp_split_page",
    "thp_deferred_split_page",
    "compact_stall", "compact_fail", "compact_success", "compact_migrate_scanned",
    "compact_free_scanned", "compact_isolated", "pgmigrate_success", "pgmigrate_fail",
    "nr_tlb_local_flush_all", "nr_tlb_remote_flush",
    "nr_inactive_file", "nr_active_file", "nr_unevictable", "nr_file_pages", "nr_mapped",
    "nr_dirty", "nr_writeback", "nr_shmem", "nr_dirtied", "nr_written", "pgpgin", "pgpgout",
    "pgactivate", "pgdeactivate", "pgrefill", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd",
    "pgsteal_direct", "pgscan_file", "pgsteal_file", "pgrotated", "workingset_refault_file",
    "workingset_activate_file", "drop_pagecache", "drop_slab", "nr_slab_reclaimable", "pageoutrun",
    "allocstall_normal", "nr_file_hugepages", "nr_file_pmdmapped",
    "thp_collapse_alloc", "thp_collapse_alloc_failed", "thp_scan_exceed_none_pte",
    "thp_scan_exceed_swap_pte", "thp_scan_exceed_share_pte", "thp_split_page_failed",
    "thp_underused_split_page", "compact_daemon_wake", "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned", "thp_file_alloc", "thp_file_fallback",
    "thp_file_fallback_charge", "thp_file_mapped", "nr_shmem_hugepages", "nr_shmem_pmdmapped",
    "thp_write_alloc", "thp_write_alloc_failed", "thp_read_alloc", "thp_read_alloc_failed",
    "pswpin", "pswpout", "pgscan_anon", "pgsteal_anon", "thp_swpout_fallback", "nr_swapcached",
    "workingset_restore_file", "workingset_refault_anon", "workingset_activate_anon",
    "workingset_restore_anon",
    "unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
)
VS_NR_FREE_PAGES = 0
VS_NR_ANON_PAGES = 1
VS_NR_ANON_THP = 2
VS_NR_PAGE_TABLE_PAGES = 3
VS_NR_MLOCK = 4
VS_PGALLOC = 5
VS_PGFREE = 6
VS_PGFAULT = 7
VS_PGMAJFAULT = 8
VS_THP_FAULT_ALLOC = 9
VS_THP_FAULT_FALLBACK = 10
VS_THP_FAULT_FALLBACK_CHARGE = 11
VS_THP_ZERO_PAGE_ALLOC = 12
VS_THP_ZERO_PAGE_ALLOC_FAILED = 13
VS_THP_SPLIT_PMD = 14
VS_THP_SPLIT_PAGE = 15
VS_THP_DEFERRED_SPLIT_PAGE = 16
VS_COMPACT_STALL = 17
VS_COMPACT_FAIL = 18
VS_COMPACT_SUCCESS = 19
VS_COMPACT_MIGRATE_SCANNED = 20
VS_COMPACT_FREE_SCANNED = 21
VS_COMPACT_ISOLATED = 22
VS_PGMIGRATE_SUCCESS = 23
VS_PGMIGRATE_FAIL = 24
VS_TLB_LOCAL_FLUSH_ALL = 25
VS_TLB_REMOTE_FLUSH = 26
VS_NR_INACTIVE_FILE = 27
VS_NR_ACTIVE_FILE = 28
VS_NR_UNEVICTABLE = 29
VS_NR_FILE_PAGES = 30
VS_NR_MAPPED = 31
VS_NR_DIRTY = 32
VS_NR_WRITEBACK = 33
VS_NR_SHMEM = 34
VS_NR_DIRTIED = 35
VS_NR_WRITTEN = 36
VS_PGPGIN = 37
VS_PGPGOUT = 38
VS_PGACTIVATE = 39
VS_PGDEACTIVATE = 40
VS_PGREFILL = 41
VS_PGSCAN_KSWAPD = 42
VS_PGSCAN_DIRECT = 43
VS_PGSTEAL_KSWAPD = 44
VS_PGSTEAL_DIRECT = 45
VS_PGSCAN_FILE = 46
VS_PGSTEAL_FILE = 47
VS_PGROTATED = 48
VS_WORKINGSET_REFAULT_FILE = 49
VS_WORKINGSET_ACTIVATE_FILE = 50
VS_DROP_PAGECACHE = 51
VS_DROP_SLAB = 52
VS_NR_SLAB_RECLAIMABLE = 53
VS_PAGEOUTRUN = 54
VS_ALLOCSTALL_NORMAL = 55
VS_NR_FILE_HUGEPAGES = 56
VS_NR_FILE_PMDMAPPED = 57
VS_THP_COLLAPSE_ALLOC = 58
VS_THP_COLLAPSE_ALLOC_FAILED = 59
VS_THP_SCAN_EXCEED_NONE_PTE = 60
VS_THP_SCAN_EXCEED_SWAP_PTE = 61
VS_THP_SCAN_EXCEED_SHARE_PTE = 62
VS_THP_SPLIT_PAGE_FAILED = 63
VS_THP_UNDERUSED_SPLIT_PAGE = 64
VS_COMPACT_DAEMON_WAKE = 65
VS_COMPACT_DAEMON_MIGRATE_SCANNED = 66
VS_COMPACT_DAEMON_FREE_SCANNED = 67
VS_THP_FILE_ALLOC = 68
VS_THP_FILE_FALLBACK = 69
VS_THP_FILE_FALLBACK_CHARGE = 70
VS_THP_FILE_MAPPED = 71
VS_NR_SHMEM_HUGEPAGES = 72   # tmpfs THPs (in THPs, as /proc/vmstat prints them)
VS_NR_SHMEM_PMDMAPPED = 73   # tmpfs THPs mapped by a PMD somewhere
VS_THP_WRITE_ALLOC = 74      # the 2013 series' counters
VS_THP_WRITE_ALLOC_FAILED = 75
VS_THP_READ_ALLOC = 76
VS_THP_READ_ALLOC_FAILED = 77
VS_PSWPIN = 78               # pages read from swap (swap-in faults)
VS_PSWPOUT = 79              # pages written to swap
VS_PGSCAN_ANON = 80
VS_PGSTEAL_ANON = 81
VS_THP_SWPOUT_FALLBACK = 82  # a THP split to be swapped out (it is never swapped out whole here)
VS_NR_SWAPCACHED = 83        # no swap cache is kept: always 0
VS_WORKINGSET_RESTORE_FILE = 84   # refaults of pages that were in the workingset when evicted
VS_WORKINGSET_REFAULT_ANON = 85   # swap-ins of pages with a shadow (every swapped-out page, 5.9+)
VS_WORKINGSET_ACTIVATE_ANON = 86
VS_WORKINGSET_RESTORE_ANON = 87
VS_UNEVICTABLE_PGS_CULLED = 88     # folios put on the unevictable list (mlocked, or ramfs)
VS_UNEVICTABLE_PGS_SCANNED = 89    # never: the unevictable list is not scanned (since 5.18)
VS_UNEVICTABLE_PGS_RESCUED = 90    # folios moved back to an evictable list (munlocked)
VS_UNEVICTABLE_PGS_MLOCKED = 91    # pages that became PG_mlocked
VS_UNEVICTABLE_PGS_MUNLOCKED = 92  # pages whose PG_mlocked went with their last mlock
VS_UNEVICTABLE_PGS_CLEARED = 93    # mlocked pages freed while still mlocked
VS_UNEVICTABLE_PGS_STRANDED = 94   # munlocked off the LRU (never here: no folio stays isolated)
NR_VMSTAT = len(VMSTAT_NAMES)

# ---- event records (ev array rows) and what is recorded (cfg[C_RECORD] bits) -------------------
EV_TIME = 0                  # ps, when the event started
EV_PID = 1
EV_OP = 2                    # OP_* of a system call, or OP_FAULT
EV_ADDR = 3
EV_RESULT = 4                # 0 or a negative errno (SEGV for a SIGSEGV)
EV_LAT = 5                   # ps
EV_KIND = 6                  # FK_* for faults
NR_EV_FIELDS = 7
REC_FAULT = 1
REC_SYSCALL = 2

# fault kinds
FK_ANON = 0                  # a new 4 KiB anonymous page
FK_ZERO = 1                  # the 4 KiB zero page mapped
FK_THP = 2                   # a new THP mapped by a PMD
FK_HUGE_ZERO = 3             # the huge zero page mapped
FK_WP = 4                    # a write-protect fault (copy on write, or reuse)
FK_SEGV = 5
FK_OTHER = 6
FK_SWAP = 7                  # a swap-in (major) fault

# operation codes (batch op streams and event records)
OP_FAULT = 0
OP_MMAP = 1
OP_MUNMAP = 2
OP_MPROTECT = 3
OP_MADVISE = 4
OP_PRCTL = 5
OP_TOUCH = 6
OP_ACCESS = 7
OP_BRK = 8
OP_MLOCK = 9
OP_MUNLOCK = 10
OP_NAMES = ("fault", "mmap", "munmap", "mprotect", "madvise", "prctl", "touch", "access", "brk",
            "mlock", "munlock")
# ops array rows
OPR_CODE = 0
OPR_TASK = 1
OPR_A0 = 2
NR_OP_ROWS = 6               # code, task, a0..a3

# sample buffer rows: time, then every vmstat counter (nr_free_pages current)
SMP_TIME = 0
NR_SMP_FIELDS = 1 + NR_VMSTAT
