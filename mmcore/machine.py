"""The simulated machine and its tasks: the syscall-shaped API over the JIT kernels."""
from __future__ import annotations

import copy
import errno as _errno
import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import oom
from .config import Config, KhugepagedConfig, THP_DEFRAG, THP_ENABLED, parse_size
from .kernels import consts as K
from .kernels import overcommit as OC
from .kernels import huge_memory as HM
from .kernels import khugepaged as KH
from .kernels import kthreads as KT
from .kernels import proc as P
from .kernels import sched as SCH
from .kernels import syscalls as S_
from .kernels import read_write as RW
from .files import DISK_FSTYPES, VFS
from .kernels import vmscan as VM
from .kernels.state import State, new_frames, with_frame_views
from .memcg import Cgroup, parse_path, workingset_names
from . import psi as PSI
from . import pageflags as PF

if TYPE_CHECKING:
    from .tlbsim import TLBShadow

_MAX_ADDR = K.TASK_SIZE
START_BRK = 0x555555559000      # PAGE_ALIGN(end of bss) of a small PIE binary, ASLR off
EV_CAP = 1 << 16                # event records held before Python drains them
SMP_CAP = 1 << 12
NEVER = 1 << 62
TF_CAP_SYS_ADMIN = K.TF_CAP_SYS_ADMIN  # task flags: holds CAP_SYS_ADMIN


class SegmentationFault(Exception):
    """An access outside any VMA or against its protection (SIGSEGV)."""

    def __init__(self, pid: int, address: int, write: bool):
        self.pid, self.address, self.write = pid, address, write
        kind = "write" if write else "read"
        super().__init__(f"task {pid}: SIGSEGV on {kind} at {address:#x}")


class BusError(Exception):
    """An access to a file mapping beyond the end of the file (SIGBUS)."""

    def __init__(self, pid: int, address: int, write: bool):
        self.pid, self.address, self.write = pid, address, write
        kind = "write" if write else "read"
        super().__init__(f"task {pid}: SIGBUS on {kind} at {address:#x}")


class OOMKilled(Exception):
    """The task was chosen by the OOM killer and killed (SIGKILL) while it ran."""

    def __init__(self, pid: int, comm: str):
        self.pid, self.comm = pid, comm
        super().__init__(f"task {pid} ({comm}): killed by the OOM killer")


class MemcgOOMWait(Exception):
    """The task sleeps on its memory cgroup's OOM wait queue: the memcg is at its limit, reclaim
    freed nothing and oom_kill_disable is set, so only an uncharge, a higher limit or the
    userspace OOM handler can wake it. (A scenario run waits for those; a direct call has nobody
    to wake it and raises this.)"""

    def __init__(self, pid: int, comm: str, path: str):
        self.pid, self.comm, self.path = pid, comm, path
        super().__init__(f"task {pid} ({comm}): waiting on the OOM of memory cgroup {path} "
                         "(oom_kill_disable is set)")


class OOMVictimWait(Exception):
    """The OOM killer found a victim it already killed that has not exited yet (it sleeps
    uninterruptibly, e.g. on a lock) and whose memory no oom_reaper has taken: the scan aborts
    and the allocating task waits for the victim (select_bad_process's abort)."""

    def __init__(self, pid: int, comm: str, victim: int):
        self.pid, self.comm, self.victim = pid, comm, victim
        super().__init__(f"task {pid} ({comm}): waiting for OOM victim {victim} to exit")


class OutOfMemoryPanic(Exception):
    """Memory ran out and the OOM killer found no task to kill (the kernel panics)."""


def _oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{what}: {os.strerror(code)}")


def _check_int(name: str, v: object, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], got {v}")
    return v


class Machine:
    """A simulated Linux machine: physical memory, tasks, page tables, TLBs and a clock.

    Parameters
    ----------
    config : Config, dict or None
        The machine; ``None`` takes every default (4 GiB, kernel 6.18, THP ``always``).
    seed : int
        Seed for everything random in the machine (recorded with results).
    """

    def __init__(self, config: Config | dict | None = None, *, seed: int = 0):
        if config is None:
            config = Config()
        elif isinstance(config, dict):
            config = Config.from_dict(config)
        elif not isinstance(config, Config):
            raise TypeError(f"config: expected a Config or a dict, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.seed = _check_int("seed", seed)
        self._tasks: dict[int, Task] = {}
        self._totalpages: int | None = None
        self._bases: np.ndarray | None = None      # int64[T]: each task's /proc baseline pages, summed
        self._all_order = np.zeros(0, np.int64)      # 0..tasks-1: a global OOM's scan order
        self._oom_kills = 0
        self._oom_kernel: str | None = None
        self._next_pid = 1
        self._dmesg: list[str] = []
        self._mm_names: dict[int, dict[int, str]] = {}
        self._ev_chunks: list[np.ndarray] = []
        self._smp_chunks: list[np.ndarray] = []
        self._tlb_shadow = None                # mmcore.tlbsim.TLBShadow, by shadow_tlbs()
        self.state = self._new_state()
        self._psi = PSI.PsiTracker()          # memory pressure (PSI) from task operations
        self._kswapd_busy_seen = 0            # FG_KSWAPD_BUSY_PS already given to the tracker
        self._psi_on = self.config.profile.version >= 420      # PSI is 4.20+
        self.vfs = VFS(self)
        root = Cgroup(self, 0, "/")
        self._cgroups: dict[str, Cgroup] = {"/": root}
        self._cgroups_by_id: list[Cgroup] = [root]
        self._wake_hooks: list = []            # called with a Cgroup when its OOM waiters may go on
        # OOM victims that cannot act on SIGKILL now (a scenario run's tasks asleep
        # uninterruptibly), the killed ones still alive, and the oom_reaper's queue
        self._stuck: set[int] = set()
        self._dying: dict[int, int] = {}       # tgid -> kill time (ps)
        self._pending_reap: list[tuple[int, int]] = []   # (due time ps, tgid)

    # ---- state -------------------------------------------------------------------------------
    def _new_state(self) -> State:
        c = self.config
        cfg = c.to_array()
        n = int(cfg[K.C_NR_FRAMES])
        ncpu = c.ncpus
        _, _, total = (0, 0, sum(e for e in (c.tlb.l1_4k_entries, c.tlb.l1_2m_entries, c.tlb.stlb_entries)))
        gs = np.zeros(K.NR_GS + K.NR_MC, np.int64)     # the scalars and the root memcg
        gs[K.G_NR_FREE] = n
        gs[K.G_NR_MEMCG] = 1
        gs[K.G_OOM_MEMCG] = -1
        root = K.G_MCG
        gs[root + K.MC_PARENT] = -1
        gs[root + K.MC_ONLINE] = 1
        for f in (K.MC_MAX, K.MC_HIGH, K.MC_SWAP_MAX, K.MC_MEMSW_MAX):
            gs[root + f] = K.PAGE_COUNTER_MAX
        gs[K.G_HUGE_ZERO_PFN] = -1
        gs[K.G_FREE_HEAD:K.G_FREE_COUNT] = -1
        slots = parse_size(c.swap, "swap") // 4096      # slot 0 is the swap header
        gs[K.G_NR_SWAP_FREE] = max(slots - 1, 0)
        gs[K.G_SWAP_CURSOR] = 1
        pt_cap, vma_cap, mm_cap, t_cap = 64, 256, 16, 16
        gs[K.G_PT_CAP] = pt_cap
        gs[K.G_VMA_CAP] = vma_cap
        gs[K.G_NEXT_SAMPLE] = 0 if cfg[K.C_SAMPLE_PS] > 0 else NEVER
        gs[K.G_KH_WAKE] = NEVER               # khugepaged sleeps until an mm enrols
        gs[K.G_KH_MM] = -1
        gs[K.G_DEFERRED_HEAD] = gs[K.G_DEFERRED_TAIL] = -1
        gs[K.G_KC_ORDER] = -1
        proactive = cfg[K.C_COMPACT_PROACTIVENESS] > 0 and cfg[K.C_KERNEL] >= 509
        gs[K.G_KC_WAKE] = KT.PROACTIVE_PERIOD_PS if proactive else NEVER
        gs[K.G_NEXT_EVENT] = min(gs[K.G_NEXT_SAMPLE], gs[K.G_KC_WAKE])
        fr_flags = np.zeros(n + 1, np.int32)
        fr_flags[n] = K.PG_reserved                      # the 4 KiB zero page
        tlb = np.zeros((ncpu, 3, total), np.int64)
        tlb[:, 0, :] = -1
        fr32, fr_order, fr_memcg, pb_mt = new_frames(n)      # the last three: views of fr32
        pb_mt[:] = K.MIGRATE_MOVABLE
        return State(
            cfg=cfg, gs=gs, vmstat=np.zeros(K.NR_VMSTAT, np.int64),
            fr32=fr32, fr_idx=np.zeros(n + 1, np.int64),
            fr_flags=fr_flags, fr_order=fr_order, fr_memcg=fr_memcg, pb_mt=pb_mt,
            pt=np.zeros(pt_cap * K.PTRS_PER_TABLE, np.int64),
            pt_aux=np.full((2, pt_cap), -1, np.int32),
            mm=np.zeros((K.NR_MM_FIELDS, mm_cap), np.int64),
            vma=np.zeros((K.NR_V_FIELDS, vma_cap), np.int64),
            task=np.zeros((K.NR_T_FIELDS, t_cap), np.int64),
            tlb=tlb,
            pwc=np.full((ncpu, max(1, 2 * (c.tlb.pde_cache_entries + c.tlb.pdpte_cache_entries))),
                        -1, np.int64),
            cpus=np.zeros((ncpu, K.NR_CPU_FIELDS), np.int64),
            ev=np.zeros((K.NR_EV_FIELDS, EV_CAP), np.int64),
            smp=np.zeros((K.NR_SMP_FIELDS, SMP_CAP), np.int64),
            **VFS.new_arrays(c),
            swp=np.zeros((K.NR_SWP, max(slots, 1)), np.int32),
            # shadow entries: eight per frame, as Linux's shadow shrinker allows densely filled
            # nodes; at least 2^10, at most 2^22 (64 MiB of host memory) (kernels/workingset.py)
            shadow=np.zeros((2, min(max(8 << max(n - 1, 1).bit_length(), 1 << 10), 1 << 22)),
                            np.int64),
        )

    def _grow(self) -> None:
        """Enlarge the page-table and VMA pools (a kernel returned NEED_GROW)."""
        s = self.state
        gs = s.gs
        fgs = s.fgs
        file_need = bool(fgs[K.FG_NEED_PC] or fgs[K.FG_NEED_WB] or fgs[K.FG_NEED_PT])
        want_pt = max(64, int(fgs[K.FG_NEED_PT]))
        cap = int(gs[K.G_PT_CAP])
        new = cap
        while gs[K.G_PT_NFREE] + new - gs[K.G_PT_NEXT] < want_pt:
            new *= 2
        if new != cap:
            pt = np.zeros(new * K.PTRS_PER_TABLE, np.int64)
            pt[: s.pt.shape[0]] = s.pt
            aux = np.full((2, new), -1, np.int32)
            aux[:, :cap] = s.pt_aux
            gs[K.G_PT_CAP] = new
            s = s._replace(pt=pt, pt_aux=aux)
        if not file_need:                 # the VMA pool (a VMA reservation asked)
            vcap = int(gs[K.G_VMA_CAP])
            vma = np.zeros((K.NR_V_FIELDS, vcap * 2), np.int64)
            vma[:, :vcap] = s.vma
            gs[K.G_VMA_CAP] = vcap * 2
            s = s._replace(vma=vma)
        self.state = s
        self.vfs.grow_if_needed(K.FAULT_PC_RESERVE)
        fgs = self.state.fgs
        fgs[K.FG_NEED_PC] = fgs[K.FG_NEED_WB] = fgs[K.FG_NEED_PT] = 0

    def _call(self, fn, *args):
        """Run an entry kernel, growing pools and re-entering until it stops asking."""
        while True:
            st, val = fn(self.state, *args)
            if st != K.NEED_GROW:
                return int(st), int(val)
            self._grow()

    def _service(self, st: int) -> bool:
        """Do what a kernel's status asks before re-entering it: True if it should re-enter."""
        if st == K.NEED_GROW:
            self._grow()
        elif st == K.FLUSH:
            self._flush()
        elif st == K.TIMER:
            self._background()
        else:
            return False
        return True

    def _background(self, until: int | None = None) -> None:
        """Run khugepaged's and kcompactd's wakeups (and the samples between them) due up to
        ``until`` ps (by default the time a kernel left at TIMER)."""
        if until is not None:
            self.state.gs[K.G_TIMER_UNTIL] = until
        while KT.background_run(self.state)[0] == K.FLUSH:
            self._flush()

    def advance(self, ns: int) -> None:
        """Let ``ns`` of simulated time pass with every task idle: khugepaged, kcompactd, the
        vmstat sampler, writeback and kswapd run up to then, and every task's clock moves there."""
        ns = _check_int("ns", ns, 0, 1 << 50)
        s = self.state
        live = [t._ti for t in self._tasks.values()]
        until = int(max([int(s.gs[K.G_NOW])] + [int(s.task[K.T_CLOCK, i]) for i in live])) + ns * 1000
        self._background(until)
        for i in live:
            s.task[K.T_CLOCK, i] = max(int(s.task[K.T_CLOCK, i]), until)
        self.vfs.call(RW.machine_catch_up, until)
        if self._psi_on:
            PSI.record_kswapd(self)

    def _flush(self) -> None:
        """Move the event and sample buffers' contents out of the state (a kernel said FLUSH)."""
        gs = self.state.gs
        n = int(gs[K.G_EV_N])
        if n:
            self._ev_chunks.append(self.state.ev[:, :n].copy())
            gs[K.G_EV_N] = 0
        n = int(gs[K.G_SMP_N])
        if n:
            self._smp_chunks.append(self.state.smp[:, :n].copy())
            gs[K.G_SMP_N] = 0

    def events(self) -> dict[str, np.ndarray]:
        """Every event recorded so far, as columns: time_ns, pid, op (``OP_NAMES`` index),
        address, result (0 or -errno), latency_ns, kind (fault kind)."""
        self._flush()
        ev = (np.concatenate(self._ev_chunks, axis=1) if self._ev_chunks
              else np.zeros((K.NR_EV_FIELDS, 0), np.int64))
        return {"time_ns": ev[K.EV_TIME] // 1000, "pid": ev[K.EV_PID], "op": ev[K.EV_OP],
                "address": ev[K.EV_ADDR], "result": ev[K.EV_RESULT],
                "latency_ns": ev[K.EV_LAT] // 1000, "kind": ev[K.EV_KIND]}

    def samples(self) -> dict[str, np.ndarray]:
        """The vmstat counters sampled every ``Config.sample_interval_ns`` of simulated time."""
        self._flush()
        sm = (np.concatenate(self._smp_chunks, axis=1) if self._smp_chunks
              else np.zeros((K.NR_SMP_FIELDS, 0), np.int64))
        out = {"time_ns": sm[K.SMP_TIME] // 1000}
        for j, name in enumerate(K.VMSTAT_NAMES):
            out[name] = sm[1 + j]
        return out

    def _ensure_rows(self, name: str, used: int) -> None:
        arr = getattr(self.state, name)
        if used < arr.shape[1]:
            return
        new = np.zeros((arr.shape[0], arr.shape[1] * 2), arr.dtype)
        new[:, : arr.shape[1]] = arr
        self.state = self.state._replace(**{name: new})

    # ---- tasks -------------------------------------------------------------------------------
    def spawn(self, comm: str = "task", oom_score_adj: int = 0, *,
              cap_sys_admin: bool = False) -> "Task":
        """Start a process with a fresh address space (as fork + execve of a small binary).
        ``cap_sys_admin`` gives it CAP_SYS_ADMIN (the OOM killer's root bonus before 4.17)."""
        if not isinstance(comm, str) or not comm:
            raise ValueError(f"comm: expected a non-empty string, got {comm!r}")
        adj = _check_int("oom_score_adj", oom_score_adj, -1000, 1000)
        if not isinstance(cap_sys_admin, bool):
            raise TypeError(f"cap_sys_admin: expected True or False, got {cap_sys_admin!r}")
        mmi = self._new_mm()
        t = self._new_task(comm[:15], mmi, adj)
        if cap_sys_admin:
            self.state.task[K.T_FLAGS, t._ti] |= TF_CAP_SYS_ADMIN
        return t

    def spawn_many(self, n: int, comm: str = "task", *, oom_score_adj=0, rss_pages=0,
                   swap_pages=0, pgtables_bytes=0) -> list["Task"]:
        """Start ``n`` processes at once, each with an empty address space (no VMAs; page-table
        roots are allocated at a first fault, as always) and, optionally, memory from before the
        machine as ``Machine.from_proc`` gives it: ``rss_pages`` (counted as anonymous),
        ``swap_pages`` and ``pgtables_bytes``, each one value or an array of ``n``. For OOM
        studies over a million tasks: one vectorised pass, no per-task kernel call."""
        n = _check_int("n", n, 0, 1 << 26)
        if not isinstance(comm, str) or not comm:
            raise ValueError(f"comm: expected a non-empty string, got {comm!r}")

        def col(name, v, lo, hi):
            a = np.asarray(v)
            if a.dtype.kind not in "iu" or a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n):
                raise ValueError(f"{name}: expected an integer or an integer array of length {n}, "
                                 f"got {a.dtype} of shape {a.shape}")
            a = np.broadcast_to(a.astype(np.int64), (n,))
            bad = np.flatnonzero((a < lo) | (a > hi))
            if bad.size:
                raise ValueError(f"{name}[{bad[0]}]: {a[bad[0]]} is out of range; expected "
                                 f"{lo}..{hi}")
            return a
        adj = col("oom_score_adj", oom_score_adj, -1000, 1000)
        rss = col("rss_pages", rss_pages, 0, 1 << 40)
        swap = col("swap_pages", swap_pages, 0, 1 << 40)
        pgt = col("pgtables_bytes", pgtables_bytes, 0, 1 << 50)
        s = self.state
        gs = s.gs
        m0, t0, v0 = int(gs[K.G_NR_MM]), int(gs[K.G_NR_TASKS]), int(gs[K.G_VMA_NEXT])
        vcap = 2
        for name, need in (("mm", m0 + n), ("task", t0 + n)):
            arr = getattr(self.state, name)
            if need > arr.shape[1]:
                new = np.zeros((arr.shape[0], max(need, 2 * arr.shape[1])), arr.dtype)
                new[:, : arr.shape[1]] = arr
                self.state = self.state._replace(**{name: new})
        if v0 + n * vcap > int(gs[K.G_VMA_CAP]):
            cap = max(v0 + n * vcap, 2 * int(gs[K.G_VMA_CAP]))
            vma = np.zeros((K.NR_V_FIELDS, cap), np.int64)
            vma[:, : s.vma.shape[1]] = s.vma
            gs[K.G_VMA_CAP] = cap
            self.state = self.state._replace(vma=vma)
        s = self.state
        mi = np.arange(m0, m0 + n, dtype=np.int64)
        ti = np.arange(t0, t0 + n, dtype=np.int64)
        mm = s.mm
        mm[:, m0:m0 + n] = 0
        mm[K.MM_PGD, mi] = -1
        mm[K.MM_ANON, mi] = mi
        mm[K.MM_USERS, mi] = 1
        mm[K.MM_BRK_START, mi] = mm[K.MM_BRK, mi] = START_BRK
        mm[K.MM_VBASE, mi] = v0 + (mi - m0) * vcap
        mm[K.MM_VCAP, mi] = vcap
        gs[K.G_VMA_NEXT] = v0 + n * vcap
        gs[K.G_NR_MM] = m0 + n
        pid0 = self._next_pid
        pids = np.arange(pid0, pid0 + n, dtype=np.int64)
        task = s.task
        task[:, t0:t0 + n] = 0
        task[K.T_PID, ti] = task[K.T_TGID, ti] = pids
        task[K.T_MM, ti] = mi
        task[K.T_CPU, ti] = ti % self.config.ncpus
        task[K.T_ADJ, ti] = adj
        task[K.T_ALIVE, ti] = 1
        task[K.T_CLOCK, ti] = gs[K.G_NOW]
        gs[K.G_NR_TASKS] = t0 + n
        self._next_pid = pid0 + n
        if self._bases is None:
            self._bases = np.zeros(task.shape[1], np.int64)
        elif self._bases.shape[0] < task.shape[1]:
            self._bases = np.pad(self._bases, (0, task.shape[1] - self._bases.shape[0]))
        self._bases[ti] = rss + swap + pgt // 4096       # all that oom_badness reads of them
        name = comm[:15]
        out = [Task(self, t, p, name) for t, p in zip(range(t0, t0 + n), range(pid0, pid0 + n))]
        self._tasks.update(zip(range(pid0, pid0 + n), out))
        self._cgroups["/"].procs_order.extend(range(pid0, pid0 + n))
        for t in out:
            if rss[t._ti - t0] or swap[t._ti - t0] or pgt[t._ti - t0]:
                t._baseline = (int(rss[t._ti - t0]), 0, 0, int(swap[t._ti - t0]),
                               int(pgt[t._ti - t0]) // 4096)
        return out

    def oom_victim(self, memcg: "Cgroup | str | None" = None) -> "Task | None":
        """The process the OOM killer would pick now: select_bad_process (the selection kernel
        over the task arrays) in scan order (process creation order; for a memcg OOM, ``memcg``'s
        subtree in pre-order and each cgroup's processes in the order they joined), with the
        profile's badness, eligibility and tie rules and the OOM's ``totalpages``; None if no task
        is eligible or a victim is still exiting (the scan aborts)."""
        cg = self._as_cgroup(memcg)
        i, _, abort = self._select(cg)
        if abort or i < 0:
            return None
        return self._task_at(i)

    def _select(self, cg: "Cgroup | None") -> tuple[int, int, bool]:
        s = self.state
        n = int(s.gs[K.G_NR_TASKS])
        if cg is None:
            # every task in creation order (the kernel skips the dead ones), kept between calls
            if self._all_order.shape[0] != n:
                self._all_order = np.arange(n, dtype=np.int64)
            order = self._all_order
            total = self.totalpages
        else:
            tis = [t._ti for c in cg.subtree() for tg in c.procs_order
                   for t in self._threads(tg)]
            order = np.array(tis, np.int64)
            total = self._memcg_totalpages(cg)
        if self._bases is not None and self._bases.shape[0] != s.task.shape[1]:
            b = np.zeros(s.task.shape[1], np.int64)     # the task table grew since
            w = min(b.shape[0], self._bases.shape[0])
            b[:w] = self._bases[:w]
            self._bases = b
        base = self._bases
        return oom.select_bad_process(order, s.task, s.mm, base, totalpages=total,
                                      kernel=self.oom_kernel, memcg_oom=cg is not None)

    def _threads(self, tgid: int) -> list["Task"]:
        lead = self._tasks.get(tgid)
        out = [lead] if lead is not None else []
        return out + [t for t in self._tasks.values() if t._tgid == tgid and t.pid != tgid]

    def _task_at(self, ti: int) -> "Task":
        pid = int(self.state.task[K.T_PID, ti])
        t = self._tasks[pid]
        return self._tasks.get(t._tgid, t)

    def _oom_candidates(self, cg: "Cgroup | None") -> list["Task"]:
        if cg is None:
            return [t for t in self._tasks.values() if t.pid == t._tgid]
        out = []
        for c in cg.subtree():
            for tg in c.procs_order:
                t = self._tasks.get(tg)
                if t is not None:
                    out.append(t)
        return out

    def _memcg_totalpages(self, cg: "Cgroup") -> int:
        """mem_cgroup_get_max: the memcg's limit plus the swap it may use (v2: swap.max; v1:
        memsw.limit - limit), at most the swap there is; 1 if that is 0."""
        mx = cg.limit_pages(K.MC_MAX)
        swap = int(self.state.cfg[K.C_SWAP_PAGES])
        extra = cg.limit_pages(K.MC_SWAP_MAX) if self.config.cgroups == 2 else \
            cg.limit_pages(K.MC_MEMSW_MAX) - mx
        return (mx + min(extra, swap)) or 1

    def _on_enomem(self, current: "Task", user_fault: bool) -> bool:
        """A kernel call of ``current`` failed with ENOMEM. Decide as the OOM model does:
        True to retry the call (a victim was killed), False to let ENOMEM stand. A global
        failure (the page allocator) runs the global OOM killer from any context; a memcg charge
        that failed runs the memcg OOM killer, returns ENOMEM (3.12's reliable model, outside a
        user fault; and with oom_kill_disable outside a user fault from 4.19), or waits
        (oom_kill_disable: ``MemcgOOMWait``). Raises OOMKilled if ``current`` was the victim."""
        gs = self.state.gs
        mc = int(gs[K.G_OOM_MEMCG])
        gs[K.G_OOM_MEMCG] = -1
        if not self.config.oom_killer:
            return False
        if mc < 0:
            self._out_of_memory(current)
            return True
        cg = self._cgroups_by_id[mc]
        model = self.config.oom
        if model == "reliable" and not user_fault:
            return False                       # mem_cgroup_oom_enable only in user faults
        if cg.oom_kill_disable:
            if model == "current" and not user_fault:
                return False
            cg._set(K.MC_EV_OOM, cg._g(K.MC_EV_OOM) + 1)
            cg._set(K.MC_UNDER_OOM, cg._g(K.MC_UNDER_OOM) + 1)
            self._memcg_notify_oom(cg)
            raise MemcgOOMWait(current.pid, current.comm, cg.path)
        return self._out_of_memory(current, cg)

    def _memcg_notify_oom(self, cg: "Cgroup") -> None:
        """mem_cgroup_oom_notify: the v1 eventfd listeners of the memcg and its ancestors."""
        for hook in self._wake_hooks:
            hook(cg, "oom")

    def _memcg_wake(self, cg: "Cgroup") -> None:
        """memcg_oom_recover: an uncharge or a higher limit may let its OOM waiters go on."""
        for hook in self._wake_hooks:
            hook(cg, "recover")

    def _out_of_memory(self, current: "Task | None", memcg: "Cgroup | None" = None) -> bool:
        """out_of_memory() (global) or mem_cgroup_out_of_memory(): pick the victim, log as the
        profile's kernel does (``mmcore.oom``'s line formats), kill its thread group (its memory
        is freed at once; the oom_reaper line follows from 4.6), count oom_kill (and the memcg's
        oom and oom_kill events). With memory.oom.group set on the victim's memcg (or an ancestor
        below the OOM's), every task in that memcg dies. A victim asleep uninterruptibly (a
        scenario run's lock) cannot exit: it is marked and, from 4.6, left to the oom_reaper.
        Returns False if a memcg OOM found nothing to kill. Raises OOMVictimWait if an earlier
        victim is still exiting, OOMKilled if ``current`` was a victim, OutOfMemoryPanic if a
        global OOM finds no task."""
        i, points, abort = self._select(memcg)
        if abort:
            scope = None if memcg is None else set(memcg.subtree())
            waiting = [tg for tg in self._dying if tg in self._tasks and
                       (scope is None or self._tasks[tg].cgroup in scope)]
            raise OOMVictimWait(current.pid if current else 0, current.comm if current else "",
                                waiting[0] if waiting else 0)
        victim = self._task_at(i) if i >= 0 else None
        k = self.oom_kernel
        kv = oom._version(k)

        def fmt(fn, *a, **kw):
            """A line in ``k``'s format; where ``mmcore.oom`` does not model that version's
            exact layout (4.5-4.18 headers, 4.14's task dump), the nearest later one."""
            try:
                return fn(*a, kernel=k, **kw)
            except ValueError:
                return fn(*a, kernel="4.19" if kv < (5, 0) else "6.18", **kw)
        log = self._dmesg
        comm = current.comm if current is not None else "sh"
        adj = current.oom_score_adj if current is not None else 0
        gfp, flags = (0xcc0, "GFP_KERNEL") if memcg is not None else \
            (0x140dca, "GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO")
        log.append(fmt(oom.oom_invoked_line, comm, gfp, 0, adj, gfp_flags=flags))
        if memcg is not None:
            memcg._set(K.MC_EV_OOM, memcg._g(K.MC_EV_OOM) + 1)
            if kv < (4, 19) and victim is not None:
                log.append(f"Task in {victim.cgroup.path} killed as a result of limit of "
                           f"{memcg.path}")
            log.append(f"memory: usage {memcg.current // 1024}kB, limit "
                       f"{memcg.limit_pages() * 4}kB, failcnt {memcg._g(K.MC_FAILCNT)}")
            if self.config.cgroups == 2:
                log.append(f"swap: usage {memcg._g(K.MC_SWAP_USAGE) * 4}kB, limit "
                           f"{memcg.limit_pages(K.MC_SWAP_MAX) * 4}kB, failcnt 0")
            else:
                log.append(f"memory+swap: usage {memcg.current // 1024}kB, limit "
                           f"{memcg.limit_pages(K.MC_MEMSW_MAX) * 4}kB, failcnt 0")
            log.append(f"Memory cgroup stats for {memcg.path}:")
            log.extend(f"{key} {val}" for key, val in memcg.stat().items())
            if victim is None:
                return False
        elif victim is None:
            log.append("Kernel panic - not syncing: System is deadlocked on memory")
            raise OutOfMemoryPanic("Kernel panic - not syncing: System is deadlocked on memory")
        log.extend(fmt(oom.oom_dump_tasks_header))
        mm = self.state.mm
        for t in sorted(self._oom_candidates(memcg), key=lambda x: x.pid):
            if t.pid == 1:
                continue                               # dump_tasks: leaders, no global init
            st = t.status()
            log.append(fmt(oom.oom_dump_task_row, t.pid, 0, t._tgid,
                           int(mm[K.MM_TOTAL_VM, t._mmi]), st["RssAnon"] // 4, st["RssFile"] // 4,
                           st["RssShmem"] // 4, st["VmPTE"] * 1024, st["VmSwap"] // 4,
                           t.oom_score_adj, t.comm))
        vcg = victim.cgroup
        if kv >= (5, 0):
            log.append(oom.oom_kill_summary_line(
                "CONSTRAINT_NONE" if memcg is None else "CONSTRAINT_MEMCG", victim.comm,
                victim.pid, 0, k, oom_memcg=None if memcg is None else memcg.path,
                task_memcg=vcg.path))
        total = self.totalpages if memcg is None else self._memcg_totalpages(memcg)
        if kv < (5, 1):
            score = points * 1000 // total if points < (1 << 62) else 1000
            log.append(oom.oom_kill_process_line(victim.pid, victim.comm, score, k,
                                                 memcg=memcg is not None))
            victim = self._sacrifice_child(victim, memcg, total)
        victims = [victim]
        group = self._oom_group(victim, memcg)
        if group is not None:
            # mem_cgroup_scan_tasks(oom_group, oom_kill_memcg_member): every process of the group
            # but unkillable ones (-1000, init); the victim again too: it still has its mm while
            # it exits, so __oom_kill_process logs and counts it a second time
            victims += [self._tasks[tg] for c in group.subtree() for tg in c.procs_order
                        if tg in self._tasks and tg != 1 and
                        self._tasks[tg].oom_score_adj != -1000]
        died_current = False
        for v in victims:                    # SIGKILL and the log line, each call of it
            vst = v.status()
            log.append(fmt(oom.oom_killed_process_line, v.pid, v.comm, vst["VmSize"],
                           vst["RssAnon"], vst["RssFile"], vst["RssShmem"],
                           pgtables_bytes=vst["VmPTE"] * 1024, oom_score_adj=v.oom_score_adj,
                           memcg=memcg is not None))
            c = v.cgroup
            c._set(K.MC_EV_OOM_KILL, c._g(K.MC_EV_OOM_KILL) + 1)
            self._oom_kills += 1
        for v in dict.fromkeys(victims):     # then they exit, each once
            threads = [t for t in self._tasks.values() if t._tgid == v._tgid]
            if v._tgid in self._stuck and (current is None or v._tgid != current._tgid):
                # SIGKILL is pending but the victim sleeps uninterruptibly: it exits when it
                # wakes; from 4.6 the oom_reaper takes its memory (2 s later from 5.18)
                for t in threads:
                    self.state.task[K.T_FLAGS, t._ti] |= K.TF_MEMDIE
                now = int(self.state.task[K.T_CLOCK, current._ti]) if current else \
                    int(self.state.gs[K.G_NOW])
                self._dying[v._tgid] = now
                mm[K.MM_FLAGS, v._mmi] |= 1 << K.MMF_OOM_VICTIM
                if self.config.profile.version >= 406:
                    delay = 2 * 10**12 if self.config.profile.version >= 518 else 0
                    self._pending_reap.append((now + delay, v._tgid))
                continue
            for t in threads:
                t.exit()
            if kv >= (4, 6):
                log.append(oom.oom_reaper_line(v.pid, v.comm, 0, 0, 0, k))
            died_current |= current is not None and v._tgid == current._tgid
        if group is not None:                        # one group kill, counted at the group
            group._set(K.MC_EV_OOM_GROUP_KILL, group._g(K.MC_EV_OOM_GROUP_KILL) + 1)
        if memcg is not None:
            self._memcg_wake(memcg)
        if died_current:
            raise OOMKilled(current.pid, current.comm)
        return True

    def _sacrifice_child(self, p: "Task", memcg: "Cgroup | None", total: int) -> "Task":
        """oom_kill_process before 5.1 ("... or sacrifice child"): of the children of every
        thread of ``p`` (in fork order) that have an mm of their own, the one with the highest
        oom_badness is killed instead, if any scores above 0 (victim_points starts at 0; an
        unkillable child scores 0, and for a memcg OOM so does one outside the memcg)."""
        victim, victim_points = p, 0
        scope = None if memcg is None else {c.id for c in memcg.subtree()}
        threads = [p] + [t for t in self._tasks.values() if t._tgid == p._tgid and t is not p]
        for t in threads:
            for child in sorted((c for c in self._tasks.values()
                                 if c._ppid == t.pid and c.pid == c._tgid), key=lambda c: c.pid):
                if child._mmi == p._mmi:
                    continue                             # process_shares_mm
                if scope is not None and child.cgroup.id not in scope:
                    continue                             # task_in_mem_cgroup: unkillable here
                if self.state.task[K.T_FLAGS, child._ti] & K.TF_KTHREAD:
                    continue
                cp = child.oom_badness(total)
                if cp > victim_points:
                    victim, victim_points = child, cp
        return victim

    def _oom_reap(self, tgid: int, locked: bool = False) -> None:
        """The oom_reaper on a victim that has not exited: unmap its private memory (anonymous
        and private file pages; mlocked VMAs are left, as can_madv_lru_vma does) and set
        MMF_OOM_SKIP, so the OOM killer may pick someone else. ``locked``: its mmap lock is
        held for writing, so the read-trylock fails (after MAX_OOM_REAP_RETRIES the reaper gives
        up and sets MMF_OOM_SKIP all the same)."""
        v = self._tasks.get(tgid)
        if v is None:
            return
        s = self.state
        if locked:
            self._dmesg.append(f"oom_reaper: unable to reap pid:{v.pid} ({v.comm})")
        else:
            mm, vma = s.mm, s.vma
            b, n = int(mm[K.MM_VBASE, v._mmi]), int(mm[K.MM_VCOUNT, v._mmi])
            ranges = [(int(vma[K.V_START, i]), int(vma[K.V_END, i])) for i in range(b, b + n)
                      if vma[K.V_FILE, i] != -2 and not vma[K.V_FLAGS, i] & K.VM_LOCKED and
                      (vma[K.V_FILE, i] == -1 or not vma[K.V_FLAGS, i] & K.VM_SHARED)]
            clock = int(s.task[K.T_CLOCK, v._ti])
            for lo, hi in ranges:
                self._call(S_.sys_madvise, v._ti, lo, hi - lo, K.MADV_DONTNEED)
            s.task[K.T_CLOCK, v._ti] = clock                  # the reaper's time, not the victim's
            st = v.status()
            self._dmesg.append(oom.oom_reaper_line(v.pid, v.comm, st["RssAnon"], st["RssFile"],
                                                   st["RssShmem"], self.oom_kernel))
        s.mm[K.MM_FLAGS, v._mmi] |= 1 << K.MMF_OOM_SKIP
        for cg in self.cgroups():
            self._memcg_wake(cg)

    def _oom_group(self, victim: "Task", memcg: "Cgroup | None") -> "Cgroup | None":
        """mem_cgroup_get_oom_group: the highest memcg with memory.oom.group set from the
        victim's up to the OOM's domain (the root for a global OOM), v2 and 4.19+ only."""
        if self.config.cgroups != 2 or self.config.profile.version < 419:
            return None
        found = None
        c: Cgroup | None = victim.cgroup
        stop = memcg.id if memcg is not None else 0
        while c is not None and c.id != 0:
            if c._g(K.MC_OOM_GROUP):
                found = c
            if c.id == stop:
                break
            c = c.parent
        return found

    # ---- memory cgroups --------------------------------------------------------------------------
    def cgroup(self, path: str = "/", *, create: bool = False) -> Cgroup:
        """The memory cgroup at ``path`` ("/" is the root); ``create=True`` makes it (as mkdir in
        the cgroup filesystem: the parent must exist, EEXIST if it does)."""
        p = parse_path(path)
        cg = self._cgroups.get(p)
        if not create:
            if cg is None:
                raise _oserror(_errno.ENOENT, f"cgroup {p} (no such cgroup; create it with "
                               "create=True)")
            return cg
        if cg is not None:
            raise _oserror(_errno.EEXIST, f"mkdir cgroup {p}")
        parent = self._cgroups.get(p.rsplit("/", 1)[0] or "/")
        if parent is None:
            raise _oserror(_errno.ENOENT, f"mkdir cgroup {p} (its parent does not exist)")
        s = self.state
        n = int(s.gs[K.G_NR_MEMCG])
        if n >= 65535:
            raise _oserror(_errno.ENOSPC, f"mkdir cgroup {p} (MEM_CGROUP_ID_MAX memcgs exist)")
        gs = np.concatenate([s.gs, np.zeros(K.NR_MC, np.int64)])
        b = K.G_MCG + n * K.NR_MC
        gs[b + K.MC_PARENT] = parent.id
        gs[b + K.MC_ONLINE] = 1
        for f in (K.MC_MAX, K.MC_HIGH, K.MC_SWAP_MAX, K.MC_MEMSW_MAX):
            gs[b + f] = K.PAGE_COUNTER_MAX
        gs[K.G_NR_MEMCG] = n + 1
        lru = s.lru
        if lru.shape[1] <= n:
            lru = np.zeros((lru.shape[0], max(2 * lru.shape[1], n + 1)), np.int64)
            lru[K.LV_HEAD:K.LV_PAGES] = -1
            lru[:, : s.lru.shape[1]] = s.lru
        self.state = s._replace(gs=gs, lru=lru)
        cg = Cgroup(self, n, p)
        self._cgroups[p] = cg
        self._cgroups_by_id.append(cg)
        parent.children.append(cg)
        return cg

    def cgroups(self) -> list[Cgroup]:
        """Every memory cgroup, the root first, in pre-order."""
        return self._cgroups["/"].subtree()

    def _as_cgroup(self, cg) -> "Cgroup | None":
        if cg is None or isinstance(cg, Cgroup):
            if isinstance(cg, Cgroup) and cg.machine is not self:
                raise ValueError(f"memcg: {cg!r} belongs to another machine")
            return cg
        return self.cgroup(cg)

    def _cgroup_attach(self, cg: Cgroup, task: "Task") -> None:
        if task.machine is not self:
            raise ValueError(f"task: {task!r} belongs to another machine")
        task._alive()
        s = self.state
        old = self._cgroups_by_id[int(s.task[K.T_MEMCG, task._ti])]
        if old is cg:
            return                                   # cgroup_attach_task to its own cgroup: no-op
        for t in self._tasks.values():
            if t._tgid == task._tgid:
                s.task[K.T_MEMCG, t._ti] = cg.id
        s.mm[K.MM_MEMCG, task._mmi] = cg.id          # mm->owner moved: new charges go here
        if task._tgid in old.procs_order:
            old.procs_order.remove(task._tgid)
        cg.procs_order.append(task._tgid)

    def _cgroup_rmdir(self, cg: Cgroup) -> None:
        if cg.id == 0:
            raise _oserror(_errno.EBUSY, "rmdir the root cgroup")
        if cg.procs or cg.children:
            raise _oserror(_errno.EBUSY, f"rmdir cgroup {cg.path} (it has tasks or children)")
        # the memcg goes offline; pages still charged to it keep it (a zombie memcg) until freed
        cg._set(K.MC_ONLINE, 0)
        del self._cgroups[cg.path]
        parent = cg.parent
        if parent is not None:
            parent.children.remove(cg)

    def _memcg_shrink_to(self, cg: Cgroup, pages: int, oom: bool, high: bool) -> bool:
        """A lower limit was written: reclaim the subtree under it (memory_max_write,
        memory_high_write, mem_cgroup_resize_max). memory.max then OOM-kills inside the memcg
        until usage fits; v1's limit_in_bytes gives up (False: EBUSY); memory.high just stops."""
        retries = K.MAX_RECLAIM_RETRIES
        while cg._g(K.MC_USAGE) > pages:
            got = VM.try_to_free_mem_cgroup_pages(self.state, cg.id, cg._g(K.MC_USAGE) - pages)
            if got > 0:
                continue
            if retries > 0:
                retries -= 1
                continue
            if high:
                return True
            if not oom:
                return False
            if not self._out_of_memory(None, cg):
                break
        return True

    @property
    def totalpages(self) -> int:
        """RAM plus swap in pages: the global OOM killer's ``totalpages``."""
        if self._totalpages is not None:
            return self._totalpages
        return int(self.state.cfg[K.C_NR_FRAMES]) + int(self.state.cfg[K.C_SWAP_PAGES])

    @property
    def oom_kernel(self) -> str:
        """The kernel version whose OOM arithmetic the machine uses (its profile's, or the live
        kernel's for a machine built ``from_proc``)."""
        return self._oom_kernel or self.config.kernel

    @classmethod
    def from_proc(cls, snap, config: Config | dict | None = None) -> "Machine":
        """A machine holding the processes of a ``mmcore.procfs.snapshot``: same pids, comms,
        oom_score_adj and CAP_SYS_ADMIN, and each process's RSS, swap and page tables at the time
        of the snapshot as a baseline its OOM score and status count (the baseline occupies no
        simulated frames: new work on the machine adds to it). ``totalpages`` and the OOM
        arithmetic are the live kernel's."""
        if config is None:
            mem = -(-snap.mem_total_kb // 4096) * (4 << 20)
            config = Config(memory=mem)
        m = cls(config)
        m._totalpages = snap.totalpages
        m._oom_kernel = snap.kernel
        for pt in snap.tasks:
            if pt.pid in m._tasks:
                raise ValueError(f"snapshot: pid {pt.pid} appears twice")
            t = m._new_task(pt.comm[:15], m._new_mm(), pt.oom_score_adj, pid=pt.pid)
            if pt.cap_sys_admin:
                m.state.task[K.T_FLAGS, t._ti] |= TF_CAP_SYS_ADMIN
            t._baseline = (pt.rss_anon_kb // 4, pt.rss_file_kb // 4, pt.rss_shmem_kb // 4,
                           pt.swap_kb // 4, pt.pte_kb // 4)
            t._ppid = pt.ppid                            # for the pre-5.1 child sacrifice
        m._bases = np.zeros(m.state.task.shape[1], np.int64)
        for t in m._tasks.values():
            m._bases[t._ti] = sum(t._baseline)           # oom_badness reads only their sum
        return m

    def _new_mm(self, vcap: int = 8, specials: bool = True) -> int:
        gs = self.state.gs
        mmi = int(gs[K.G_NR_MM])
        self._ensure_rows("mm", mmi)
        mm = self.state.mm
        mm[:, mmi] = 0
        mm[K.MM_PGD, mmi] = -1
        mm[K.MM_ANON, mmi] = mmi
        mm[K.MM_USERS, mmi] = 1
        mm[K.MM_BRK_START, mmi] = mm[K.MM_BRK, mmi] = START_BRK
        while gs[K.G_VMA_NEXT] + vcap > gs[K.G_VMA_CAP]:
            self._grow()
        mm = self.state.mm
        mm[K.MM_VBASE, mmi] = gs[K.G_VMA_NEXT]
        mm[K.MM_VCAP, mmi] = vcap
        gs[K.G_VMA_NEXT] += vcap
        gs[K.G_NR_MM] = mmi + 1
        if not specials:
            self._mm_names[mmi] = {}
            return mmi
        # the vDSO data and code pages the kernel maps at exec, just below mmap_base
        base = self.config.mmap_base
        vma = self.state.vma
        b = int(mm[K.MM_VBASE, mmi])
        specials = [(base - 0x8000, base - 0x4000, K.VM_READ | K.VM_MAYREAD, "[vvar]"),
                    (base - 0x4000, base - 0x2000, K.VM_READ | K.VM_MAYREAD, "[vvar_vclock]"),
                    (base - 0x2000, base, K.VM_READ | K.VM_EXEC | K.VM_MAYREAD | K.VM_MAYEXEC,
                     "[vdso]")]
        for i, (s, e, f, name) in enumerate(specials):
            vma[K.V_START, b + i], vma[K.V_END, b + i], vma[K.V_FLAGS, b + i] = s, e, f
            vma[K.V_PGOFF, b + i], vma[K.V_FILE, b + i] = 0, -2
        mm[K.MM_VCOUNT, mmi] = 3
        mm[K.MM_TOTAL_VM, mmi] = 8
        self._mm_names[mmi] = {s: name for s, _, _, name in specials}
        return mmi

    def _new_task(self, comm: str, mmi: int, adj: int, tgid: int | None = None,
                  pid: int | None = None) -> "Task":
        gs = self.state.gs
        ti = int(gs[K.G_NR_TASKS])
        self._ensure_rows("task", ti)
        t = self.state.task
        t[:, ti] = 0
        if pid is None:
            pid = self._next_pid
        self._next_pid = max(self._next_pid, pid + 1)
        t[K.T_PID, ti] = pid
        t[K.T_TGID, ti] = pid if tgid is None else tgid
        t[K.T_MM, ti] = mmi
        t[K.T_CPU, ti] = ti % self.config.ncpus
        t[K.T_ADJ, ti] = adj
        t[K.T_ALIVE, ti] = 1
        if tgid is None:
            self._cgroups["/"].procs_order.append(pid)       # a new process starts in the root
        t[K.T_CLOCK, ti] = self.state.gs[K.G_NOW]
        gs[K.G_NR_TASKS] = ti + 1
        task = Task(self, ti, pid, comm)
        self._tasks[pid] = task
        return task

    # ---- batch runs -----------------------------------------------------------------------------
    _OPS = {"mmap": (K.OP_MMAP, 4), "munmap": (K.OP_MUNMAP, 2), "mprotect": (K.OP_MPROTECT, 3),
            "madvise": (K.OP_MADVISE, 3), "prctl": (K.OP_PRCTL, 3), "touch": (K.OP_TOUCH, 4),
            "access": (K.OP_ACCESS, 2), "brk": (K.OP_BRK, 1), "mlock": (K.OP_MLOCK, 2),
            "munlock": (K.OP_MUNLOCK, 2)}

    def run(self, ops: Sequence[tuple]) -> np.ndarray:
        """Run many tasks' operations in one kernel call, interleaved in simulated time.

        ``ops`` is a sequence of ``(task, name, *args)``: ``("mmap", addr, length, prot, flags)``,
        ``("munmap", addr, length)``, ``("mprotect", addr, length, prot)``,
        ``("madvise", addr, length, advice)``, ``("prctl", option, arg2, arg3)``,
        ``("touch", addr, length, stride, write)``, ``("access", addr, write)``, ``("brk", addr)``,
        ``("mlock", addr, length)``, ``("munlock", addr, length)``. Each task's ops keep their
        order; across tasks the op that can start first runs first (ties: lower pid). Returns an
        int64 array ``(3, len(ops))``: each op's status (0 or -errno; 1000 for SIGSEGV; 1007 for
        a task the OOM killer killed before or during the op), value, and its position in the
        order the ops ran. A touch or access that finds no memory runs the OOM killer and
        restarts, as in the call-by-call API.
        """
        n = len(ops)
        arr = np.zeros((K.NR_OP_ROWS, n), np.int64)
        for k, op in enumerate(ops):
            if len(op) < 2 or not isinstance(op[0], Task) or op[0].machine is not self:
                raise ValueError(f"ops[{k}]: expected (task of this machine, name, *args), got {op!r}")
            task, name, args = op[0], op[1], op[2:]
            if name not in self._OPS:
                raise ValueError(f"ops[{k}]: unknown operation {name!r}; known: {sorted(self._OPS)}")
            code, nargs = self._OPS[name]
            if len(args) != nargs:
                raise ValueError(f"ops[{k}]: {name} takes {nargs} arguments, got {len(args)}")
            if not task._alive_flag():
                raise ProcessLookupError(f"ops[{k}]: task {task.pid} has exited")
            arr[K.OPR_CODE, k] = code
            arr[K.OPR_TASK, k] = task._ti
            for j, v in enumerate(args):
                arr[K.OPR_A0 + j, k] = _check_int(f"ops[{k}] argument {j + 1}", v, -(1 << 62), 1 << 62)
        tis = arr[K.OPR_TASK]
        streams = np.unique(tis)
        order = np.argsort(tis, kind="stable").astype(np.int64)
        tstart = np.searchsorted(tis[order], streams, side="left").astype(np.int64)
        tend = np.searchsorted(tis[order], streams, side="right").astype(np.int64)
        cursor = tstart.copy()
        res = np.zeros((3, n), np.int64)
        rs = np.full(SCH.NR_RS, -1, np.int64)
        rs[SCH.RS_SEQ] = 0
        while True:
            st, k = SCH.run_ops(self.state, arr, order, tstart, tend, cursor, res, rs)
            if st == K.OOM:
                ti = int(arr[K.OPR_TASK, k])
                current = next(t for t in self._tasks.values() if t._ti == ti)
                try:
                    if not self._on_enomem(current, user_fault=True):
                        # nothing could be killed (a memcg OOM without a victim): the op fails
                        j = int(np.flatnonzero(order[np.minimum(cursor, n - 1)] == k)[0])
                        res[0, k], res[2, k] = -_errno.ENOMEM, rs[SCH.RS_SEQ]
                        rs[SCH.RS_SEQ] += 1
                        cursor[j] += 1
                        rs[SCH.RS_OP] = -1
                except OOMKilled:
                    rs[SCH.RS_OP] = -1          # its op ends here; its stream stops
                continue
            if not self._service(st):
                break
        # the ops of tasks the OOM killer took that never ran (or never finished)
        alive = self.state.task[K.T_ALIVE]
        for j in range(tstart.shape[0]):
            for idx in order[cursor[j]:tend[j]]:
                if not alive[arr[K.OPR_TASK, idx]]:
                    res[0, idx] = K.KILLED
        return res

    def tasks(self) -> list["Task"]:
        return list(self._tasks.values())

    # ---- snapshots --------------------------------------------------------------------------------
    def __setstate__(self, d: dict) -> None:
        """Unpickling and deep copies: ``fr_order``, ``fr_memcg`` and ``pb_mt`` are views of a row
        of ``fr32``, which a copy would turn into arrays of their own; point them at the copied
        row again."""
        self.__dict__.update(d)
        s = d.get("state")
        if s is not None:
            self.state = with_frame_views(s)

    def _psi_groups(self, cg: int) -> list[int]:
        """The PSI groups a task of memcg ``cg`` counts in: its memcg and every ancestor (the
        root's group is the whole system's)."""
        gs = self.state.gs
        out = []
        c = cg
        while c >= 0:
            out.append(c)
            c = int(gs[K.G_MCG + c * K.NR_MC + K.MC_PARENT])
        return out

    def pressure(self) -> str:
        """/proc/pressure/memory (4.20+): the ``some`` and ``full`` lines as the kernel prints
        them, from the memory stalls of the tasks' operations (``mmcore.psi``)."""
        return PSI.pressure_text(self, 0, "/proc/pressure/memory")

    def shadow_tlbs(self, geometries) -> "TLBShadow":
        """From now on, replay every access the tasks make (``Task.touch``, ``Task.access``, a
        scenario's ops) against each of ``geometries`` (``TLBConfig`` or dicts of its fields) as
        well, in one kernel pass per call; ``.counts()`` on the result gives their L1 dTLB misses
        and page walks. The batched mode of TLB sweeps: the machine runs once, with its own TLB,
        and nothing it does changes. What a replay leaves out: ``mmcore.tlbsim.TLBShadow``."""
        from .tlbsim import TLBShadow
        if self._tlb_shadow is not None:
            raise RuntimeError("shadow_tlbs: this machine already has shadow TLBs")
        self._tlb_shadow = TLBShadow(self, geometries)
        return self._tlb_shadow

    def snapshot(self) -> "MachineSnapshot":
        """A copy of the whole machine: every state array and the Python-side state (tasks,
        files, open file descriptors, logs, recorded events). A sweep warms a machine up once and
        branches many points from it with ``Machine.restore``."""
        return MachineSnapshot(copy.deepcopy(self))

    @classmethod
    def restore(cls, snap: "MachineSnapshot") -> "Machine":
        """A new machine in the state ``snap`` was taken in (the snapshot stays reusable)."""
        if not isinstance(snap, MachineSnapshot):
            raise TypeError(f"snap: expected a MachineSnapshot, got {type(snap).__name__}")
        return copy.deepcopy(snap._machine)

    def save(self, path: str | os.PathLike) -> None:
        """Write the machine to an HDF5 file: one dataset per state array (``state/<name>``) and
        the Python-side state pickled in ``python``; written to a temporary file and renamed, so
        the path holds a whole machine or nothing. Files are tied to the mmcore version and the
        state layout that wrote them (``Machine.load`` checks both)."""
        import pickle

        import h5py
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        state = self.state
        self.state = None                 # pickled apart from its arrays, references intact
        try:
            blob = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.state = state
        try:
            with h5py.File(tmp, "w") as f:
                g = f.create_group("state")
                for name, arr in self.state._asdict().items():
                    if name in _FRAME_VIEWS:
                        continue                  # their bytes are fr32's
                    g.create_dataset(name, data=arr, compression="lzf" if arr.size > 4096 else None)
                f.create_dataset("python", data=np.frombuffer(blob, np.uint8))
                f.attrs["mmcore_version"] = _version()
                f.attrs["layout"] = _layout_hash()
                f.attrs["complete"] = True
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Machine":
        """A machine saved with ``Machine.save``."""
        import pickle

        import h5py
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False):
                raise ValueError(f"{path}: not a complete machine file")
            if f.attrs.get("layout") != _layout_hash():
                raise ValueError(f"{path}: written by mmcore {f.attrs.get('mmcore_version')} with "
                                 f"another state layout; this is mmcore {_version()}")
            arrays = {name: (None if name in _FRAME_VIEWS else f["state"][name][()])
                      for name in State._fields}
            m = pickle.loads(f["python"][()].tobytes())
        m.state = with_frame_views(State(**arrays))
        return m

    # ---- filesystems ---------------------------------------------------------------------------
    def mount(self, path: str, fstype: str, size: int | str | None = None, *, disk=None,
              huge: str = "never") -> None:
        """Mount a filesystem: ``ext4`` (delayed allocation, unwritten extents), ``xfs`` (ext4's
        block model, its own fallocate ENOSPC rule, large folios from 5.18), ``ext2`` (blocks
        allocated by write() or at writeback), ``tmpfs`` (memory, size defaults to half of it) or
        ``ramfs`` (memory, unlimited). ``disk`` is a ``mmcore.files.Disk`` or a dict of its
        fields. Sizes are bytes or strings such as ``"8GiB"``. ``huge`` is tmpfs's ``huge=``
        option (4.8+ profiles): ``never``, ``always``, ``within_size`` or ``advise``."""
        if huge not in K.SHMEM_HUGE_NAMES[:4]:
            raise ValueError(f"huge: expected one of {list(K.SHMEM_HUGE_NAMES[:4])}, got {huge!r}")
        if huge != "never":
            if fstype != "tmpfs":
                raise ValueError(f"huge: only tmpfs takes huge=, got huge={huge!r} for {fstype}")
            if self.config.profile.version < 408:
                raise ValueError(f"huge: kernel {self.config.kernel} has no tmpfs huge pages "
                                 f"(4.8+), got huge={huge!r}")
            if self.config.huge_page_cache != "mainline":
                raise ValueError(f"huge: tmpfs huge= is the mainline huge page cache; this machine "
                                 f"models {self.config.huge_page_cache!r} (ramfs only)")
        if size is None:
            if fstype in DISK_FSTYPES:
                raise ValueError(f"size: a {fstype} filesystem needs a size, e.g. size='8GiB'")
            size = self.config.memory_bytes // 2 if fstype == "tmpfs" else 0
        self.vfs.mount(path, fstype, size, disk)
        self.vfs.state.fs[K.FS_HUGE, len(self.vfs.mounts) - 1] = K.SHMEM_HUGE_NAMES.index(huge)

    def sync(self) -> None:
        """sync(2) at the machine's clock: write back every dirty page and wait for the disks."""
        self.vfs.call(RW.sys_sync, -1)

    def fs_stats(self, path: str) -> dict[str, int]:
        """A mounted filesystem's free blocks and its disk's bytes read and written."""
        return self.vfs.fs_stats(path)

    def zoneinfo(self) -> dict[str, int]:
        """The zone's free pages and watermarks in pages, as /proc/zoneinfo shows them."""
        fgs = self.vfs.state.fgs
        return {"pages free": int(self.state.gs[K.G_NR_FREE]), "min": int(fgs[K.FG_WMARK_MIN]),
                "low": int(fgs[K.FG_WMARK_LOW]), "high": int(fgs[K.FG_WMARK_HIGH]),
                "managed": int(self.state.cfg[K.C_NR_FRAMES])}

    # ---- sysfs -------------------------------------------------------------------------------
    _THP = "kernel/mm/transparent_hugepage/"

    def sysfs_write(self, path: str, value: str | int) -> None:
        """Write a /sys knob (path relative to /sys, e.g. ``kernel/mm/transparent_hugepage/enabled``)."""
        p = path.removeprefix("/sys/").strip("/")
        v = str(value).strip()
        cfg = self.state.cfg
        was_on = bool(HM.hugepage_pmd_enabled(cfg))
        if p == self._THP + "enabled":
            if v not in THP_ENABLED:
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}")
            self.config.thp_enabled = v
            cfg[K.C_THP_ENABLED] = THP_ENABLED[v]
        elif p == self._THP + "defrag":
            if v not in self.config.profile.defrag_modes:
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}")
            self.config.thp_defrag = v
            cfg[K.C_THP_DEFRAG] = THP_DEFRAG[v]
        elif p == self._THP + "shmem_enabled" and self.config.profile.version >= 408:
            if v not in K.SHMEM_HUGE_NAMES:
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}")
            self.config.shmem_enabled = v
            cfg[K.C_SHMEM_ENABLED] = K.SHMEM_HUGE_NAMES.index(v)
        elif p == self._THP + "use_zero_page":
            if v not in ("0", "1"):
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}")
            self.config.thp_use_zero_page = v == "1"
            cfg[K.C_USE_ZERO_PAGE] = int(v)
        elif p == self._THP + "shrink_underused" and self.config.profile.version >= 612:
            if v not in ("0", "1"):
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}")
            self.config.thp_shrink_underused = v == "1"
            cfg[K.C_SHRINK_UNDERUSED] = int(v)
        elif p.startswith(self._KH) and p[len(self._KH):] in self._KH_KNOBS:
            name = p[len(self._KH):]
            lo, hi = KhugepagedConfig.LIMITS[name]
            try:
                n = int(v)
            except ValueError:
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}") from None
            if not lo <= n <= hi:
                raise _oserror(_errno.EINVAL, f"write {v!r} to {path}")
            setattr(self.config.khugepaged, name, n)
            idx, scale = self._KH_KNOBS[name]
            cfg[idx] = n * scale
            if name.endswith("sleep_millisecs"):
                self._wake_khugepaged()       # khugepaged_sleep_expire = 0; wake_up_interruptible
            return
        else:
            raise _oserror(_errno.ENOENT, f"/sys/{p}")
        # start_stop_khugepaged, after enabled and (6.12+) shmem_enabled: khugepaged runs while
        # hugepage_pmd_enabled (THP on, or 6.12+ shmem THP on); a write of enabled wakes it
        on = bool(HM.hugepage_pmd_enabled(cfg))
        shmem = p == self._THP + "shmem_enabled" and self.config.profile.version >= 612
        if p == self._THP + "enabled" or shmem:
            if not on:
                self.state.gs[K.G_KH_WAKE] = NEVER            # stopped
                self._rearm()
            elif not shmem or not was_on:
                self._wake_khugepaged()

    _KH = _THP + "khugepaged/"
    _KH_KNOBS = {"pages_to_scan": (K.C_KH_PAGES_TO_SCAN, 1),
                 "scan_sleep_millisecs": (K.C_KH_SCAN_SLEEP_PS, 1_000_000_000),
                 "alloc_sleep_millisecs": (K.C_KH_ALLOC_SLEEP_PS, 1_000_000_000),
                 "defrag": (K.C_KH_DEFRAG, 1), "max_ptes_none": (K.C_KH_MAX_PTES_NONE, 1),
                 "max_ptes_swap": (K.C_KH_MAX_PTES_SWAP, 1),
                 "max_ptes_shared": (K.C_KH_MAX_PTES_SHARED, 1)}

    def _rearm(self) -> None:
        gs = self.state.gs
        gs[K.G_NEXT_EVENT] = min(int(gs[K.G_NEXT_SAMPLE]), int(gs[K.G_KH_WAKE]), int(gs[K.G_KC_WAKE]))

    def _wake_khugepaged(self) -> None:
        """Wake khugepaged now if it has an mm to scan and runs (hugepage_pmd_enabled; else it
        sleeps on)."""
        s = self.state
        gs = s.gs
        enrolled = bool((s.mm[K.MM_KH_SEQ, :int(gs[K.G_NR_MM])] != 0).any())
        if enrolled and HM.hugepage_pmd_enabled(s.cfg):
            gs[K.G_KH_WAKE] = min(int(gs[K.G_KH_WAKE]), int(gs[K.G_NOW]))
            self._rearm()

    def khugepaged(self) -> dict[str, int]:
        """khugepaged's sysfs counters plus what the engine measures of it: ``pages_collapsed``,
        ``full_scans``, ``pages_scanned`` (its progress count, in PTEs) and ``busy_ns``."""
        gs = self.state.gs
        return {"pages_collapsed": int(gs[K.G_KH_COLLAPSED]), "full_scans": int(gs[K.G_KH_FULL_SCANS]),
                "pages_scanned": int(gs[K.G_KH_SCANNED]), "busy_ns": int(gs[K.G_KH_BUSY_PS]) // 1000}

    def sysfs_read(self, path: str) -> str:
        p = path.removeprefix("/sys/").strip("/")
        if p.startswith(self._KH):
            name = p[len(self._KH):]
            if name in self._KH_KNOBS:
                return str(getattr(self.config.khugepaged, name))
            if name in ("pages_collapsed", "full_scans"):
                return str(self.khugepaged()[name])
        if p == self._THP + "enabled":
            return " ".join(f"[{m}]" if m == self.config.thp_enabled else m
                            for m in ("always", "madvise", "never"))
        if p == self._THP + "defrag":
            return " ".join(f"[{m}]" if m == self.config.defrag else m
                            for m in self.config.profile.defrag_modes)
        if p == self._THP + "use_zero_page":
            return str(int(self.config.thp_use_zero_page))
        if p == self._THP + "shrink_underused" and self.config.profile.version >= 612:
            return str(int(self.config.thp_shrink_underused))
        if p == self._THP + "shmem_enabled" and self.config.profile.version >= 408:
            return " ".join(f"[{m}]" if m == self.config.shmem_enabled else m
                            for m in K.SHMEM_HUGE_NAMES)
        if p == self._THP + "hpage_pmd_size":
            return str(K.HPAGE_PMD_SIZE)
        raise _oserror(_errno.ENOENT, f"/sys/{p}")

    # ---- clocks and observables ---------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        return int(self.state.gs[K.G_NOW]) // 1000

    def vmstat(self) -> dict[str, int]:
        """/proc/vmstat counters (names as the kernel's)."""
        d = {name: int(v) for name, v in zip(K.VMSTAT_NAMES, self.state.vmstat)}
        d["nr_free_pages"] = int(self.state.gs[K.G_NR_FREE])
        v = self.vfs
        d["nr_inactive_file"] = v.lru_pages(K.LRU_INACTIVE_FILE)
        d["nr_active_file"] = v.lru_pages(K.LRU_ACTIVE_FILE)
        d["nr_slab_reclaimable"] = v.slab_pages()
        d["oom_kill"] = self._oom_kills
        return workingset_names(d, self.config.profile.version)

    def fault_latency_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Every page fault's latency (simulated), counted inside the kernels in log2 buckets, so
        no event log is needed: (counts, bucket_edges_ns) with edges 0, 1, 2, 4, ... ns, as
        ``mmcore.trace.log2_histogram`` gives them."""
        counts = self.state.gs[K.G_HIST_FAULT:K.G_HIST_FAULT + K.NR_HIST].copy()
        edges = np.concatenate([[0], np.left_shift(1, np.arange(K.NR_HIST, dtype=np.int64))])
        return counts, edges.astype(np.int64)

    def fault_latency_percentiles(self, percentiles=(50, 90, 99, 99.9)) -> dict[str, int]:
        """Upper bounds (ns) of page-fault latency percentiles, from the in-kernel histogram:
        the upper edge of the bucket each percentile falls in (within a factor of 2)."""
        counts, edges = self.fault_latency_histogram()
        total = int(counts.sum())
        out = {}
        cum = np.cumsum(counts)
        for p in percentiles:
            if not 0 < p <= 100:
                raise ValueError(f"percentiles: expected values in (0, 100], got {p!r}")
            if total == 0:
                out[f"p{p:g}"] = 0
                continue
            i = int(np.searchsorted(cum, np.ceil(total * p / 100.0)))
            out[f"p{p:g}"] = int(edges[i + 1])
        return out

    def kpageflags(self, pfns) -> np.ndarray:
        """/proc/kpageflags: the KPF_* bits (uint64) of each frame number in ``pfns``, in the
        kernel's layout (``mmcore.pageflags.KPF`` names the bits; NOPAGE past the last frame)."""
        return PF.kpageflags(self.state, pfns)

    def kpagecount(self, pfns) -> np.ndarray:
        """/proc/kpagecount: how many page-table entries map each frame of ``pfns`` (uint64)."""
        return PF.kpagecount(self.state, pfns)

    def buddyinfo(self) -> list[int]:
        """Free blocks per order (0..10), all migratetypes, as /proc/buddyinfo counts them."""
        gs = self.state.gs
        counts = gs[K.G_FREE_COUNT:K.G_FREE_COUNT + K.NR_PAGE_ORDERS * K.MIGRATE_PCPTYPES]
        per = counts.reshape(K.NR_PAGE_ORDERS, K.MIGRATE_PCPTYPES).sum(axis=1)
        per[K.MAX_PAGE_ORDER] += (self.state.cfg[K.C_NR_FRAMES] - gs[K.G_HIGH_WATER]) >> K.MAX_PAGE_ORDER
        return [int(x) for x in per]

    def buddyinfo_text(self) -> str:
        return "Node 0, zone   Normal " + "".join(f"{c:7d}" for c in self.buddyinfo())

    def meminfo(self) -> dict[str, int]:
        """/proc/meminfo fields in kB."""
        v = self.state.vmstat
        n = int(self.state.cfg[K.C_NR_FRAMES])
        fs = self.vfs
        free = int(self.state.gs[K.G_NR_FREE])
        file_lru = fs.lru_pages(K.LRU_INACTIVE_FILE) + fs.lru_pages(K.LRU_ACTIVE_FILE)
        low = int(fs.state.fgs[K.FG_WMARK_LOW])
        slab = fs.slab_pages()
        # si_mem_available: free above the reserve, plus the file LRU and reclaimable slab that
        # can go without dropping below the low watermark
        avail = max(0, free - int(fs.state.fgs[K.FG_WMARK_HIGH]) + file_lru - min(file_lru // 2, low)
                    + slab - min(slab // 2, low))
        return {
            "MemTotal": n * 4,
            "MemFree": free * 4,
            "MemAvailable": avail * 4,
            "Buffers": 0,
            "Cached": int(v[K.VS_NR_FILE_PAGES]) * 4,
            "SwapCached": 0,
            "Active(file)": fs.lru_pages(K.LRU_ACTIVE_FILE) * 4,
            "Inactive(file)": fs.lru_pages(K.LRU_INACTIVE_FILE) * 4,
            "Unevictable": int(v[K.VS_NR_UNEVICTABLE]) * 4,
            "Dirty": int(v[K.VS_NR_DIRTY]) * 4,
            "Writeback": int(v[K.VS_NR_WRITEBACK]) * 4,
            "AnonPages": int(v[K.VS_NR_ANON_PAGES]) * 4,
            "Mapped": int(v[K.VS_NR_MAPPED]) * 4,
            "Shmem": int(v[K.VS_NR_SHMEM]) * 4,
            "KReclaimable": slab * 4,
            "SReclaimable": slab * 4,
            "PageTables": int(v[K.VS_NR_PAGE_TABLE_PAGES]) * 4,
            "Mlocked": int(v[K.VS_NR_MLOCK]) * 4,
            "SwapTotal": int(self.state.cfg[K.C_SWAP_PAGES]) * 4,
            "SwapFree": int(self.state.gs[K.G_NR_SWAP_FREE]) * 4,
            "CommitLimit": int(OC.vm_commit_limit(self.state.cfg)) * 4,
            "Committed_AS": int(self.state.gs[K.G_COMMITTED]) * 4,
            "AnonHugePages": int(v[K.VS_NR_ANON_THP]) * 2048,
            "ShmemHugePages": int(v[K.VS_NR_SHMEM_HUGEPAGES]) * 2048,
            "ShmemPmdMapped": int(v[K.VS_NR_SHMEM_PMDMAPPED]) * 2048,
            "FileHugePages": int(v[K.VS_NR_FILE_HUGEPAGES]) * 2048,
            "FilePmdMapped": int(v[K.VS_NR_FILE_PMDMAPPED]) * 2048,
            "Hugepagesize": 2048,
        }

    def dmesg(self) -> list[str]:
        return list(self._dmesg)


class MachineSnapshot:
    """A machine frozen by ``Machine.snapshot()``; ``Machine.restore(snap)`` makes live copies."""

    def __init__(self, machine: Machine):
        self._machine = machine

    def __repr__(self) -> str:
        m = self._machine
        return (f"<MachineSnapshot {m.config.memory} kernel {m.config.kernel}, "
                f"{len(m._tasks)} tasks, t={m.now_ns} ns>")


def _version() -> str:
    from . import __version__
    return __version__


_FRAME_VIEWS = ("fr_order", "fr_memcg", "pb_mt")   # State fields that are views of fr32


def _layout_hash() -> str:
    """What a saved machine's arrays mean: every row/field constant of the state layout."""
    import hashlib
    h = hashlib.sha256()
    for name in sorted(dir(K)):
        if name.isupper() and isinstance(getattr(K, name), (int, tuple)):
            h.update(f"{name}={getattr(K, name)!r};".encode())
    return h.hexdigest()[:16]


class Task:
    """A process (or thread) of a ``Machine``; methods are named after the system calls."""

    def __init__(self, machine: Machine, index: int, pid: int, comm: str):
        self.machine = machine
        self._ti = index
        self.pid = pid
        self.comm = comm
        self._baseline = (0, 0, 0, 0, 0)     # pages from before the machine (Machine.from_proc)
        self._ppid = 0                         # the task that forked it (its real_parent)

    def __repr__(self) -> str:
        return f"<Task pid={self.pid} comm={self.comm!r}>"

    @property
    def _mmi(self) -> int:
        return int(self.machine.state.task[K.T_MM, self._ti])

    @property
    def time_ns(self) -> int:
        """Simulated time this task's clock has reached."""
        return int(self.machine.state.task[K.T_CLOCK, self._ti]) // 1000

    # ---- life cycle ----------------------------------------------------------------------------
    def _alive(self) -> None:
        """Check the task lives, then run the timed events due before its next operation."""
        m = self.machine
        if not m.state.task[K.T_ALIVE, self._ti]:
            raise ProcessLookupError(f"task {self.pid} has exited")
        if m.state.gs[K.G_NEXT_EVENT] < NEVER:
            while m._service(SCH.tick(m.state, self._ti)[0]):
                pass

    def fork(self) -> "Task":
        """fork(2): a child with a copy-on-write copy of this address space."""
        self._alive()
        m = self.machine
        pm = self._mmi
        names = dict(m._mm_names.get(pm, {}))
        cnt = int(m.state.mm[K.MM_VCOUNT, pm])
        cmm = m._new_mm(vcap=max(8, 2 * cnt), specials=False)
        child = m._new_task(self.comm, cmm, int(m.state.task[K.T_ADJ, self._ti]))
        m.state.task[K.T_FLAGS, child._ti] = m.state.task[K.T_FLAGS, self._ti]
        st, _ = m._call(S_.sys_fork, self._ti, child._ti, cmm)
        m._mm_names[cmm] = names
        if st < 0:
            m.state.task[K.T_ALIVE, child._ti] = 0
            m.state.mm[K.MM_USERS, cmm] = 0
            del m._tasks[child.pid]
            raise _oserror(-st, "fork")
        child._ppid = self.pid
        m._cgroups["/"].procs_order.remove(child.pid)    # the child is in its parent's cgroup
        self.cgroup.procs_order.append(child.pid)
        table = m.vfs.fdtable(self._tgid)
        m.vfs.fdtables[child.pid] = dict(table)          # the child shares the open files
        for of in table.values():
            m.vfs.state.ino[K.I_REFS, of.ino] += 1
        return child

    def clone_thread(self) -> "Task":
        """clone(CLONE_VM | CLONE_THREAD): a thread sharing this task's mm."""
        self._alive()
        m = self.machine
        m.state.mm[K.MM_USERS, self._mmi] += 1
        tgid = int(m.state.task[K.T_TGID, self._ti])
        t = m._new_task(self.comm, self._mmi, int(m.state.task[K.T_ADJ, self._ti]), tgid=tgid)
        m._call(S_.charge_syscall, self._ti, False)
        m.state.task[K.T_CLOCK, t._ti] = m.state.task[K.T_CLOCK, self._ti]
        m.state.task[K.T_MEMCG, t._ti] = m.state.task[K.T_MEMCG, self._ti]   # same css_set
        return t

    def execve(self, comm: str) -> None:
        """execve(2): a fresh address space; the THP-disable state survives (MMF_INIT_MASK)."""
        self._alive()
        if not isinstance(comm, str) or not comm:
            raise ValueError(f"comm: expected a non-empty string, got {comm!r}")
        m = self.machine
        old = self._mmi
        tgid = int(m.state.task[K.T_TGID, self._ti])
        zapped = 0
        for other in list(m._tasks.values()):       # de_thread: the other threads go first,
            if other is not self and other._alive_flag() and other._mmi == old and \
                    int(m.state.task[K.T_TGID, other._ti]) == tgid:   # within this call
                zapped += m._call(S_.mm_put, old)[1]
                m.state.task[K.T_ALIVE, other._ti] = 0
                del m._tasks[other.pid]
        new = m._new_mm()
        mm = m.state.mm
        keep = (1 << K.MMF_DISABLE_THP_COMPLETELY) | (1 << K.MMF_DISABLE_THP_EXCEPT_ADVISED)
        mm[K.MM_FLAGS, new] = mm[K.MM_FLAGS, old] & keep
        mm[K.MM_DEF_FLAGS, new] = mm[K.MM_DEF_FLAGS, old] & K.VM_NOHUGEPAGE
        mm[K.MM_MEMCG, new] = m.state.task[K.T_MEMCG, self._ti]     # charged where it lives
        m.state.task[K.T_MM, self._ti] = new
        zapped += m._call(S_.mm_put, old)[1]
        m._call(S_.charge_syscall, self._ti, zapped > 0)
        m.state.task[K.T_TGID, self._ti] = self.pid                 # the exec'ing task leads
        self.comm = comm[:15]

    def _alive_flag(self) -> bool:
        return bool(self.machine.state.task[K.T_ALIVE, self._ti])

    def exit(self) -> None:
        """exit(2): the task ends; its address space goes with its last user."""
        self._alive()
        m = self.machine
        _, zapped = m._call(S_.mm_put, self._mmi)
        m._call(S_.charge_syscall, self._ti, zapped > 0)
        m.state.task[K.T_ALIVE, self._ti] = 0
        del m._tasks[self.pid]
        if not any(int(m.state.task[K.T_TGID, t._ti]) == self._tgid for t in m._tasks.values()):
            m._dying.pop(self._tgid, None)
            for fd in list(m.vfs.fdtable(self._tgid)):        # the last thread closes the files
                m.vfs.release(m.vfs.fdtables[self._tgid].pop(fd).ino)
        m.vfs.reap()

    # ---- memory mapping ------------------------------------------------------------------------
    def mmap(self, length: int, prot: int = K.PROT_READ | K.PROT_WRITE,
             flags: int = K.MAP_PRIVATE | K.MAP_ANONYMOUS, addr: int = 0, *, fd: int | None = None,
             offset: int = 0) -> int:
        """mmap(2): anonymous memory, or (``fd``, ``offset``) a file, MAP_SHARED or MAP_PRIVATE;
        returns the address."""
        self._alive()
        length = _check_int("length", length, 0, 1 << 62)
        prot = _check_int("prot", prot, 0, 0xFFFFFFFF)
        flags = _check_int("flags", flags, 0, 0xFFFFFFFF)
        addr = _check_int("addr", addr, 0, 1 << 62)
        offset = _check_int("offset", offset, 0, 1 << 62)
        ii = -1
        if not flags & K.MAP_ANONYMOUS:
            if fd is None:
                raise ValueError("fd: a mapping without MAP_ANONYMOUS needs a file descriptor")
            of = self._fd(fd, "mmap")
            if offset & 4095:
                raise _oserror(_errno.EINVAL, "mmap (offset not page-aligned)")
            acc = of.flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
            shared = flags & K.MAP_TYPE in (K.MAP_SHARED, K.MAP_SHARED_VALIDATE)
            if acc == os.O_WRONLY or (shared and prot & K.PROT_WRITE and
                                      (acc != os.O_RDWR or of.flags & os.O_APPEND)):
                raise _oserror(_errno.EACCES, "mmap")
            ii = of.ino
        elif (flags & K.MAP_TYPE) in (K.MAP_SHARED, K.MAP_SHARED_VALIDATE):
            raise NotImplementedError("mmap: MAP_SHARED|MAP_ANONYMOUS (shared memory) is not "
                                      "modelled yet; map a tmpfs file MAP_SHARED instead")
        st, a = self.machine._call(S_.sys_mmap, self._ti, addr, length, prot, flags, ii,
                                   offset >> 12)
        if st < 0:
            raise _oserror(-st, "mmap")
        ln = (length + 4095) & ~4095
        deff = int(self.machine.state.mm[K.MM_DEF_FLAGS, self._mmi])
        if deff & K.VM_LOCKED and not deff & K.VM_LOCKONFAULT:       # mlockall(MCL_FUTURE)
            self._populate(a, ln, 2, mm_populate=True)
        elif flags & K.MAP_POPULATE:
            # populate_vma_page_range: FOLL_WRITE for private writable mappings only
            self._populate(a, ln, 2 if ii >= 0 else (1 if prot & K.PROT_WRITE else 0),
                           mm_populate=True)
        return a

    def _populate(self, start: int, length: int, write: int, mm_populate: bool = False) -> None:
        """Fault in a range: write 0 reads, 1 writes, 2 as mlock does (writes where writable).
        ``mm_populate``: after mmap or brk, whose callers ignore a memcg charge that fails
        (the range stays partly populated)."""
        va, end = start, start + length
        while True:
            st, va = S_.populate_range(self.machine.state, self._ti, va, end, int(write))
            memcg = self.machine.state.gs[K.G_OOM_MEMCG] >= 0
            if st == -_errno.ENOMEM and self.machine._on_enomem(self, user_fault=False):
                continue                     # a victim died; populating goes on
            if st == -_errno.ENOMEM and memcg and mm_populate:
                return
            if st != K.NEED_GROW:
                break
            self.machine._grow()
        if st < 0:
            raise _oserror(-st, "populate")

    def munmap(self, addr: int, length: int) -> None:
        self._alive()
        addr = _check_int("addr", addr, 0, 1 << 62)
        length = _check_int("length", length, 0, 1 << 62)
        st, _ = self.machine._call(S_.sys_munmap, self._ti, addr, length)
        if st < 0:
            raise _oserror(-st, "munmap")
        self.machine.vfs.reap()

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2) of anonymous memory."""
        self._alive()
        addr = _check_int("addr", addr, 0, 1 << 62)
        length = _check_int("length", length, 0, 1 << 62)
        prot = _check_int("prot", prot, 0, 0xFFFFFFFF)
        st, _ = self.machine._call(S_.sys_mprotect, self._ti, addr, length, prot)
        if st < 0:
            raise _oserror(-st, "mprotect")

    def mlock(self, addr: int, length: int, *, onfault: bool = False) -> None:
        """mlock(2) (``onfault``: mlock2 with MLOCK_ONFAULT): lock and populate the range."""
        self._lock(addr, length, True, onfault)

    def munlock(self, addr: int, length: int) -> None:
        self._lock(addr, length, False, False)

    def _lock(self, addr: int, length: int, lock: bool, onfault: bool) -> None:
        self._alive()
        addr = _check_int("addr", addr, 0, 1 << 62)
        length = _check_int("length", length, 0, 1 << 62)
        st, populate = self.machine._call(S_.sys_mlock, self._ti, addr, length, lock, onfault)
        if st < 0:
            raise _oserror(-st, "mlock" if lock else "munlock")
        if populate:
            start = addr & ~4095
            self._populate(start, ((length + (addr & 4095) + 4095) & ~4095), 2)

    def mlockall(self, flags: int) -> None:
        """mlockall(2) with MCL_CURRENT, MCL_FUTURE and MCL_ONFAULT."""
        self._alive()
        flags = _check_int("flags", flags, -(1 << 31), (1 << 31) - 1)
        if flags == 0:
            raise _oserror(_errno.EINVAL, "mlockall")
        st, populate = self.machine._call(S_.sys_mlockall, self._ti, flags)
        if st < 0:
            raise _oserror(-st, "mlockall")
        if populate:
            # mm_populate(0, TASK_SIZE) with errors ignored: a VMA that cannot be populated
            # (no memory) is left where it stopped, and the call still succeeds
            for start, end, _ in self.vmas():
                try:
                    self._populate(start, end - start, 2)
                except OSError:
                    continue

    def munlockall(self) -> None:
        self._alive()
        self.machine._call(S_.sys_mlockall, self._ti, 0)

    def brk(self, addr: int = 0, *, populate: bool = True) -> int:
        """brk(2): returns the new (or unchanged) program break. ``populate=False`` leaves an
        mlockall'ed heap for the caller to populate (a scenario run does it in slices)."""
        self._alive()
        addr = _check_int("addr", addr, 0, 1 << 62)
        old = int(self.machine.state.mm[K.MM_BRK, self._mmi])
        st, res = self.machine._call(S_.sys_brk, self._ti, addr)
        deff = int(self.machine.state.mm[K.MM_DEF_FLAGS, self._mmi])
        if populate and res > old and deff & K.VM_LOCKED and not deff & K.VM_LOCKONFAULT:
            a = (old + 4095) & ~4095
            self._populate(a, ((res + 4095) & ~4095) - a, 2, mm_populate=True)
        return res

    def madvise(self, addr: int, length: int, advice: int) -> int:
        self._alive()
        addr = _check_int("addr", addr, 0, 1 << 62)
        length = _check_int("length", length, 0, 1 << 62)
        advice = _check_int("advice", advice, -(1 << 31), (1 << 31) - 1)
        if advice == K.MADV_COLLAPSE and self.machine.config.profile.madv_collapse:
            st, _ = self.machine._call(KH.sys_madvise_collapse, self._ti, addr, length)
            if st < 0:
                raise _oserror(-st, "madvise(MADV_COLLAPSE)")
            return 0
        st, populate = self.machine._call(S_.sys_madvise, self._ti, addr, length, advice)
        if st < 0:
            raise _oserror(-st, "madvise")
        if advice == K.MADV_WILLWRITE:
            return populate                   # the bytes prepared (0: not supported here)
        if populate:
            write = advice == K.MADV_POPULATE_WRITE
            end = addr + ((length + 4095) & ~4095)
            err, limit = S_.madvise_populate_extent(self.machine.state, self._ti, addr, end, write)
            if limit > addr:
                self._populate(addr, int(limit) - addr, write)
            if err < 0:
                raise _oserror(-int(err), "madvise")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """prctl(2) for the THP options; returns the call's value."""
        self._alive()
        args = [_check_int(n, v, -(1 << 63), (1 << 63) - 1)
                for n, v in (("option", option), ("arg2", arg2), ("arg3", arg3), ("arg4", arg4),
                             ("arg5", arg5))]
        st, val = self.machine._call(S_.sys_prctl_thp, self._ti, *args)
        if st < 0:
            raise _oserror(-st, "prctl")
        return val

    # ---- files ---------------------------------------------------------------------------------
    @property
    def _tgid(self) -> int:
        return int(self.machine.state.task[K.T_TGID, self._ti])

    def _fd(self, fd: int, what: str):
        fd = _check_int("fd", fd, -(1 << 31), (1 << 31) - 1)
        of = self.machine.vfs.fdtable(self._tgid).get(fd)
        if of is None:
            raise _oserror(_errno.EBADF, what)
        return of

    def _file(self, fd: int, what: str, write: bool = False):
        """The open file behind ``fd``, checked for reading (or writing)."""
        of = self._fd(fd, what)
        acc = of.flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        if (write and acc == os.O_RDONLY) or (not write and acc == os.O_WRONLY):
            raise _oserror(_errno.EBADF, what)
        return of

    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
        """open(2) with ``os.O_*`` flags (O_CREAT, O_EXCL, O_TRUNC, O_APPEND and the access
        mode); returns the lowest free file descriptor (3 upwards: 0-2 are the standard streams)."""
        from .files import _KNOWN_O
        self._alive()
        flags = _check_int("flags", flags, 0, (1 << 31) - 1)
        _check_int("mode", mode, 0, 0o7777)
        if flags & ~_KNOWN_O:
            raise ValueError(f"flags: {flags & ~_KNOWN_O:#o} are open flags the model does not "
                             f"support (supported: O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, "
                             f"O_TRUNC, O_APPEND, O_CLOEXEC, O_NOATIME)")
        if flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) == 3:
            raise _oserror(_errno.EINVAL, f"open {path}")
        vfs = self.machine.vfs
        fsi, norm = vfs.resolve(path)
        ii = vfs.paths.get(norm)
        if ii is None:
            if not flags & os.O_CREAT:
                raise _oserror(_errno.ENOENT, f"open {path}")
            ii = vfs._new_inode(fsi)
            vfs.paths[norm] = ii
            vfs.inode_paths[ii] = norm
            created = True
        elif flags & os.O_CREAT and flags & os.O_EXCL:
            raise _oserror(_errno.EEXIST, f"open {path}")
        else:
            created = False
        vfs.call(RW.file_lookup, self._ti, ii)
        if flags & os.O_TRUNC and not created:
            vfs.call(RW.sys_ftruncate, self._ti, ii, 0, 0)       # do_open: within this call
        table = vfs.fdtable(self._tgid)
        fd = 3
        while fd in table:
            fd += 1
        from .files import OpenFile
        table[fd] = OpenFile(ii, flags, norm)
        vfs.state.ino[K.I_REFS, ii] += 1
        return fd

    def close(self, fd: int) -> None:
        self._alive()
        self._fd(fd, "close")
        vfs = self.machine.vfs
        of = vfs.fdtable(self._tgid).pop(int(fd))
        self.machine._call(S_.charge_syscall, self._ti, False)
        if of.flags & (os.O_WRONLY | os.O_RDWR) and self.machine.config.huge_page_cache != "mainline" \
                and not any(o.ino == of.ino and o.flags & (os.O_WRONLY | os.O_RDWR)
                            for tab in vfs.fdtables.values() for o in tab.values()):
            vfs.call(RW.split_last_huge, of.ino)     # the 2013 series: the last writer's close
        vfs.release(of.ino)

    def pread(self, fd: int, offset: int, length: int) -> int:
        """pread(2): read ``length`` bytes at ``offset`` through the page cache (contents are not
        simulated); returns the bytes read (fewer at end of file)."""
        self._alive()
        of = self._file(fd, "pread")
        offset = _check_int("offset", offset, 0, 1 << 62)
        length = _check_int("length", length, 0, 1 << 40)
        st, n = self.machine.vfs.call(RW.sys_pread, self._ti, of.ino, offset, length, of.ra)
        if st < 0:
            raise _oserror(-st, "pread")
        return n

    def pwrite(self, fd: int, offset: int, length: int) -> int:
        """pwrite(2) of ``length`` bytes at ``offset`` (O_APPEND: at the end of the file);
        returns the bytes written."""
        self._alive()
        of = self._file(fd, "pwrite", write=True)
        offset = _check_int("offset", offset, 0, 1 << 62)
        length = _check_int("length", length, 0, 1 << 40)
        vfs = self.machine.vfs
        if of.flags & os.O_APPEND:
            offset = int(vfs.state.ino[K.I_SIZE, of.ino])
        if length == 0:
            self.machine._call(S_.charge_syscall, self._ti, False)
            return 0
        fsi = int(vfs.state.ino[K.I_FS, of.ino])
        nblocks = int(vfs.state.fs[K.FS_BLOCKS, fsi])
        if offset + length > (1 << 44):
            raise _oserror(_errno.EFBIG, "pwrite")
        if vfs.state.fs[K.FS_TYPE, fsi] in K.BLOCK_FSTYPES:
            if (offset + length + 4095) // 4096 > 4 * nblocks + 16:
                raise _oserror(_errno.EFBIG, "pwrite")
            vfs.ensure_blocks(of.ino, (offset + length + 4095) // 4096)
        done = 0
        gs = self.machine.state.gs
        while True:
            st, n = vfs.call(RW.sys_pwrite, self._ti, of.ino, offset + done, length - done)
            done += max(n, 0)
            # a memcg charge failed part-way: the OOM model kills and the write goes on, or the
            # write ends there (ENOMEM if nothing was written)
            if done < length and gs[K.G_OOM_MEMCG] >= 0 and \
                    self.machine._on_enomem(self, user_fault=False):
                continue
            gs[K.G_OOM_MEMCG] = -1
            break
        if done == 0 and st < 0:
            raise _oserror(-st, "pwrite")
        return done

    def fadvise(self, fd: int, offset: int, length: int, advice: int) -> int:
        """posix_fadvise(2) with ``os.POSIX_FADV_*`` advice (NORMAL, RANDOM, SEQUENTIAL, WILLNEED,
        DONTNEED, NOREUSE) over [offset, offset + length) (``length`` 0: to the end of the file).
        RANDOM reads only what each read asks; SEQUENTIAL doubles the readahead window; WILLNEED
        reads the range ahead without waiting (at most one window); DONTNEED starts writeback of
        its dirty pages and drops its whole pages that are clean and unmapped. A memory
        filesystem takes any advice and does nothing. Returns the pages read ahead or dropped
        (the system call itself returns 0)."""
        self._alive()
        of = self._fd(fd, "fadvise")
        offset = _check_int("offset", offset, 0, 1 << 62)
        length = _check_int("length", length, -(1 << 62), 1 << 62)
        advice = _check_int("advice", advice, -(1 << 31), (1 << 31) - 1)
        if length < 0 or not 0 <= advice <= K.POSIX_FADV_NOREUSE:
            raise _oserror(_errno.EINVAL, "fadvise")
        st, n = self.machine.vfs.call(RW.sys_fadvise, self._ti, of.ino, offset, length, advice,
                                      of.ra)
        self.machine.state.gs[K.G_OOM_MEMCG] = -1
        if st < 0:
            raise _oserror(-st, "fadvise")
        return n

    def fsync(self, fd: int) -> None:
        """fsync(2): write the file's dirty pages back and wait; raises a pending writeback
        error (ENOSPC for an ext2 block that could not be allocated) once."""
        self._alive()
        of = self._fd(fd, "fsync")
        st, _ = self.machine.vfs.call(RW.sys_fsync, self._ti, of.ino)
        if st < 0:
            raise _oserror(-st, "fsync")

    def sync(self) -> None:
        """sync(2) from this task: it waits for every disk."""
        self._alive()
        self.machine.vfs.call(RW.sys_sync, self._ti)

    def ftruncate(self, fd: int, length: int) -> None:
        self._alive()
        of = self._fd(fd, "ftruncate")
        length = _check_int("length", length, 0, 1 << 44)
        if of.flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) == os.O_RDONLY:
            raise _oserror(_errno.EINVAL, "ftruncate")             # do_ftruncate: not writable
        vfs = self.machine.vfs
        if vfs.state.fs[K.FS_TYPE, int(vfs.state.ino[K.I_FS, of.ino])] in K.BLOCK_FSTYPES:
            vfs.ensure_blocks(of.ino, (length + 4095) // 4096)    # every page in EOF has a state
        vfs.call(RW.sys_ftruncate, self._ti, of.ino, length, 1)

    def fallocate(self, fd: int, mode: int, offset: int, length: int) -> None:
        """fallocate(2): mode 0 or FALLOC_FL_KEEP_SIZE allocate unwritten extents (ext4, XFS) or
        pages (tmpfs); FALLOC_FL_PUNCH_HOLE | KEEP_SIZE, FALLOC_FL_ZERO_RANGE and (kernel 6.17+,
        not XFS) FALLOC_FL_WRITE_ZEROES as in ext4. Out of space, ext4 keeps what it allocated
        and grows the size over it; XFS reserves the range up front and leaves the size."""
        self._alive()
        mode = _check_int("mode", mode, 0, (1 << 31) - 1)
        offset = _check_int("offset", offset, 0, 1 << 44)
        length = _check_int("length", length, 0, 1 << 44)
        self._fd(fd, "fallocate")
        if length == 0:
            raise _oserror(_errno.EINVAL, "fallocate")
        if RW.falloc_mode_check(mode) < 0:                    # vfs_fallocate: modes first,
            raise _oserror(_errno.EOPNOTSUPP, "fallocate")
        of = self._file(fd, "fallocate", write=True)          # then the access mode
        if mode & K.FALLOC_FL_WRITE_ZEROES and self.machine.config.profile.version < 617:
            raise _oserror(_errno.EOPNOTSUPP, "fallocate (FALLOC_FL_WRITE_ZEROES is 6.17+)")
        vfs = self.machine.vfs
        if vfs.state.fs[K.FS_TYPE, int(vfs.state.ino[K.I_FS, of.ino])] in K.DELALLOC_FSTYPES:
            vfs.ensure_blocks(of.ino, (offset + length + 4095) // 4096)
        gs = self.machine.state.gs
        while True:
            st, _ = vfs.call(RW.sys_fallocate, self._ti, of.ino, mode, offset, length)
            if st == -_errno.ENOMEM and gs[K.G_OOM_MEMCG] >= 0 and \
                    self.machine._on_enomem(self, user_fault=False):
                continue                     # shmem_fallocate undid its pages: it starts again
            gs[K.G_OOM_MEMCG] = -1
            break
        if st < 0:
            raise _oserror(-st, "fallocate")

    def unlink(self, path: str) -> None:
        """unlink(2): the name goes now; pages and blocks go with the last open file or mapping."""
        self._alive()
        vfs = self.machine.vfs
        _, norm = vfs.resolve(path)
        ii = vfs.paths.get(norm)
        if ii is None:
            raise _oserror(_errno.ENOENT, f"unlink {path}")
        vfs.call(RW.file_lookup, self._ti, ii)
        del vfs.paths[norm]
        vfs.state.ino[K.I_NLINK, ii] = 0
        if vfs.state.ino[K.I_REFS, ii] == 0:
            vfs.state.ino[K.I_REFS, ii] = 1
            vfs.release(ii)

    def stat_size(self, fd: int) -> int:
        """The file's size in bytes (st_size)."""
        of = self._fd(fd, "fstat")
        return int(self.machine.vfs.state.ino[K.I_SIZE, of.ino])

    def nanosleep(self, ns: int) -> None:
        """Let ``ns`` of simulated time pass for this task (khugepaged, background writeback, the
        flusher and kswapd catch up to its clock)."""
        self._alive()
        ns = _check_int("ns", ns, 0, 1 << 50)
        m = self.machine
        m.state.task[K.T_CLOCK, self._ti] += ns * 1000
        m._background(int(m.state.task[K.T_CLOCK, self._ti]))
        m.vfs.call(RW.catch_up, self._ti)

    def write_sysctl(self, name: str, value: int | str) -> None:
        """Write a /proc/sys knob as this task (``vm.drop_caches``, ``vm.dirty_ratio``,
        ``vm.dirty_background_ratio``, ``vm.dirty_expire_centisecs``,
        ``vm.dirty_writeback_centisecs``, ``vm.compact_memory``, ``vm.compaction_proactiveness``,
        ``vm.extfrag_threshold``, ``vm.overcommit_memory``, ``vm.overcommit_ratio``,
        ``vm.overcommit_kbytes``, ``vm.admin_reserve_kbytes``, ``vm.user_reserve_kbytes``)."""
        self._alive()
        m = self.machine
        key = name.removeprefix("/proc/sys/").replace("/", ".")
        try:
            v = int(str(value).strip())
        except ValueError:
            raise _oserror(_errno.EINVAL, f"write {value!r} to {name}") from None
        if key == "vm.drop_caches":
            lo = 1
            hi = 4 if m.config.profile.version >= 315 else 3
            if not lo <= v <= hi:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {name}")
            _, dropped = m.vfs.call(RW.drop_caches, self._ti, v)
            if m.config.profile.version >= 315:
                if not m.vfs.drop_caches_stfu:
                    m._dmesg.append(f"{self.comm} ({self.pid}): drop_caches: {v}")
                m.vfs.drop_caches_stfu |= v & 4
            return
        if key == "vm.compact_memory":
            if v != 1:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {name}")
            m._call(KT.sys_compact_memory, self._ti)
            return
        if key == "vm.compaction_proactiveness":
            if m.config.profile.version < 509:
                raise _oserror(_errno.ENOENT, "/proc/sys/vm/compaction_proactiveness (5.9+)")
            if not 0 <= v <= 100:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {name}")
            old = m.config.compaction_proactiveness
            m.config.compaction_proactiveness = v
            m.state.cfg[K.C_COMPACT_PROACTIVENESS] = v
            if v and v != old:                # proactive_compact_trigger: a check right now
                gs = m.state.gs
                gs[K.G_KC_WAKE] = min(int(gs[K.G_KC_WAKE]), int(m.state.task[K.T_CLOCK, self._ti]))
                m._rearm()
            return
        if key == "vm.extfrag_threshold":
            if not 0 <= v <= 1000:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {name}")
            m.config.extfrag_threshold = v
            m.state.cfg[K.C_EXTFRAG_THRESHOLD] = v
            return
        if key in ("vm.overcommit_ratio", "vm.overcommit_kbytes"):
            if v < 0:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {name}")
            # overcommit_ratio_handler / overcommit_kbytes_handler: setting one clears the other
            ratio = key == "vm.overcommit_ratio"
            m.config.overcommit_ratio = v if ratio else m.config.overcommit_ratio
            m.config.overcommit_kbytes = 0 if ratio else v
            m.state.cfg[K.C_OVERCOMMIT_RATIO] = m.config.overcommit_ratio
            m.state.cfg[K.C_OVERCOMMIT_KBYTES] = m.config.overcommit_kbytes
            return
        if key == "vm.swappiness":
            top = 200 if m.config.profile.version >= 508 else 100     # 200 from 5.8
            if not 0 <= v <= top:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {name} (0..{top})")
            m.config.swappiness = v
            m.state.cfg[K.C_SWAPPINESS] = v
            return
        knobs = {"vm.dirty_ratio": (K.C_DIRTY_RATIO, 1, 100, 1),
                 "vm.overcommit_memory": (K.C_OVERCOMMIT, 0, 2, 1),
                 "vm.admin_reserve_kbytes": (K.C_ADMIN_RESERVE_KB, 0, 1 << 50, 1),
                 "vm.user_reserve_kbytes": (K.C_USER_RESERVE_KB, 0, 1 << 50, 1),
                 "vm.dirty_background_ratio": (K.C_DIRTY_BG_RATIO, 0, 100, 1),
                 "vm.dirty_expire_centisecs": (K.C_DIRTY_EXPIRE_PS, 0, (1 << 31) - 1, 10_000_000_000),
                 "vm.dirty_writeback_centisecs": (K.C_DIRTY_WB_PS, 1, (1 << 31) - 1, 10_000_000_000)}
        if key not in knobs:
            raise _oserror(_errno.ENOENT, f"/proc/sys/{key.replace('.', '/')}")
        idx, lo, hi, scale = knobs[key]
        if not lo <= v <= hi:
            raise _oserror(_errno.EINVAL, f"write {value!r} to {name}")
        m.state.cfg[idx] = min(v * scale, 1 << 62)          # beyond that: never, in ps
        setattr(m.config, key.removeprefix("vm."), v)

    # ---- memory accesses -----------------------------------------------------------------------
    def touch(self, addr: int, length: int, stride: int = 4096, write: bool = True) -> None:
        """One byte at each ``stride`` offset of [addr, addr + length), in address order."""
        self._alive()
        addr = _check_int("addr", addr, 0, _MAX_ADDR)
        length = _check_int("length", length, 0, _MAX_ADDR)
        stride = _check_int("stride", stride, 1, 1 << 40)
        if addr + length > _MAX_ADDR:
            raise ValueError(f"addr + length: {addr + length:#x} is beyond TASK_SIZE {_MAX_ADDR:#x}")
        st, i = self._access_calls(
            lambda i: S_.run_touch(self.machine.state, self._ti, addr, length, stride, bool(write), i),
            lambda shadow, i: shadow.record_range(self, addr, i, stride))
        self._raise_access(st, addr + i * stride, write)

    def access(self, addresses: Sequence[int] | np.ndarray, write: bool | np.ndarray = False,
               *, record_faults: bool = False) -> np.ndarray | None:
        """The trace-driven path: every address in one kernel call.

        With ``record_faults`` a per-access array (1 = SIGSEGV) is returned and the stream goes on;
        otherwise the first bad access raises ``SegmentationFault``.
        """
        self._alive()
        a = np.ascontiguousarray(addresses, dtype=np.int64)
        if a.ndim != 1:
            raise ValueError(f"addresses: expected a 1-D array, got shape {a.shape}")
        if np.ndim(write) == 0:
            w = np.array([1 if write else 0], np.int8)
        else:
            w = np.ascontiguousarray(write, dtype=np.int8)
            if w.shape != a.shape:
                raise ValueError(f"write: expected a bool or an array of shape {a.shape}, got {w.shape}")
        res = np.zeros(a.shape[0] if record_faults else 0, np.int8)
        st, i = self._access_calls(
            lambda i: S_.run_access(self.machine.state, self._ti, a, w, i, res),
            lambda shadow, i: shadow.record(self, a[:i] if i < a.shape[0] else a))
        if st != K.OK:
            self._raise_access(st, int(a[i]), bool(w[0] if w.shape[0] == 1 else w[i]))
        return res if record_faults else None

    def _access_calls(self, call, record) -> tuple[int, int]:
        """``call(i)`` (a kernel's access loop from access ``i``; returns (status, next i)) until
        it ends: the machine services what stopped it, an OOM victim's death restarts the
        fault. Then ``record(shadow, i)`` gives the ``i`` accesses done to the shadow TLBs, if
        any (also when an exception ends it). Returns the last (status, i)."""
        i = 0
        try:
            while True:
                st, i = call(i)
                if st == -_errno.ENOMEM and self.machine._on_enomem(self, user_fault=True):
                    continue                     # a victim died; the fault restarts
                if not self.machine._service(st):
                    break
        finally:
            shadow = getattr(self.machine, "_tlb_shadow", None)
            if shadow is not None and self._alive_flag():
                record(shadow, i)
        return st, i

    def _raise_access(self, st: int, va: int, write: bool) -> None:
        if st == K.OK:
            return
        if st == K.SEGV:
            raise SegmentationFault(self.pid, va, write)
        if st == K.SIGBUS:
            raise BusError(self.pid, va, write)
        if st < 0:
            raise _oserror(-st, f"fault at {va:#x}")
        raise RuntimeError(f"kernel status {st} at {va:#x}")

    # ---- observables -----------------------------------------------------------------------------
    def vmas(self) -> list[tuple[int, int, int]]:
        s = self.machine.state
        mmi = self._mmi
        b, n = int(s.mm[K.MM_VBASE, mmi]), int(s.mm[K.MM_VCOUNT, mmi])
        return [(int(s.vma[K.V_START, i]), int(s.vma[K.V_END, i]), int(s.vma[K.V_FLAGS, i]))
                for i in range(b, b + n)]

    def clear_refs(self, value: int | str = 1) -> None:
        """Write ``value`` to /proc/PID/clear_refs, as this task: 1 clears the accessed bits and
        PG_referenced of every page the task maps, 2 of its anonymous pages only, 3 of its file
        pages only (the kernel's CLEAR_REFS_ALL, _ANON, _MAPPED). Idle-page and working-set
        estimates start here; so does khugepaged's referenced test. Soft-dirty (4) and the peak
        RSS reset (5) are not modelled."""
        self._alive()
        try:
            v = int(str(value).strip())
        except ValueError:
            raise _oserror(_errno.EINVAL, f"write {value!r} to /proc/{self.pid}/clear_refs") from None
        if v in (4, 5):
            raise NotImplementedError(f"clear_refs {v}: soft-dirty and VmHWM are not modelled; "
                                      "1, 2 and 3 are")
        if not 1 <= v <= 3:
            raise _oserror(_errno.EINVAL, f"write {value!r} to /proc/{self.pid}/clear_refs")
        self.machine._call(P.clear_refs, self._ti, self._mmi, v)

    def smaps(self, addr: int | None = None) -> dict[str, int] | list[dict[str, int]]:
        """/proc/PID/smaps for the VMA containing ``addr`` (all VMAs when ``addr`` is None)."""
        out = [self._smaps_one(s, e, f) for s, e, f in self.vmas()]
        if addr is None:
            return out
        for d in out:
            if d["start"] <= addr < d["end"]:
                return d
        raise ValueError(f"addr: {addr:#x} is in no VMA of task {self.pid}")

    def _smaps_one(self, start: int, end: int, flags: int) -> dict[str, int]:
        s = self.machine.state
        o = np.zeros(P.NR_SM, np.int64)
        if s.mm[K.MM_PGD, self._mmi] >= 0:
            P.smaps_walk(s.cfg, s.pt, s.fr32, s.fr_idx, s.fr_flags, s.fr_order, s.mm, self._mmi,
                         start, end, o, s.swp)
        kb = lambda pages: int(pages) * 4  # noqa: E731
        locked = int(o[P.SM_PSS]) >> 10 if flags & K.VM_LOCKED else 0   # smaps: Locked is the Pss
        return {
            "start": start, "end": end, "flags": flags,
            "Size": (end - start) >> 10, "KernelPageSize": 4, "MMUPageSize": 4,
            "Rss": kb(o[P.SM_RSS]), "Pss": int(o[P.SM_PSS]) >> 10,
            "Pss_Dirty": int(o[P.SM_PSS_DIRTY]) >> 10,
            "Shared_Clean": kb(o[P.SM_SHARED_CLEAN]), "Shared_Dirty": kb(o[P.SM_SHARED_DIRTY]),
            "Private_Clean": kb(o[P.SM_PRIVATE_CLEAN]), "Private_Dirty": kb(o[P.SM_PRIVATE_DIRTY]),
            "Referenced": kb(o[P.SM_REFERENCED]), "Anonymous": kb(o[P.SM_ANONYMOUS]),
            "KSM": 0, "LazyFree": kb(o[P.SM_LAZYFREE]), "AnonHugePages": kb(o[P.SM_ANON_HUGE]),
            "ShmemPmdMapped": kb(o[P.SM_SHMEM_PMD]), "FilePmdMapped": kb(o[P.SM_FILE_PMD]),
            "Shared_Hugetlb": 0, "Private_Hugetlb": 0,
            "Swap": kb(o[P.SM_SWAP]), "SwapPss": int(o[P.SM_SWAP_PSS]) >> 10, "Locked": locked,
        }

    def smaps_rollup(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for d in self.smaps():
            for k, v in d.items():
                if k not in ("start", "end", "flags", "Size", "KernelPageSize", "MMUPageSize"):
                    total[k] = total.get(k, 0) + v
        return total

    @property
    def cgroup(self) -> Cgroup:
        """The memory cgroup this task is in (/proc/PID/cgroup)."""
        return self.machine._cgroups_by_id[int(self.machine.state.task[K.T_MEMCG, self._ti])]

    # ---- the OOM killer's view --------------------------------------------------------------
    @property
    def oom_score_adj(self) -> int:
        return int(self.machine.state.task[K.T_ADJ, self._ti])

    @oom_score_adj.setter
    def oom_score_adj(self, value: int) -> None:
        """A write to /proc/PID/oom_score_adj: the whole thread group's value (signal_struct)."""
        self._alive()
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise _oserror(_errno.EINVAL, f"write {value!r} to /proc/{self.pid}/oom_score_adj")
        if not -1000 <= value <= 1000:
            raise _oserror(_errno.EINVAL, f"write {value} to /proc/{self.pid}/oom_score_adj "
                           "(expected -1000..1000)")
        task = self.machine.state.task
        for t in self.machine._tasks.values():
            if t._tgid == self._tgid:
                task[K.T_ADJ, t._ti] = int(value)

    def _oom_inputs(self) -> tuple[int, int, int, int, bool, bool]:
        s = self.machine.state
        m = s.mm[:, self._mmi]
        ba, bf, bs, bsw, bpt = self._baseline
        rss = int(m[K.MM_ANONPAGES] + m[K.MM_FILEPAGES] + m[K.MM_SHMEMPAGES]) + ba + bf + bs
        eligible = self.pid != 1                          # is_global_init
        cap = bool(s.task[K.T_FLAGS, self._ti] & TF_CAP_SYS_ADMIN)
        return (rss, int(m[K.MM_SWAPENTS]) + bsw, (int(m[K.MM_PGTABLES]) + bpt) * 4096,
                self.oom_score_adj, cap, eligible)

    def oom_badness(self, totalpages: int | None = None) -> int:
        """``oom_badness`` of this task from the machine's own accounting (RSS with file and
        shmem, swap entries, page-table bytes), the profile's rule, and ``totalpages`` (default:
        RAM plus swap; give a memcg's limit plus swap for a memcg OOM)."""
        rss, swap, pgt, adj, cap, ok = self._oom_inputs()
        total = self.machine.totalpages if totalpages is None else totalpages
        return oom.oom_badness(rss, swap, pgt, adj, total, kernel=self.machine.oom_kernel,
                               cap_sys_admin=cap, eligible=ok)

    @property
    def oom_score(self) -> int:
        """/proc/PID/oom_score, as the profile's kernel prints it."""
        rss, swap, pgt, adj, cap, ok = self._oom_inputs()
        return oom.proc_oom_score(rss, swap, pgt, adj, self.machine.totalpages,
                                  kernel=self.machine.oom_kernel, cap_sys_admin=cap, eligible=ok)

    def status(self) -> dict[str, int | str]:
        """/proc/PID/status memory fields (kB) and THP_enabled."""
        s = self.machine.state
        m = s.mm[:, self._mmi]
        ba, bf, bs, bsw, bpt = self._baseline
        anon = int(m[K.MM_ANONPAGES]) + ba
        file = int(m[K.MM_FILEPAGES]) + bf
        shmem = int(m[K.MM_SHMEMPAGES]) + bs
        mode = int(s.cfg[K.C_THP_DISABLE_MODE])
        off = mode in (K.THPDIS_MMF, K.THPDIS_EXCEPT_ADVISED) and bool(
            m[K.MM_FLAGS] & (1 << K.MMF_DISABLE_THP_COMPLETELY))
        return {
            "Name": self.comm, "Pid": self.pid,
            "VmSize": int(m[K.MM_TOTAL_VM]) * 4, "VmLck": int(m[K.MM_LOCKED]) * 4,
            "VmRSS": (anon + file + shmem) * 4, "RssAnon": anon * 4, "RssFile": file * 4,
            "RssShmem": shmem * 4, "VmPTE": (int(m[K.MM_PGTABLES]) + bpt) * 4,
            "VmSwap": (int(m[K.MM_SWAPENTS]) + bsw) * 4, "THP_enabled": 0 if off else 1,
        }

    def counters(self) -> dict[str, int]:
        """Per-task hardware and fault counters (minor faults, TLB misses, walk loads, time)."""
        t = self.machine.state.task[:, self._ti]
        return {"min_flt": int(t[K.T_MINFLT]), "maj_flt": int(t[K.T_MAJFLT]),
                "accesses": int(t[K.T_ACCESSES]), "dtlb_misses": int(t[K.T_DTLB_MISS]),
                "stlb_misses": int(t[K.T_STLB_MISS]), "walk_loads": int(t[K.T_WALK_LOADS]),
                "walk_ns": int(t[K.T_WALK_PS]) // 1000, "fault_ns": int(t[K.T_FAULT_PS]) // 1000,
                "time_ns": int(t[K.T_CLOCK]) // 1000}

    def pagemap(self, addr: int, length: int) -> np.ndarray:
        """/proc/PID/pagemap: one uint64 entry per page of [addr, addr + length), as root reads
        it (PFN in bits 0-54, swap entry, soft-dirty 55, exclusive 56, file 61, swapped 62,
        present 63); ``addr`` rounds down and the end up to whole pages."""
        addr = _check_int("addr", addr, 0, K.TASK_SIZE)
        length = _check_int("length", length, 0, K.TASK_SIZE - addr)
        return PF.pagemap(self.machine.state, self._mmi, addr, length)

    def page_table(self) -> dict[int, int]:
        """Every leaf entry (virtual address -> int64 entry in the x86-64 layout)."""
        s = self.machine.state
        out: dict[int, int] = {}
        for start, end, _ in self.vmas():
            cap = 1024
            while True:
                vas = np.zeros(cap, np.int64)
                ents = np.zeros(cap, np.int64)
                n = P.dump_leaves(s.cfg, s.pt, s.fr_idx, s.mm, self._mmi, start, end, vas, ents) \
                    if s.mm[K.MM_PGD, self._mmi] >= 0 else 0
                if n <= cap:
                    break
                cap = n
            out.update(zip(vas[:n].tolist(), ents[:n].tolist()))
        return out


for _name in ("fork", "clone_thread", "execve", "exit", "mmap", "munmap", "mprotect", "mlock",
              "munlock", "mlockall", "munlockall", "brk", "madvise", "prctl", "open", "close",
              "pread", "pwrite", "fsync", "ftruncate", "fallocate", "unlink", "write_sysctl",
              "touch", "access"):
    setattr(Task, _name, PSI.timed(getattr(Task, _name)))
del _name
