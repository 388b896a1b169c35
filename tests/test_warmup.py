"""``mmcore warmup``: every kernel the API uses, compiled or loaded; two processes on a cold cache."""
from __future__ import annotations

import os

import pytest

from mmcore import scenarios


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
