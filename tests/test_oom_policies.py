"""Userspace OOM policies (mmcore.oom): earlyoom's thresholds and victim, systemd-oomd's swap and
memory-pressure actions, at each threshold's edge, on ties and on bad input."""
import signal

import numpy as np
import pytest

from mmcore import oom

GiB_KB = 1 << 20                      # 1 GiB in kB


# ---- earlyoom ------------------------------------------------------------------------------------

def decide(avail_kb, swap_free_kb, scores=(5, 9, 3), total=1_000_000, swap_total=1_000_000, **kw):
    return oom.earlyoom_decide(total, avail_kb, swap_total, swap_free_kb, np.array(scores), **kw)


def test_earlyoom_sigterm_at_or_below_10_percent_of_both():
    assert decide(100_000, 100_000) == (signal.SIGTERM, 1)     # exactly 10 %: "at or below"
    assert decide(100_001, 100_000) == (0, -1)                 # memory just above
    assert decide(100_000, 100_001) == (0, -1)                 # swap just above
    assert decide(99_999, 99_999) == (signal.SIGTERM, 1)
    assert decide(0, 900_000) == (0, -1)                       # both must be low


def test_earlyoom_sigkill_at_or_below_half_of_that():
    assert decide(50_000, 50_000) == (signal.SIGKILL, 1)       # 5 %
    assert decide(50_001, 50_000) == (signal.SIGTERM, 1)
    assert decide(50_000, 50_001) == (signal.SIGTERM, 1)
    # -m 20,18 -s 30: the kill limits are given, the swap kill limit defaults to half of 30
    kw = dict(mem_term_percent=20, mem_kill_percent=18, swap_term_percent=30)
    assert decide(180_000, 150_000, **kw) == (signal.SIGKILL, 1)
    assert decide(180_000, 150_001, **kw) == (signal.SIGTERM, 1)
    assert decide(200_001, 0, **kw) == (0, -1)


def test_earlyoom_without_swap_looks_at_memory_only():
    assert decide(100_000, 0, swap_total=0) == (signal.SIGTERM, 1)
    assert decide(100_001, 0, swap_total=0) == (0, -1)
    assert decide(1_000, 0, swap_total=0) == (signal.SIGKILL, 1)


def test_earlyoom_percentages_are_doubles_not_integers():
    # 1000 of 9999 kB is 10.001 %: not low (an integer percentage, 10, would be)
    assert oom.earlyoom_decide(9999, 1000, 0, 0, [1])[0] == 0
    assert oom.earlyoom_decide(10000, 1000, 0, 0, [1])[0] == signal.SIGTERM


def test_earlyoom_victim_ties():
    low = dict(avail_kb=10, swap_free_kb=10)
    assert decide(**low, scores=[7, 9, 9, 2])[1] == 1                  # first of equal scores
    assert decide(**low, scores=[7, 9, 9, 2], vm_rss_kb=[5, 10, 20, 99])[1] == 2   # larger RSS
    assert decide(**low, scores=[9, 9, 9], vm_rss_kb=[20, 20, 5])[1] == 0          # then first
    # init and kthreadd (pid <= 2) and oom_score_adj -1000 are never chosen
    assert decide(**low, scores=[900, 800, 1, 700], pid=[1, 2, 300, 301],
                  oom_score_adj=[0, 0, 0, -1000])[1] == 2
    assert decide(**low, scores=[900], pid=[1]) == (signal.SIGKILL, -1)


def test_earlyoom_bad_input():
    with pytest.raises(ValueError, match=r"mem_available_kb: expected at most mem_total_kb \(10\), got 11"):
        oom.earlyoom_decide(10, 11, 0, 0, [1])
    with pytest.raises(ValueError, match=r"swap_free_kb: expected at most swap_total_kb"):
        oom.earlyoom_decide(10, 1, 5, 6, [1])
    with pytest.raises(ValueError, match="mem_total_kb: expected a positive integer"):
        oom.earlyoom_decide(0, 0, 0, 0, [1])
    with pytest.raises(ValueError, match=r"swap_free_kb: expected a non-negative integer \(kB\), got -1"):
        oom.earlyoom_decide(10, 1, 5, -1, [1])
    with pytest.raises(ValueError, match="oom_score: expected integers"):
        oom.earlyoom_decide(10, 1, 0, 0, [1.5])
    with pytest.raises(ValueError, match=r"vm_rss_kb: expected 2 values"):
        oom.earlyoom_decide(10, 1, 0, 0, [1, 2], vm_rss_kb=[1])
    with pytest.raises(ValueError, match=r"mem_term_percent: expected a percentage in 0\.\.100, got 120"):
        oom.earlyoom_decide(10, 1, 0, 0, [1], mem_term_percent=120)


# ---- systemd-oomd: swap ----------------------------------------------------------------------

SWAP_TOTAL_KB = 1_000_000
FIVE_PERCENT = SWAP_TOTAL_KB * 1024 * 5 // 100            # candidates must use more than this


def swap_kill(free_kb, usage, **kw):
    return oom.oomd_swap_kill(np.array(usage), SWAP_TOTAL_KB, free_kb, **kw)


def test_oomd_swap_acts_when_more_than_90_percent_is_used():
    usage = [FIVE_PERCENT + 1, 3 * FIVE_PERCENT, 10]
    assert swap_kill(99_999, usage) == 1                   # free 9.9999 % < 10 %
    assert swap_kill(100_000, usage) == -1                 # exactly 90 % used: not more
    assert swap_kill(99_999, usage, swap_used_limit_percent=99) == -1
    # systemd 248+: memory must be more than 90 % used too
    assert swap_kill(0, usage, mem_total_kb=GiB_KB, mem_available_kb=GiB_KB // 10 - 1) == 1
    assert swap_kill(0, usage, mem_total_kb=GiB_KB, mem_available_kb=GiB_KB // 10 + 1) == -1


def test_oomd_swap_candidates_use_more_than_5_percent_of_swap():
    assert swap_kill(0, [FIVE_PERCENT, FIVE_PERCENT]) == -1
    assert swap_kill(0, [FIVE_PERCENT, FIVE_PERCENT + 1]) == 1
    big = 4 * FIVE_PERCENT
    assert swap_kill(0, [big, big, big - 1]) == 0                       # ties: lowest index
    pref = [oom.PREFERENCE_AVOID, oom.PREFERENCE_NONE, oom.PREFERENCE_OMIT]
    assert swap_kill(0, [big, FIVE_PERCENT + 1, 2 * big], preference=pref) == 1
    assert swap_kill(0, [big, 0, 2 * big], preference=pref) == 0        # avoid, but eligible
    assert swap_kill(0, [big, 0, 2 * big], preference=[2, 2, 2]) == -1


def test_oomd_swap_bad_input():
    with pytest.raises(ValueError, match="swap_free_kb: expected at most swap_total_kb"):
        oom.oomd_swap_kill([1], 10, 11)
    with pytest.raises(ValueError, match="give both or neither"):
        oom.oomd_swap_kill([1], 10, 0, mem_total_kb=5)
    with pytest.raises(ValueError, match=r"preference: expected 0 \(none\), 1 \(avoid\) or 2 \(omit\), "
                                         r"got 3 at index 1"):
        oom.oomd_swap_kill([FIVE_PERCENT * 2, 1], SWAP_TOTAL_KB, 0, preference=[0, 3])
    with pytest.raises(ValueError, match="swap_current_bytes: expected values >= 0"):
        oom.oomd_swap_kill([-5], SWAP_TOTAL_KB, SWAP_TOTAL_KB)         # checked with no action too
    with pytest.raises(ValueError, match="preference"):
        oom.oomd_swap_kill([1, 1], SWAP_TOTAL_KB, SWAP_TOTAL_KB, preference=[0, 5])
    with pytest.raises(ValueError, match="swap_current_bytes: expected a 1-D array"):
        oom.oomd_swap_kill([[1]], SWAP_TOTAL_KB, 0)


# ---- systemd-oomd: memory pressure -------------------------------------------------------------

def test_pressure_must_stay_above_60_percent_for_30_seconds():
    t = np.arange(0, 61.0)                               # one sample a second
    p = np.full(t.shape, 60.01)
    scan, mem = [10, 500, 3], [1, 1, 1]
    assert oom.oomd_pressure_kill(t, p, scan, mem) == (30, 1)        # 30 s after the first sample
    assert oom.oomd_pressure_kill(t, np.full(t.shape, 60.0), scan, mem) == (-1, -1)   # not above
    p[15] = 59.0                                         # a dip restarts the clock
    assert oom.oomd_pressure_kill(t, p, scan, mem) == (46, 1)
    assert oom.oomd_pressure_kill(t[:46], p[:46], scan, mem) == (-1, -1)
    assert oom.oomd_pressure_kill(t, p, scan, mem, duration_s=10) == (10, 1)
    assert oom.oomd_pressure_kill(t, np.full(t.shape, 80.0), scan, mem, limit_percent=80) == (-1, -1)


def test_pressure_monitor_state_per_cgroup():
    mon = oom.OomdPressureMonitor(2)
    assert mon.observe(0.0, [70, 10]).tolist() == [False, False]
    assert mon.observe(29.5, [70, 70]).tolist() == [False, False]
    assert mon.observe(30.0, [70, 70]).tolist() == [True, False]
    assert mon.observe(59.0, [70, 70]).tolist() == [True, False]
    assert mon.observe(59.0, [70, 70]).tolist() == [True, False]    # equal times are fine
    assert mon.observe(59.5, [10, 70]).tolist() == [False, True]
    # several monitored cgroups in one history: the first sample where any qualifies
    t = np.arange(0, 40.0)
    p = np.stack([np.full(40, 10.0), np.where(t >= 5, 90.0, 10.0)], axis=1)
    assert oom.oomd_pressure_kill(t, p, [1], [0]) == (35, 0)


def test_pressure_victim_has_the_most_reclaim_then_the_most_memory():
    assert oom.oomd_select_by_pgscan_rate([5, 9, 9], [100, 1, 2]) == 2
    assert oom.oomd_select_by_pgscan_rate([5, 9, 9], [100, 2, 2]) == 1          # then lowest index
    assert oom.oomd_select_by_pgscan_rate([0, 0], [0, 7]) == 1                  # memory alone counts
    assert oom.oomd_select_by_pgscan_rate([0, 0], [0, 0]) == -1                 # nothing to free
    assert oom.oomd_select_by_pgscan_rate([9, 1], [1, 1], preference=[1, 0]) == 1
    t = np.arange(0, 31.0)
    assert oom.oomd_pressure_kill(t, np.full(31, 99.0), [0, 0], [0, 0]) == (30, -1)


def test_pressure_bad_input():
    mon = oom.OomdPressureMonitor(1)
    mon.observe(5.0, [1])
    with pytest.raises(ValueError, match="t_s: expected non-decreasing finite times, got 4.0"):
        mon.observe(4.0, [1])
    with pytest.raises(ValueError, match=r"avg10_percent: expected percentages in 0\.\.100"):
        mon.observe(6.0, [101])
    with pytest.raises(ValueError, match="avg10_percent: expected 1 values, got 2"):
        mon.observe(6.0, [1, 2])
    with pytest.raises(ValueError, match="n_cgroups: expected a positive integer"):
        oom.OomdPressureMonitor(0)
    with pytest.raises(ValueError, match="duration_s"):
        oom.OomdPressureMonitor(1, duration_s=-1)
    with pytest.raises(ValueError, match=r"avg10_percent: expected shape \(3,\) or \(3, m\)"):
        oom.oomd_pressure_kill([0, 1, 2], [1, 2], [1], [1])
    with pytest.raises(ValueError, match="memory_current_bytes: expected 2 values"):
        oom.oomd_pressure_kill([0], [1], [1, 2], [1])
    with pytest.raises(ValueError, match="pgscan_delta: expected values >= 0"):
        oom.oomd_select_by_pgscan_rate([-1], [0])
