"""Memory pressure stall information: /proc/pressure/memory and memory.pressure."""
from __future__ import annotations

import errno

import pytest

from mmcore import Config, Machine
from mmcore import psi as PSI
from mmcore.kernels import consts as K

MiB = 1 << 20


parse = PSI.parse_pressure


def test_calc_load_is_the_kernels_fixed_point_average():
    # one 2 s period fully stalled: avg10 = 1 - exp(-2/10) = 18.13 %, as Linux shows 18.11
    a = PSI.calc_load(0, PSI.EXP_10S, 100 * PSI.FIXED_1)
    assert a == (100 * PSI.FIXED_1 * (PSI.FIXED_1 - PSI.EXP_10S) + PSI.FIXED_1 - 1) // PSI.FIXED_1
    text = PSI.format_pressure({"some": [a, 0, 0], "full": [0, 0, 0]}, {"some": 2_000_000_000,
                                                                        "full": 0})
    assert text.splitlines()[0] == "some avg10=18.11 avg60=0.00 avg300=0.00 total=2000000"
    assert text.splitlines()[1] == "full avg10=0.00 avg60=0.00 avg300=0.00 total=0"
    # a falling average rounds down, a rising one up (the FIXED_1 - 1 term)
    assert PSI.calc_load(1000, PSI.EXP_10S, 0) == 1000 * PSI.EXP_10S // PSI.FIXED_1


def test_samples_some_and_full_of_concurrent_tasks():
    P = 1000
    one = [(0, P, P // 4, 1)]
    assert PSI.samples(one, 0, P) == pytest.approx((P / 4, P / 4))     # one task: some == full
    two = [(0, P, P // 2, 1), (0, P, P // 2, 2)]
    some, full = PSI.samples(two, 0, P)
    assert some == pytest.approx(0.75 * P) and full == pytest.approx(0.25 * P)
    # a task that is idle half the time does not make the stalled one's stall less full
    half = [(0, P, P // 2, 1), (0, P // 2, 0, 2)]
    some, full = PSI.samples(half, 0, P)
    assert some == pytest.approx(P / 2) and full == pytest.approx(P / 4)
    assert PSI.samples(one, P, 2 * P) == (0.0, 0.0)


def thrash(passes: int, **kw) -> tuple[Machine, object]:
    kw.setdefault("memory", "64MiB")
    kw.setdefault("swap", "128MiB")
    m = Machine(Config(thp_enabled="never", **kw))
    m.spawn("init")
    return m, m.spawn("thrash")


def test_no_pressure_without_memory_shortage():
    m, t = thrash(0, memory="256MiB")
    a = t.mmap(64 * MiB)
    for _ in range(3):
        t.touch(a, 64 * MiB)
    t.nanosleep(3_000_000_000)
    p = parse(m.pressure())
    assert p["some"] == {"avg10": 0, "avg60": 0, "avg300": 0, "total": 0}
    assert p["full"]["total"] == 0


def test_thrashing_drives_memory_pressure_up():
    m, t = thrash(0)
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    seen = []
    for _ in range(5):
        t.touch(a, 96 * MiB, write=False)          # every pass reads back what the last evicted
        seen.append(parse(m.pressure()))
    assert m.vmstat()["pswpin"] > 5 * 16384
    avg10 = [p["full"]["avg10"] for p in seen]
    assert avg10 == sorted(avg10) and avg10[-1] > 50  # climbing as the 10 s average does
    last = seen[-1]
    # one task and kswapd: the task's stalls are full stalls; kswapd's work while the task ran
    # unstalled is "some" only, so some exceeds full by at most kswapd's work (us)
    kswapd_us = int(m.state.fgs[K.FG_KSWAPD_BUSY_PS]) // 10**6
    assert kswapd_us > 0
    assert last["full"]["total"] <= last["some"]["total"] <= last["full"]["total"] + kswapd_us
    # nearly all of the task's time was stall (total is in microseconds)
    assert last["some"]["total"] > 0.8 * t.time_ns / 1000


def test_cgroup_memory_pressure_is_per_group_and_hierarchical():
    m, _ = thrash(0, memory="128MiB", cgroup_version=2)
    parent = m.cgroup("/jobs", create=True)
    box = m.cgroup("/jobs/box", create=True)
    calm = m.cgroup("/calm", create=True)
    box.write("memory.max", "32M")
    t, quiet = m.spawn("boxed"), m.spawn("quiet")
    box.attach(t)
    calm.attach(quiet)
    a = t.mmap(48 * MiB)
    t.touch(a, 48 * MiB)
    for _ in range(3):
        t.touch(a, 48 * MiB, write=False)
    q = quiet.mmap(8 * MiB)
    quiet.touch(q, 8 * MiB)
    pb, pp = parse(box.read("memory.pressure")), parse(parent.read("memory.pressure"))
    assert pb["full"]["total"] > 0 and pb["full"]["avg10"] > 0
    assert pp == pb                                   # the parent holds only the box's tasks
    assert parse(calm.read("memory.pressure"))["some"]["total"] == 0
    root = parse(m.cgroup("/").read("memory.pressure"))
    assert root == parse(m.pressure())                # the root group is the system's
    assert root["some"]["total"] == pb["some"]["total"]


def test_no_psi_before_4_20():
    m = Machine(Config(memory="64MiB", kernel="4.13"))
    with pytest.raises(OSError) as e:
        m.pressure()
    assert e.value.errno == errno.ENOENT and "4.20" in str(e.value)


def test_pressure_is_deterministic():
    def run():
        m, t = thrash(0)
        a = t.mmap(96 * MiB)
        t.touch(a, 96 * MiB)
        t.touch(a, 96 * MiB, write=False)
        return m.pressure()
    assert run() == run()


def test_long_runs_keep_few_intervals_and_the_same_pressure():
    """The tracker drops what finished periods no longer need (every COMPACT_EVERY operations),
    without changing what a read shows."""
    def run(every):
        m, t = thrash(0)
        m._psi.COMPACT_EVERY = every
        a = t.mmap(96 * MiB)
        t.touch(a, 96 * MiB)
        for _ in range(40):                              # about 80 s of thrashing
            for k in range(0, 96 * MiB, 4 * MiB):    # many small operations
                t.touch(a + k, 4 * MiB, write=False)
        kept = sum(len(g.ops) for g in m._psi._groups.values())
        return kept, m.pressure()
    kept_small, text_small = run(16)
    kept_big, text_big = run(1 << 30)
    assert text_small == text_big
    # init's clock stays at 0: periods close 60 s behind the latest time instead
    assert kept_big > 900 and kept_small < 0.8 * kept_big     # only the last 60 s kept


def test_parse_pressure_reads_our_text_and_rejects_junk():
    text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    p = PSI.parse_pressure(text)
    assert p["some"] == {"avg10": 1.5, "avg60": 0.25, "avg300": 0.0, "total": 1234.0}
    assert p["full"]["total"] == 0
    with pytest.raises(ValueError, match="pressure line 1"):
        PSI.parse_pressure("some avg10=x")
