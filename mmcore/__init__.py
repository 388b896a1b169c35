"""mmcore: a Numba-accelerated, kernel-faithful simulator of the Linux memory manager."""
from .config import Config, ConfigError, Costs, KhugepagedConfig, TLBConfig
from .kernels.consts import (
    MADV_COLLAPSE, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_NORMAL,
    MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
    MADV_WILLWRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
    MAP_NORESERVE, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT,
    PR_GET_THP_DISABLE, PR_SET_THP_DISABLE,
    PR_THP_DISABLE_EXCEPT_ADVISED, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE,
)
from .files import Disk
from .machine import BusError, Machine, OOMKilled, OutOfMemoryPanic, SegmentationFault, Task

__version__ = "0.1.0"

__all__ = [
    "Config", "ConfigError", "Costs", "KhugepagedConfig", "TLBConfig", "Machine", "Task", "SegmentationFault",
    "BusError", "Disk", "MADV_WILLWRITE", "OOMKilled", "OutOfMemoryPanic",
    "MADV_COLLAPSE", "MADV_DONTNEED", "MADV_FREE", "MADV_HUGEPAGE", "MADV_NOHUGEPAGE", "MADV_NORMAL",
    "MADV_POPULATE_READ", "MADV_POPULATE_WRITE", "MADV_RANDOM", "MADV_SEQUENTIAL", "MADV_WILLNEED",
    "MAP_ANONYMOUS", "MAP_FIXED", "MAP_FIXED_NOREPLACE",
    "MAP_NORESERVE", "MAP_POPULATE", "MAP_PRIVATE", "MAP_SHARED", "MCL_CURRENT", "MCL_FUTURE",
    "MCL_ONFAULT", "PR_GET_THP_DISABLE",
    "PR_SET_THP_DISABLE", "PR_THP_DISABLE_EXCEPT_ADVISED", "PROT_EXEC", "PROT_NONE", "PROT_READ",
    "PROT_WRITE",
]
