"""The OOM killer: ``oom_badness`` and ``/proc/PID/oom_score`` exactly as the kernel computes them,
per kernel version, for one task or NumPy arrays of them; the victim ``select_bad_process`` picks
from a machine's task arrays; the kernel's dmesg lines; and two userspace OOM policies (earlyoom,
systemd-oomd) as pure functions (mm/oom_kill.c, fs/proc/base.c; spec section 4).

>>> oom_badness(rss_pages=25_000, swap_pages=0, pgtables_bytes=200_704, oom_score_adj=0,
...             totalpages=4_194_304)
25049
>>> proc_oom_score(25_000, 0, 200_704, 0, 4_194_304)
670
"""
from __future__ import annotations

import re
import signal as _signal

import numpy as np

from .kernels import consts as _c
from .kernels import oom as _k

__all__ = ["oom_badness", "proc_oom_score", "select_victim", "select_bad_process", "rule_for",
           "scan_for", "LONG_MIN", "LONG_MAX",
           "oom_invoked_line", "oom_dump_tasks_header", "oom_dump_task_row", "oom_kill_summary_line",
           "oom_kill_process_line", "oom_killed_process_line", "oom_reaper_line",
           "earlyoom_decide", "OomdPressureMonitor", "oomd_select_by_swap_usage",
           "oomd_select_by_pgscan_rate", "oomd_swap_kill", "oomd_pressure_kill"]

LONG_MIN = _k.LONG_MIN
LONG_MAX = _k.LONG_MAX


def _version(kernel: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\s*", str(kernel))
    if not m:
        raise ValueError(f"kernel: expected a version such as '6.18', got {kernel!r}")
    v = (int(m.group(1)), int(m.group(2)))
    if v < (3, 0):
        raise ValueError(f"kernel: versions before 3.0 are not modelled, got {kernel!r}")
    return v


def rule_for(kernel: str) -> int:
    """The oom_badness rule set of a kernel version ``"X.Y"`` (any version, not only the
    profiles)."""
    v = _version(kernel)
    if v < (3, 14):
        return _k.RULE_310
    if v < (4, 17):
        return _k.RULE_314
    if v < (5, 9):
        return _k.RULE_417
    return _k.RULE_509


def scan_for(kernel: str) -> int:
    """The victim-selection rule (``mmcore.kernels.oom.SCAN_*``) of a kernel version."""
    v = _version(kernel)
    if v < (3, 14):
        return _k.SCAN_310
    if v < (4, 8):
        return _k.SCAN_314
    if v < (5, 3):
        return _k.SCAN_408
    if v < (5, 9):
        return _k.SCAN_503
    return _k.SCAN_509


# ---- oom_badness and oom_score over arrays --------------------------------------------------------

_NAMES = ("rss_pages", "swap_pages", "pgtables_bytes", "oom_score_adj", "totalpages",
          "cap_sys_admin", "eligible")
_LIMITS = {"rss_pages": ">= 0", "swap_pages": ">= 0", "pgtables_bytes": ">= 0",
           "oom_score_adj": "in -1000..1000", "totalpages": ">= 1"}


def _as_int_arrays(values):
    arrs = []
    for name, v in zip(_NAMES, values):
        a = np.asarray(v)
        if a.dtype == bool:
            a = a.astype(np.int64)
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name}: expected integers, got dtype {a.dtype}")
        arrs.append(a)
    return arrs


def _flat(a, shape):
    """One value for all tasks stays one value (no n-long copy); a full array is used as is."""
    if a.size == 1:
        return np.ascontiguousarray(a.reshape(1), dtype=np.int64)
    if a.shape == shape:
        return np.ascontiguousarray(a, dtype=np.int64).reshape(-1)
    return np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.int64).reshape(-1)


def _raise_bad(code, flat, shape):
    name = _NAMES[code >> 32]
    i = code & 0xFFFFFFFF
    a = flat[name]
    v = int(a[i if a.shape[0] > 1 else 0])
    where = ""
    if shape != () and a.shape[0] > 1:
        idx = tuple(int(x) for x in np.unravel_index(i, shape))
        where = f" (task {idx[0] if len(idx) == 1 else idx})"
    raise ValueError(f"{name}: expected values {_LIMITS[name]}, got {v}{where}")


def _compute(rss, swap, pgt, adj, totalpages, kernel, cap, eligible, want_score):
    rule = rule_for(kernel)
    arrs = _as_int_arrays((rss, swap, pgt, adj, totalpages, cap, eligible))
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    n = int(np.prod(shape, dtype=np.int64))
    flat = dict(zip(_NAMES, (_flat(a, shape) for a in arrs)))
    out = np.empty(n, np.int64)
    score = np.empty(n if want_score else 0, np.int64)
    total = flat["totalpages"]
    if n > 1 and total.shape[0] == 1 and total[0] >= 1 and all(a.shape == shape for a in arrs[:4]):
        # the common case, every task's counters in full-length arrays and one valid totalpages:
        # a specialised loop without per-element broadcasting or range branches (the same values
        # and the same first error as badness_array)
        bad = _k.badness_fast(flat["rss_pages"], flat["swap_pages"], flat["pgtables_bytes"],
                              flat["oom_score_adj"], flat["cap_sys_admin"], flat["eligible"],
                              int(total[0]), rule, out, score)
    else:
        bad = _k.badness_array(flat["rss_pages"], flat["swap_pages"], flat["pgtables_bytes"],
                               flat["oom_score_adj"], flat["cap_sys_admin"], flat["eligible"],
                               total, rule, out, score)
    if bad >= 0:
        _raise_bad(bad, flat, shape)
    res = score if want_score else out
    if shape == ():
        return int(res[0])
    return res.reshape(shape)


def oom_badness(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, *,
                kernel: str = "6.18", cap_sys_admin=False, eligible=True):
    """``oom_badness`` of a task (or of arrays of tasks, broadcast together).

    ``rss_pages`` is anon + file + shmem RSS in pages, ``pgtables_bytes`` the mm's page-table
    bytes (``VmPTE`` in bytes; before 4.15 the kernel counted PTE and PMD table pages, give
    ``nr_ptes * 4096`` to reproduce it), ``totalpages`` RAM plus swap in pages (for a memcg OOM:
    the limit plus swap). ``eligible`` false marks what the kernel excludes before scoring (init,
    kernel threads, MMF_OOM_SKIP, vfork). Returns the kernel's value: 0 (before 5.9) or
    ``LONG_MIN`` (5.9+) for ineligible tasks and ``oom_score_adj == -1000``. A value out of range
    raises ValueError naming the argument, the value and, for arrays, the task's index.
    """
    return _compute(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, kernel,
                    cap_sys_admin, eligible, False)


def proc_oom_score(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, *,
                   kernel: str = "6.18", cap_sys_admin=False, eligible=True):
    """What ``/proc/PID/oom_score`` shows for the same inputs (0..1000 before 5.9, 0..2000 since);
    ``totalpages`` is always RAM plus swap here."""
    return _compute(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, kernel,
                    cap_sys_admin, eligible, True)


def select_victim(badness, *, kernel: str = "6.18") -> int:
    """The index the kernel's victim selection picks among thread-group leaders given in scan
    order (highest badness; ties to the last from 5.3, to the first before), or -1. For the
    whole scan over a machine's tasks (threads, victims, oom_task_origin) see
    ``select_bad_process``."""
    b = np.ascontiguousarray(badness, dtype=np.int64)
    if b.ndim != 1:
        raise ValueError(f"badness: expected a 1-D array, got shape {b.shape}")
    return int(_k.select_victim(b, rule_for(kernel), scan_for(kernel) >= _k.SCAN_503))


# ---- select_bad_process over the machine's task arrays -------------------------------------------

_T_ROWS = max(_c.T_PID, _c.T_MM, _c.T_FLAGS, _c.T_ADJ, _c.T_TGID, _c.T_ALIVE) + 1
_MM_ROWS = max(_c.MM_FLAGS, _c.MM_ANONPAGES, _c.MM_FILEPAGES, _c.MM_SHMEMPAGES, _c.MM_SWAPENTS,
               _c.MM_PGTABLES) + 1


def _int64_2d(name, a, rows, what):
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] < rows or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected an integer array of shape (>= {rows}, N) ({what}), got "
                         f"{a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _raise_select_error(code, k, order, task, mm):
    if code == -2:
        raise ValueError(f"order: expected task indices in 0..{task.shape[1] - 1}, got "
                         f"{int(order[k])} at position {k}")
    ti = int(order[k])
    raise ValueError(f"task: T_MM of task {ti} (order position {k}) is {int(task[_c.T_MM, ti])}; "
                     f"expected -1 (no mm) or an mm index in 0..{mm.shape[1] - 1}")


def select_bad_process(order, task, mm, base=None, *, totalpages: int, kernel: str = "6.18",
                       memcg_oom: bool = False) -> tuple[int, int, bool]:
    """The task the kernel's ``select_bad_process`` chooses, from a machine's task arrays.

    Parameters
    ----------
    order : int array
        Task indices (columns of ``task``) in the kernel's scan order: process creation order for
        a global OOM; for a memcg OOM, the memcg tree in pre-order and each memcg's tasks.
    task, mm : int64 arrays
        The machine's ``state.task`` (rows T_*) and ``state.mm`` (rows MM_*).
    base : int array of shape (5, T) or (T,), optional
        Per-task baselines (rows: anon, file, shmem, swap, page-table pages) added to the mm
        counters, for machines built from a /proc snapshot; or their per-task sum, which is all
        oom_badness uses (a machine keeps that sum, so its scan reads one array, not five).
    totalpages : int
        RAM plus swap in pages (for a memcg OOM: its limit plus swap), >= 1.
    kernel : str
        The version whose oom_badness and selection rules apply (``rule_for``, ``scan_for``).
    memcg_oom : bool
        A memcg OOM: from 4.8 to 5.2 its scan visits every thread, a global one only leaders.

    Returns
    -------
    (index, points, abort)
        The chosen task's index (or -1), its points (oom_badness; LONG_MAX for an oom_task_origin
        task), and whether the scan aborted because a victim is already exiting (then -1).
    """
    rule, scan = rule_for(kernel), scan_for(kernel)
    task = _int64_2d("task", task, _T_ROWS, "rows T_*")
    mm = _int64_2d("mm", mm, _MM_ROWS, "rows MM_*")
    o = np.asarray(order)
    if o.ndim != 1 or not np.issubdtype(o.dtype, np.integer):
        raise ValueError(f"order: expected a 1-D integer array of task indices, got {o.dtype} of "
                         f"shape {o.shape}")
    o = np.ascontiguousarray(o, dtype=np.int64)
    if base is None:
        b = np.zeros(0, np.int64)
    else:
        b = np.asarray(base)
        T = task.shape[1]
        if b.shape not in ((5, T), (T,)) or not np.issubdtype(b.dtype, np.integer):
            raise ValueError(f"base: expected an integer array of shape (5, {T}) or ({T},), got "
                             f"{b.dtype} of shape {b.shape}")
        b = np.ascontiguousarray(b.sum(axis=0) if b.ndim == 2 else b, dtype=np.int64)
    if isinstance(totalpages, bool) or not isinstance(totalpages, (int, np.integer)) or totalpages < 1:
        raise ValueError(f"totalpages: expected an integer >= 1, got {totalpages!r}")
    i, points, abort = _k.select_bad_process(o, task, mm, b, int(totalpages), rule, scan,
                                             bool(memcg_oom))
    if i < -1:
        _raise_select_error(int(i), int(points), o, task, mm)
    return int(i), int(points), bool(abort)


# ---- dmesg lines ------------------------------------------------------------------------------------

def _need(kernel, lo, what, hi=None):
    v = _version(kernel)
    if v < lo or (hi is not None and v >= hi):
        span = f"{lo[0]}.{lo[1]}" + (f" to {hi[0]}.{hi[1] - 1}" if hi else "+")
        raise ValueError(f"kernel: {what} is printed by {span} only, got {kernel!r}")
    return v


def _unmodelled(kernel, what, why):
    raise ValueError(f"kernel: the {what} of {kernel} is not modelled ({why})")


def oom_invoked_line(comm: str, gfp_mask: int, order: int, oom_score_adj: int,
                     kernel: str = "6.18", *, gfp_flags: str = "", nodemask: str = "(null)") -> str:
    """dump_header's first line, ``"<comm> invoked oom-killer: ..."``.

    3.x-4.4: ``gfp_mask=0x%x, order=%d, oom_score_adj=%hd`` (3.10 mm/oom_kill.c). 4.19 and 4.20:
    ``gfp_mask=%#x(%pGg), nodemask=%*pbl, order=..``; ``gfp_flags`` is the ``%pGg`` text
    (``GFP_HIGHUSER_MOVABLE|__GFP_ZERO``), ``nodemask`` the mempolicy nodemask or ``(null)``.
    5.0+ (to 6.x): the nodemask moved to the oom-kill summary line. The kernel's ``%#x`` always
    prints ``0x`` (``0x0`` for 0). 4.5-4.18 printed several other layouts (field order, a split
    nodemask) that are not modelled: ValueError.
    """
    v = _version(kernel)
    head = f"{comm[:15]} invoked oom-killer: gfp_mask=0x{int(gfp_mask):x}"
    if v < (4, 5):
        return f"{head}, order={int(order)}, oom_score_adj={int(oom_score_adj)}"
    if (4, 19) <= v < (5, 0):
        return (f"{head}({gfp_flags}), nodemask={nodemask}, order={int(order)}, "
                f"oom_score_adj={int(oom_score_adj)}")
    if v >= (5, 0):
        return f"{head}({gfp_flags}), order={int(order)}, oom_score_adj={int(oom_score_adj)}"
    _unmodelled(kernel, "'invoked oom-killer' line", "4.5-4.18 changed it several times")


def oom_dump_tasks_header(kernel: str = "6.18") -> list[str]:
    """dump_tasks' header line(s) before the per-task rows.

    3.x: ``[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name``;
    4.0-4.13 add ``nr_pmds``; 4.15-4.18 ``pgtables_bytes`` replaces both; 4.19+ prefix the line
    ``Tasks state (memory values in pages):`` and widen the pid column (``[  pid  ]``); 6.8+ add
    ``rss_anon rss_file rss_shmem``. 4.14 (which briefly had ``nr_puds``) is not modelled.
    """
    v = _version(kernel)
    tail = "swapents oom_score_adj name"
    if v < (4, 0):
        return [f"[ pid ]   uid  tgid total_vm      rss nr_ptes {tail}"]
    if v < (4, 14):
        return [f"[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds {tail}"]
    if v < (4, 15):
        _unmodelled(kernel, "task dump header", "4.14's nr_puds column")
    if v < (4, 19):
        return [f"[ pid ]   uid  tgid total_vm      rss pgtables_bytes {tail}"]
    first = "Tasks state (memory values in pages):"
    if v < (6, 8):
        return [first, f"[  pid  ]   uid  tgid total_vm      rss pgtables_bytes {tail}"]
    return [first, f"[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem "
                   f"pgtables_bytes {tail}"]


def oom_dump_task_row(pid: int, uid: int, tgid: int, total_vm_pages: int, rss_anon_pages: int,
                      rss_file_pages: int, rss_shmem_pages: int, pgtables_bytes: int,
                      swapents: int, oom_score_adj: int, comm: str, kernel: str = "6.18", *,
                      nr_ptes: int | None = None, nr_pmds: int | None = None) -> str:
    """One dump_task row (the columns of ``oom_dump_tasks_header`` for the same version).

    3.x: ``[%5d] %5d %5d %8lu %8lu %7lu %8lu         %5hd %s`` with nr_ptes; 4.0-4.13 add
    ``%7ld`` nr_pmds; 4.15-4.18 ``%8ld`` pgtables_bytes; 4.19+ ``[%7d]``; 6.8+
    ``%8lu %8lu %9lu`` rss_anon, rss_file, rss_shmem before pgtables_bytes. rss is
    anon + file + shmem (get_mm_rss). Before 4.15, ``nr_ptes`` defaults to pgtables_bytes / 4096
    (every page-table page counted as a PTE table) and ``nr_pmds`` to 0; give both to be exact.
    """
    v = _version(kernel)
    rss = int(rss_anon_pages) + int(rss_file_pages) + int(rss_shmem_pages)
    name = comm[:15]
    head = f"{int(uid):5d} {int(tgid):5d} {int(total_vm_pages):8d} {rss:8d}"
    tail = f"{int(swapents):8d}         {int(oom_score_adj):5d} {name}"
    ptes = int(pgtables_bytes) // 4096 if nr_ptes is None else int(nr_ptes)
    pmds = 0 if nr_pmds is None else int(nr_pmds)
    if v < (4, 0):
        return f"[{int(pid):5d}] {head} {ptes:7d} {tail}"
    if v < (4, 14):
        return f"[{int(pid):5d}] {head} {ptes:7d} {pmds:7d} {tail}"
    if v < (4, 15):
        _unmodelled(kernel, "task dump row", "4.14's nr_puds column")
    if v < (4, 19):
        return f"[{int(pid):5d}] {head} {int(pgtables_bytes):8d} {tail}"
    if v < (6, 8):
        return f"[{int(pid):7d}] {head} {int(pgtables_bytes):8d} {tail}"
    return (f"[{int(pid):7d}] {head} {int(rss_anon_pages):8d} {int(rss_file_pages):8d} "
            f"{int(rss_shmem_pages):9d} {int(pgtables_bytes):8d} {tail}")


_CONSTRAINTS = ("CONSTRAINT_NONE", "CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY",
                "CONSTRAINT_MEMCG")


def oom_kill_summary_line(constraint: str, comm: str, pid: int, uid: int, kernel: str = "6.18", *,
                          nodemask: str = "(null)", cpuset: str = "/", mems_allowed: str = "0",
                          oom_memcg: str | None = None, task_memcg: str = "/") -> str:
    """The one-line summary (dump_header, then dump_oom_summary; 5.0+, "mm, oom: reorganize the oom
    report in dump_header"): ``oom-kill:constraint=%s,nodemask=%*pbl`` + ``,cpuset=%s,
    mems_allowed=%*pbl`` + ``,oom_memcg=<path>`` (memcg OOM) or ``,global_oom`` +
    ``,task_memcg=<path>`` + ``,task=%s,pid=%d,uid=%d``. ``constraint`` is one of
    CONSTRAINT_NONE, _CPUSET, _MEMORY_POLICY, _MEMCG (the last needs ``oom_memcg``).
    """
    _need(kernel, (5, 0), "the oom-kill summary line")
    if constraint not in _CONSTRAINTS:
        raise ValueError(f"constraint: expected one of {', '.join(_CONSTRAINTS)}, got {constraint!r}")
    if (constraint == "CONSTRAINT_MEMCG") != (oom_memcg is not None):
        raise ValueError(f"oom_memcg: expected a cgroup path exactly when constraint is "
                         f"CONSTRAINT_MEMCG, got {oom_memcg!r} with {constraint}")
    memcg = f",oom_memcg={oom_memcg}" if oom_memcg is not None else ",global_oom"
    return (f"oom-kill:constraint={constraint},nodemask={nodemask},cpuset={cpuset},"
            f"mems_allowed={mems_allowed}{memcg},task_memcg={task_memcg},task={comm[:15]},"
            f"pid={int(pid)},uid={int(uid)}")


def _message(memcg, message):
    if message is not None:
        return message
    return "Memory cgroup out of memory" if memcg else "Out of memory"


def oom_kill_process_line(pid: int, comm: str, score: int, kernel: str = "6.18", *,
                          memcg: bool = False, message: str | None = None) -> str:
    """oom_kill_process's ``"%s: Kill process %d (%s) score %d or sacrifice child"`` (3.x-5.0;
    5.1 removed it with the prefer-children heuristic). ``score`` is the chosen points scaled
    (``points * 1000 / totalpages``); the message is "Out of memory", or "Memory cgroup out of
    memory" for a memcg OOM, unless ``message`` is given (e.g. "Out of memory
    (oom_kill_allocating_task)")."""
    _need(kernel, (3, 0), "the 'Kill process ... or sacrifice child' line", hi=(5, 1))
    return f"{_message(memcg, message)}: Kill process {int(pid)} ({comm[:15]}) score {int(score)} " \
           "or sacrifice child"


def oom_killed_process_line(pid: int, comm: str, total_vm_kb: int, anon_rss_kb: int,
                            file_rss_kb: int, shmem_rss_kb: int, kernel: str = "6.18", *,
                            uid: int = 0, pgtables_bytes: int = 0, oom_score_adj: int = 0,
                            memcg: bool = False, message: str | None = None) -> str:
    """__oom_kill_process's "Killed process" line.

    3.x-4.4: ``Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB`` (3.10);
    4.5-5.0 add ``, shmem-rss:%lukB`` (4.19); 5.1+ prefix the message (``Out of memory: ``,
    ``Memory cgroup out of memory: ``); 5.4+ append ``, UID:%u pgtables:%lukB oom_score_adj:%hd``
    (6.x). 5.4 itself printed the page-table bytes where kB were meant (fixed in 5.5, "mm/oom:
    fix pgtables units mismatch in Killed process message"); that is reproduced.
    """
    v = _version(kernel)
    line = (f"Killed process {int(pid)} ({comm[:15]}) total-vm:{int(total_vm_kb)}kB, "
            f"anon-rss:{int(anon_rss_kb)}kB, file-rss:{int(file_rss_kb)}kB")
    if v < (4, 5):
        return line
    line += f", shmem-rss:{int(shmem_rss_kb)}kB"
    if v < (5, 1):
        return line
    line = f"{_message(memcg, message)}: {line}"
    if v < (5, 4):
        return line
    pgt = int(pgtables_bytes) if v < (5, 5) else int(pgtables_bytes) >> 10
    return f"{line}, UID:{int(uid)} pgtables:{pgt}kB oom_score_adj:{int(oom_score_adj)}"


def oom_reaper_line(pid: int, comm: str, anon_rss_kb: int, file_rss_kb: int, shmem_rss_kb: int,
                    kernel: str = "6.18") -> str:
    """The oom_reaper's ``oom_reaper: reaped process %d (%s), now anon-rss:%lukB,
    file-rss:%lukB, shmem-rss:%lukB`` (4.6+: "mm, oom_reaper: report success/failure"; the same
    text in 4.19 and 6.x), with what is left of the victim's mm."""
    _need(kernel, (4, 6), "the oom_reaper line")
    return (f"oom_reaper: reaped process {int(pid)} ({comm[:15]}), now anon-rss:{int(anon_rss_kb)}kB, "
            f"file-rss:{int(file_rss_kb)}kB, shmem-rss:{int(shmem_rss_kb)}kB")


# ---- userspace OOM policies -------------------------------------------------------------------------

def _kb(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name}: expected a non-negative integer (kB), got {v!r}")
    return int(v)


def _percent(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or \
            not 0 <= v <= 100:
        raise ValueError(f"{name}: expected a percentage in 0..100, got {v!r}")
    return float(v)


def _vector(name, v, n=None, dtype=np.int64):
    a = np.asarray(v)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name}: expected {n} values (one per task or cgroup), got {a.shape[0]}")
    kind = "integers" if dtype == np.int64 else "numbers"
    ok = np.issubdtype(a.dtype, np.integer) or (dtype != np.int64 and np.issubdtype(a.dtype, np.floating))
    if a.size and not ok:
        raise ValueError(f"{name}: expected {kind}, got dtype {a.dtype}")
    return a.astype(dtype, copy=False)


def earlyoom_decide(mem_total_kb: int, mem_available_kb: int, swap_total_kb: int,
                    swap_free_kb: int, oom_score, *, vm_rss_kb=None, oom_score_adj=None, pid=None,
                    mem_term_percent: float = 10.0, swap_term_percent: float = 10.0,
                    mem_kill_percent: float | None = None,
                    swap_kill_percent: float | None = None) -> tuple[int, int]:
    """What earlyoom (rfjakob/earlyoom, v1.2-1.7 semantics) does on one poll: (signal, victim).

    Defaults are earlyoom's ``-m 10 -s 10``: SIGTERM once *both* MemAvailable and SwapFree are at or
    below 10 % of MemTotal and SwapTotal, SIGKILL once both are at or below the kill percentages
    (default half the SIGTERM ones, 5 %). ``lowmem_sig`` in main.c compares with ``<=``
    (the man page says "below"); the percentages are doubles (meminfo.c), and with no swap
    SwapFree counts as 0 % (always low). Returns ``(0, -1)`` when memory is not low.

    The victim (kill.c, find_largest_process/is_larger) is the task with the highest
    ``oom_score``; a tie goes to the larger VmRSS (``vm_rss_kb``), and a tie on both to the first
    task scanned (is_larger returns false on equality), i.e. the lowest index, /proc being read in
    pid order. Tasks with ``pid`` <= 2 (init, kthreadd) and ``oom_score_adj`` -1000 are never
    chosen. ``(signal, -1)`` when no task qualifies. Since v1.8 earlyoom measures memory against
    "user mem total" (MemAvailable + AnonPages) instead of MemTotal: not modelled.
    """
    total = _kb("mem_total_kb", mem_total_kb)
    if total == 0:
        raise ValueError("mem_total_kb: expected a positive integer (kB), got 0")
    avail = _kb("mem_available_kb", mem_available_kb)
    stotal = _kb("swap_total_kb", swap_total_kb)
    sfree = _kb("swap_free_kb", swap_free_kb)
    if avail > total:
        raise ValueError(f"mem_available_kb: expected at most mem_total_kb ({total}), got {avail}")
    if sfree > stotal:
        raise ValueError(f"swap_free_kb: expected at most swap_total_kb ({stotal}), got {sfree}")
    mt = _percent("mem_term_percent", mem_term_percent)
    st = _percent("swap_term_percent", swap_term_percent)
    mk = mt / 2 if mem_kill_percent is None else _percent("mem_kill_percent", mem_kill_percent)
    sk = st / 2 if swap_kill_percent is None else _percent("swap_kill_percent", swap_kill_percent)
    score = _vector("oom_score", oom_score)
    n = score.shape[0]
    rss = np.zeros(n, np.int64) if vm_rss_kb is None else _vector("vm_rss_kb", vm_rss_kb, n)
    ok = np.ones(n, bool)
    if oom_score_adj is not None:
        ok &= _vector("oom_score_adj", oom_score_adj, n) != -1000
    if pid is not None:
        ok &= _vector("pid", pid, n) > 2
    mem_pct = avail * 100.0 / total
    swap_pct = sfree * 100.0 / stotal if stotal > 0 else 0.0
    if mem_pct <= mk and swap_pct <= sk:
        sig = int(_signal.SIGKILL)
    elif mem_pct <= mt and swap_pct <= st:
        sig = int(_signal.SIGTERM)
    else:
        return 0, -1
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return sig, -1
    best = idx[score[idx] == score[idx].max()]
    best = best[rss[best] == rss[best].max()]
    return sig, int(best[0])


# systemd-oomd: oomd.conf(5) and systemd.resource-control(5) defaults
OOMD_SWAP_USED_LIMIT_PERCENT = 90.0          # SwapUsedLimit=
OOMD_MEMORY_PRESSURE_LIMIT_PERCENT = 60.0    # DefaultMemoryPressureLimit= (ManagedOOMMemoryPressureLimit=)
OOMD_MEMORY_PRESSURE_DURATION_S = 30.0       # DefaultMemoryPressureDurationSec=
OOMD_SWAP_CANDIDATE_PERCENT = 5              # only cgroups using more than 5 % of swap are killed
PREFERENCE_NONE, PREFERENCE_AVOID, PREFERENCE_OMIT = 0, 1, 2   # ManagedOOMPreference=


def _preference(preference, n):
    if preference is None:
        return np.zeros(n, np.int64)
    p = _vector("preference", preference, n)
    bad = np.flatnonzero((p < 0) | (p > 2))
    if bad.size:
        raise ValueError(f"preference: expected 0 (none), 1 (avoid) or 2 (omit), got "
                         f"{int(p[bad[0]])} at index {int(bad[0])}")
    return p


def _first_sorted(keys_desc, pref, eligible):
    """Index of the first cgroup in systemd-oomd's order (preference none before avoid, then each
    key from largest to smallest), among ``eligible`` and not omitted; -1 if none. systemd sorts a
    hashmap with qsort, so its order among exact ties is unspecified: here the lowest index."""
    idx = np.flatnonzero(eligible & (pref != PREFERENCE_OMIT))
    if idx.size == 0:
        return -1
    order = np.lexsort([idx] + [-k[idx] for k in reversed(keys_desc)] + [pref[idx]])
    return int(idx[order[0]])


def oomd_select_by_swap_usage(swap_current_bytes, threshold_bytes: int, preference=None) -> int:
    """oomd_select_by_swap_usage (src/oom/oomd-util.c): the cgroup with the most swap among those
    using more than ``threshold_bytes`` (strictly), "avoid" ones last, "omit" ones never; -1."""
    swap = _vector("swap_current_bytes", swap_current_bytes)
    if np.any(swap < 0):
        raise ValueError(f"swap_current_bytes: expected values >= 0, got {int(swap.min())}")
    return _first_sorted([swap], _preference(preference, swap.shape[0]), swap > int(threshold_bytes))


def oomd_select_by_pgscan_rate(pgscan_delta, memory_current_bytes, preference=None) -> int:
    """oomd_select_by_pgscan_rate: the cgroup with the most reclaim activity (pgscan since the last
    interval), then the most memory; cgroups with neither are skipped; "avoid" ones last, "omit"
    ones never; -1 if none."""
    scan = _vector("pgscan_delta", pgscan_delta)
    mem = _vector("memory_current_bytes", memory_current_bytes, scan.shape[0])
    for name, a in (("pgscan_delta", scan), ("memory_current_bytes", mem)):
        if np.any(a < 0):
            raise ValueError(f"{name}: expected values >= 0, got {int(a.min())}")
    return _first_sorted([scan, mem], _preference(preference, scan.shape[0]), (scan > 0) | (mem > 0))


def _below(total_bytes: int, free_bytes: int, threshold_permyriad: int) -> bool:
    # oomd_swap_free_below / oomd_mem_available_below: free < total * threshold / 10000 (uint64)
    return free_bytes < total_bytes * threshold_permyriad // 10000


def oomd_swap_kill(swap_current_bytes, swap_total_kb: int, swap_free_kb: int, *,
                   mem_total_kb: int | None = None, mem_available_kb: int | None = None,
                   swap_used_limit_percent: float = OOMD_SWAP_USED_LIMIT_PERCENT,
                   preference=None) -> int:
    """systemd-oomd's swap action (ManagedOOMSwap=kill): the cgroup it kills, or -1.

    oomd.conf(5): "If the fraction of memory used and the fraction of swap used on the system are
    both more than [SwapUsedLimit=, default 90 %], systemd-oomd will act on eligible descendant
    control groups with swap usage greater than 5% of total swap, starting from the ones with the
    highest swap usage." The limit is kept in permyriad and the tests are oomd-util.c's integer
    ``free < total * (10000 - limit) / 10000`` on bytes. Give ``mem_total_kb`` and
    ``mem_available_kb`` for that rule (systemd 248+); without them only swap is tested, as in
    systemd 247 ("if the percentage of swap used on the system is more than ...").
    """
    stotal = _kb("swap_total_kb", swap_total_kb) * 1024
    sfree = _kb("swap_free_kb", swap_free_kb) * 1024
    if sfree > stotal:
        raise ValueError(f"swap_free_kb: expected at most swap_total_kb ({stotal // 1024}), got "
                         f"{sfree // 1024}")
    limit = int(round(_percent("swap_used_limit_percent", swap_used_limit_percent) * 100))
    swap = _vector("swap_current_bytes", swap_current_bytes)
    if np.any(swap < 0):
        raise ValueError(f"swap_current_bytes: expected values >= 0, got {int(swap.min())}")
    pref = _preference(preference, swap.shape[0])
    if (mem_total_kb is None) != (mem_available_kb is None):
        raise ValueError("mem_total_kb, mem_available_kb: give both or neither")
    if mem_total_kb is not None:
        mtotal = _kb("mem_total_kb", mem_total_kb) * 1024
        mavail = _kb("mem_available_kb", mem_available_kb) * 1024
        if mavail > mtotal:
            raise ValueError(f"mem_available_kb: expected at most mem_total_kb "
                             f"({mtotal // 1024}), got {mavail // 1024}")
        if not _below(mtotal, mavail, 10000 - limit):
            return -1
    if not _below(stotal, sfree, 10000 - limit):
        return -1
    return oomd_select_by_swap_usage(swap, stotal * OOMD_SWAP_CANDIDATE_PERCENT // 100, pref)


class OomdPressureMonitor:
    """oomd_pressure_above (src/oom/oomd-util.c) as state over successive samples.

    A monitored cgroup qualifies once its memory pressure (``full avg10`` of memory.pressure, in
    percent) has been above ``limit_percent`` (strictly) at every sample since the first sample
    where it rose above, for at least ``duration_s`` (``now - hit_start >= duration``); a sample at
    or below the limit restarts the clock. Defaults: DefaultMemoryPressureLimit=60% and
    DefaultMemoryPressureDurationSec=30s (oomd.conf(5); per unit ManagedOOMMemoryPressureLimit=,
    ManagedOOMMemoryPressureDurationSec=, systemd.resource-control(5)). Pressure is only known at
    the samples: systemd-oomd reads it every second.
    """

    def __init__(self, n_cgroups: int = 1, *,
                 limit_percent: float = OOMD_MEMORY_PRESSURE_LIMIT_PERCENT,
                 duration_s: float = OOMD_MEMORY_PRESSURE_DURATION_S):
        if isinstance(n_cgroups, bool) or not isinstance(n_cgroups, (int, np.integer)) or n_cgroups < 1:
            raise ValueError(f"n_cgroups: expected a positive integer, got {n_cgroups!r}")
        self.limit_percent = _percent("limit_percent", limit_percent)
        if not np.isfinite(duration_s) or duration_s < 0:
            raise ValueError(f"duration_s: expected seconds >= 0, got {duration_s!r}")
        self.duration_s = float(duration_s)
        self._start = np.full(int(n_cgroups), np.nan)
        self._last_t = -np.inf

    def observe(self, t_s: float, avg10_percent) -> np.ndarray:
        """Feed one sample (time in seconds, one pressure value per monitored cgroup); returns the
        cgroups that have now stayed above the limit for the duration."""
        t = float(t_s)
        if not np.isfinite(t) or t < self._last_t:
            raise ValueError(f"t_s: expected non-decreasing finite times, got {t_s!r} after "
                             f"{self._last_t}")
        p = np.asarray(avg10_percent, dtype=float).reshape(-1)
        if p.shape[0] != self._start.shape[0]:
            raise ValueError(f"avg10_percent: expected {self._start.shape[0]} values, got {p.shape[0]}")
        if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 100):
            raise ValueError(f"avg10_percent: expected percentages in 0..100, got {p.tolist()}")
        self._last_t = t
        above = p > self.limit_percent
        self._start[~above] = np.nan
        self._start[above & np.isnan(self._start)] = t
        return above & (t - np.nan_to_num(self._start, nan=np.inf) >= self.duration_s)


def oomd_pressure_kill(times_s, avg10_percent, pgscan_delta, memory_current_bytes, *,
                       limit_percent: float = OOMD_MEMORY_PRESSURE_LIMIT_PERCENT,
                       duration_s: float = OOMD_MEMORY_PRESSURE_DURATION_S,
                       preference=None) -> tuple[int, int]:
    """systemd-oomd's memory-pressure action (ManagedOOMMemoryPressure=kill) over a pressure
    history: (sample index at which it acts, cgroup it kills), or (-1, -1).

    ``avg10_percent`` is the monitored cgroup's pressure at ``times_s`` (shape [T]), or several
    monitored cgroups' (shape [T, m]); ``pgscan_delta`` and ``memory_current_bytes`` describe the
    candidate (descendant) cgroups at the time of the action. At the first sample where a
    monitored cgroup has stayed above the limit for the duration (OomdPressureMonitor), the victim
    is oomd_select_by_pgscan_rate's choice (-1 if no candidate has reclaim activity or memory).
    """
    t = np.asarray(times_s, dtype=float)
    p = np.asarray(avg10_percent, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"times_s: expected a 1-D array, got shape {t.shape}")
    if p.ndim not in (1, 2) or p.shape[0] != t.shape[0]:
        raise ValueError(f"avg10_percent: expected shape ({t.shape[0]},) or ({t.shape[0]}, m), "
                         f"got {p.shape}")
    p = p.reshape(t.shape[0], -1)
    mon = OomdPressureMonitor(p.shape[1], limit_percent=limit_percent, duration_s=duration_s)
    victim = oomd_select_by_pgscan_rate(pgscan_delta, memory_current_bytes, preference)
    for k in range(t.shape[0]):
        if mon.observe(t[k], p[k]).any():
            return k, victim
    return -1, -1
