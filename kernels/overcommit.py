"""Overcommit accounting (mm/util.c ``__vm_enough_memory``, ``vm_commit_limit``; mm/mmap.c
``accountable_mapping``; Documentation/mm/overcommit-accounting.rst).

A private writable mapping (anonymous or file) is charged to ``vm_committed_as`` (``G_COMMITTED``,
pages) when it is made, and carries VM_ACCOUNT; so is brk's growth, a private mapping mprotect
makes writable, and every VM_ACCOUNT VMA fork copies. munmap and exit give the charge back.
MAP_NORESERVE (VM_NORESERVE) skips the charge except in mode 2.

The charge is checked as ``vm.overcommit_memory`` says:

- 0 (heuristic): only an obvious overcommit fails. 6.18 (checked on a 6.18 host): a request for
  more pages than RAM plus swap. The 3.x/4.x profiles: the request must fit in what could be
  freed: free pages, page cache (shmem excepted), free swap and reclaimable slab, less the
  watermark reserve and, for a task without CAP_SYS_ADMIN, the admin reserve.
- 1: never fails.
- 2 (strict): ``Committed_AS`` must stay below ``CommitLimit`` = RAM x ``overcommit_ratio`` % (or
  ``overcommit_kbytes``) + swap, less the admin reserve (without CAP_SYS_ADMIN) and the smaller of
  total_vm/32 and the user reserve.
"""
from .consts import (
    C_ADMIN_RESERVE_KB,
    C_KERNEL,
    C_NR_FRAMES,
    C_OVERCOMMIT,
    C_OVERCOMMIT_KBYTES,
    C_OVERCOMMIT_RATIO,
    C_USER_RESERVE_KB,
    C_SWAP_PAGES,
    G_NR_SWAP_FREE,
    ENOMEM,
    FG_SLAB,
    FG_WMARK_HIGH,
    SLAB_BYTES_PER_FILE,
    G_COMMITTED,
    G_NR_FREE,
    MM_TOTAL_VM,
    OVERCOMMIT_ALWAYS,
    OVERCOMMIT_GUESS,
    VM_ACCOUNT,
    VM_NORESERVE,
    VM_SHARED,
    VM_WRITE,
    VS_NR_FILE_PAGES,
    VS_NR_SHMEM,
)
from .jit import kernel


@kernel(inline="always")
def accountable_mapping(vm_flags):
    """A private writable mapping without VM_NORESERVE is charged."""
    return (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE


@kernel
def vm_commit_limit(cfg):
    """CommitLimit in pages: RAM x overcommit_ratio % (or overcommit_kbytes), plus swap."""
    if cfg[C_OVERCOMMIT_KBYTES] > 0:
        return (cfg[C_OVERCOMMIT_KBYTES] >> 2) + cfg[C_SWAP_PAGES]
    return cfg[C_NR_FRAMES] * cfg[C_OVERCOMMIT_RATIO] // 100 + cfg[C_SWAP_PAGES]


@kernel
def vm_enough_memory(cfg, gs, vmstat, fgs, mm, mmi, pages, cap_sys_admin):
    """``__vm_enough_memory``: charge ``pages`` to vm_committed_as if the mode allows; 0 or
    -ENOMEM (nothing charged)."""
    gs[G_COMMITTED] += pages
    mode = cfg[C_OVERCOMMIT]
    if mode == OVERCOMMIT_ALWAYS:
        return 0
    if mode == OVERCOMMIT_GUESS:
        if cfg[C_KERNEL] >= 500:
            if pages <= cfg[C_NR_FRAMES] + cfg[C_SWAP_PAGES]:
                return 0
        else:
            # free pages, page cache less shmem and reclaimable slab, less totalreserve_pages
            slab_pages = fgs[FG_SLAB] * SLAB_BYTES_PER_FILE // 4096
            reserve_pages = fgs[FG_WMARK_HIGH]
            free = gs[G_NR_FREE] + vmstat[VS_NR_FILE_PAGES] - vmstat[VS_NR_SHMEM] + slab_pages \
                + gs[G_NR_SWAP_FREE]
            if free > reserve_pages:
                free -= reserve_pages
                if not cap_sys_admin:
                    free -= cfg[C_ADMIN_RESERVE_KB] >> 2
                if free > pages:
                    return 0
        gs[G_COMMITTED] -= pages
        return -ENOMEM
    allowed = vm_commit_limit(cfg)
    if not cap_sys_admin:
        allowed -= cfg[C_ADMIN_RESERVE_KB] >> 2
    if mmi >= 0:
        allowed -= min(mm[MM_TOTAL_VM, mmi] // 32, cfg[C_USER_RESERVE_KB] >> 2)
    if gs[G_COMMITTED] < allowed:
        return 0
    gs[G_COMMITTED] -= pages
    return -ENOMEM


@kernel(inline="always")
def vm_unacct_memory(gs, vm_flags, pages):
    """The charge of a VM_ACCOUNT range going away."""
    if vm_flags & VM_ACCOUNT:
        gs[G_COMMITTED] -= pages

