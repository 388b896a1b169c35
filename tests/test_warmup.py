"""``mmcore warmup``: every kernel the API uses, compiled or loaded; two processes on a cold cache."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mmcore import scenarios
from mmcore.kernels.jit import kernel


def test_cache_is_warm_here():
    scenarios.warmup()
    assert not scenarios._cache_is_empty()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the parallel warmup needs two CPUs")
def test_parallel_warmup_runs_both_halves(monkeypatch):
    """Taken for a cold cache, the file layer's half runs in a spawned process (which loads
    from the warm cache here) while this one runs the other half, then loads the file layer;
    a failing child would raise."""
    ran = []
    monkeypatch.setattr(scenarios, "_cache_is_empty", lambda: True)
    real_anon = scenarios._warm_anon
    monkeypatch.setattr(scenarios, "_warm_anon", lambda: (ran.append(os.getpid()), real_anon()))
    scenarios.warmup(parallel=True)     # the child runs the module's _warm_files; it must succeed
    assert ran == [os.getpid()]         # the anon half ran here, once


def test_sequential_warmup_without_parallel(monkeypatch):
    ran = []
    monkeypatch.setattr(scenarios, "_cache_is_empty", lambda: True)
    monkeypatch.setattr(scenarios, "_warm_anon", lambda: ran.append("anon"))
    monkeypatch.setattr(scenarios, "_warm_files", lambda: ran.append("files"))
    scenarios.warmup()
    assert ran == ["anon", "files"]


# ---- one compiled signature per kernel for calls from other kernels ------------------------------
# Defined here, not cached (cache=True would write this file's kernels to the project's cache).


@kernel(cache=False)
def _callee(a, n, flag):
    return a[0] + n if flag else a[1] - n


@kernel(cache=False)
def _caller(a, k32, b):
    return (_callee(a, 0, True) + _callee(a, 9, False) + _callee(a, k32, b)
            + _callee(a, a[0], True))


def test_literal_and_narrow_arguments_share_one_compilation():
    """Literal arguments (0, 9, True) and an int32 reach the callee as int64 and bool: one
    compilation, not four, and the same results as plain Python."""
    a = np.array([5, 7], np.int64)
    got = _caller(a, np.int32(3), False)
    assert got == _caller.py_func(a, 3, False) == (5 + 0) + (7 - 9) + (7 - 3) + (5 + 5)
    assert [str(t) for t in _callee.signatures[0]] == ["array(int64, 1d, C)", "int64", "bool"]
    assert len(_callee.signatures) == 1
