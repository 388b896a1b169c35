"""The sleeping locks scenario tasks contend on, and the hung-task detector.

Which locks an operation takes, by kernel version (``lock_plan``):

- ``write()``, ``fallocate()`` and ``ftruncate()`` hold the inode's lock exclusively for the
  whole call (``i_mutex`` before 3.16, then ``i_rwsem`` taken for writing), page-cache charges
  included; ``read()`` takes none.
- ``mmap``, ``munmap``, ``mprotect``, ``mlock``, ``madvise`` and the first part of ``brk`` hold
  the mm's ``mmap_sem`` (``mmap_lock`` from 5.8) for writing; populating the new heap of an
  mlockall'ed ``brk`` holds it for reading (``mm_populate``, 3.9+), as does a page fault up to
  6.3. From 6.4 most faults take only the VMA's per-VMA lock, which a writer of the mmap lock
  excludes (``vma_start_write``); the engine models that as: a fault needs no mmap-lock holder
  or queued writer of *its own* mm only when a writer holds it.
- Reading ``/proc/PID/cmdline``, ``environ``, ``maps`` or ``smaps`` takes the target's mmap lock
  for reading; ``/proc/PID/status`` takes none.

Read-write semaphores are fair as the kernel's are: a reader does not overtake a queued writer
(the rwsem wait queue), so one sleeping reader and one waiting writer stall every later reader.

``HungTaskDetector`` is khungtaskd: every ``hung_task_timeout_secs`` it looks at the tasks in
uninterruptible sleep (``TASK_UNINTERRUPTIBLE``; a killable sleep such as the memcg OOM wait is
not reported) and reports one whose context-switch count has not moved since the previous look,
so a task is reported between one and two timeouts after it went to sleep.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Rwsem", "LockTable", "lock_plan", "HungTaskDetector", "hung_task_lines"]


@dataclass
class Rwsem:
    """A read-write semaphore (a mutex is one only ever taken for writing)."""
    name: str
    readers: set = field(default_factory=set)
    writer: object = None
    queue: list = field(default_factory=list)          # (who, mode) in arrival order

    def can_take(self, who, mode: str) -> bool:
        """``who`` may take it now: free of conflicting holders, and no earlier waiter first."""
        if self.writer is not None and self.writer != who:
            return False
        ahead = []
        for w, m in self.queue:
            if w == who:
                break
            ahead.append(m)
        if mode == "w":
            return not self.readers - {who} and not ahead
        return "w" not in ahead and (self.writer is None or self.writer == who)

    def take(self, who, mode: str) -> None:
        self.queue = [(w, m) for w, m in self.queue if w != who]
        if mode == "w":
            self.writer = who
        else:
            self.readers.add(who)

    def wait(self, who, mode: str) -> None:
        if all(w != who for w, _ in self.queue):
            self.queue.append((who, mode))

    def release(self, who) -> None:
        if self.writer == who:
            self.writer = None
        self.readers.discard(who)

    def holders(self) -> list:
        return ([self.writer] if self.writer is not None else []) + sorted(self.readers)


class LockTable:
    """Every lock by key: ("inode", ino) or ("mmap", mm index)."""

    def __init__(self) -> None:
        self.locks: dict[tuple, Rwsem] = {}

    def get(self, key: tuple) -> Rwsem:
        lk = self.locks.get(key)
        if lk is None:
            lk = self.locks[key] = Rwsem(f"{key[0]}:{key[1]}")
        return lk

    def try_take(self, who, key: tuple, mode: str) -> bool:
        lk = self.get(key)
        if lk.can_take(who, mode):
            lk.take(who, mode)
            return True
        lk.wait(who, mode)
        return False

    def release(self, who, key: tuple) -> None:
        self.get(key).release(who)

    def release_all(self, who) -> None:
        for lk in self.locks.values():
            lk.release(who)
            lk.queue = [(w, m) for w, m in lk.queue if w != who]


def lock_name(key: tuple, version: int, inode_path: str = "") -> str:
    """The lock's kernel name for messages: i_mutex/i_rwsem of a file, mmap_sem/mmap_lock."""
    if key[0] == "inode":
        return f"{'i_mutex' if version < 316 else 'i_rwsem'} of {inode_path or key[1]}"
    return f"{'mmap_sem' if version < 508 else 'mmap_lock'} of mm {key[1]}"


def lock_plan(kind: str, version: int, *, ino: int = -1, mm: int = -1,
              target_mm: int = -1, proc_file: str = "") -> list[tuple[tuple, str]]:
    """The locks (key, "r" or "w") an op of ``kind`` holds while it runs (see the module
    docstring); a fault's entry is marked "f" (a per-VMA lock from 6.4)."""
    if kind in ("pwrite", "fallocate", "ftruncate"):
        return [(("inode", ino), "w")]
    if kind in ("mmap", "munmap", "mprotect", "mlock", "munlock", "mlockall", "munlockall",
                "madvise", "brk"):
        return [(("mmap", mm), "w")]
    if kind in ("touch", "access", "populate"):
        return [(("mmap", mm), "f" if version >= 604 and kind != "populate" else "r")]
    if kind == "read_proc" and proc_file in ("cmdline", "environ", "maps", "smaps"):
        return [(("mmap", target_mm), "r")]
    return []


def hung_task_lines(comm: str, pid: int, secs: int, version: int) -> list[str]:
    """check_hung_task's report (kernel/hung_task.c)."""
    lines = [f"INFO: task {comm}:{pid} blocked for more than {secs} seconds."]
    if version >= 600:
        lines.append(f"      Not tainted {version // 100}.{version % 100}.0 #1")
    lines.append('"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.')
    return lines


class HungTaskDetector:
    """khungtaskd: checks at every multiple of the timeout (from boot)."""

    def __init__(self, timeout_s: int):
        self.timeout_ps = timeout_s * 10**12
        self.timeout_s = timeout_s

    def report_time(self, since_ps: int) -> int | None:
        """When a task asleep uninterruptibly since ``since_ps`` (and never woken) is reported:
        the second check after it went to sleep. None if the detector is off."""
        if self.timeout_ps <= 0:
            return None
        t = self.timeout_ps
        first = -(-since_ps // t) * t            # the first check at or after it slept (a check
        return first + t                          # at that very instant sees it asleep)
