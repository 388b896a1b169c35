"""The one decorator every kernel uses, and where compiled kernels are cached.

Numba's cache notices when a function's own file changes, but not when a callee in another file
does: a kernel that inlined an old callee would keep running the old code. So, unless the user
sets ``NUMBA_CACHE_DIR``, the cache lives in a directory keyed on the content of every kernel file
and the Numba version: any change to any kernel starts a fresh cache.
"""
import hashlib
import os
from pathlib import Path
from types import MethodType

import numba
from numba.core import types
from numba.core.dispatcher import Dispatcher


def _cache_dir() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmcore"
    return str(base / f"numba-{numba.__version__}-{h.hexdigest()[:16]}")


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()

CACHE_DIR = numba.config.CACHE_DIR


def _widen(t):
    """The type a kernel is compiled for when another kernel passes it ``t``: literals lose
    their value and integers narrower than 64 bits become int64 (every kernel computes in
    int64; a narrower argument would only add a copy of the kernel)."""
    t = types.unliteral(t)
    if isinstance(t, types.Integer) and t.bitwidth < 64:
        return types.int64
    return t


def _call_template(self, args, kws):
    """``Dispatcher.get_call_template`` with the arguments widened.

    A call from one kernel to another compiles the callee for the caller's argument types, and
    Numba keeps literal types there: ``f(x, 0)``, ``f(x, 9)`` and ``f(x, n)`` would be three
    compilations of ``f``, each linking, optimising and generating code for all of ``f``'s
    callees again: 313 compilations for the file layer's warmup where 213 do (a cold
    ``mmcore warmup`` took 626 s with the copies, 371 s without, on one 2-core machine).
    Widened, a call site's arguments are cast to the one compiled signature when the call is
    lowered; LLVM still propagates the constants into the callee where it inlines it."""
    return Dispatcher.get_call_template(self, tuple(_widen(a) for a in args), kws)


def kernel(fn=None, **options):
    """``numba.njit`` with the project's options: ``cache=True`` (compiled code is reused
    across processes), ``nogil=True`` (sweeps may run kernels from several threads), no
    fastmath (all state is integer); and one compiled signature per kernel for calls from other
    kernels (``_call_template``). Used bare (``@kernel``) or with options
    (``@kernel(inline="always")``)."""
    def wrap(f):
        d = numba.njit(**({"cache": True, "nogil": True} | options))(f)
        d.get_call_template = MethodType(_call_template, d)
        return d
    return wrap(fn) if fn is not None else wrap
