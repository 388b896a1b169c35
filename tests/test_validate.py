"""``mmcore validate``: the engine side of each host scenario, the host side on this host, the
skip logic, and the command line."""
from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmcore import cli, oom
from mmcore import validate as V
from mmcore.config import Config

DATA = Path(__file__).parent.parent / "data"
MiB = 1 << 20
TABLE_KB = 4                        # one page-table page

# ---- what this host offers, probed here independently of mmcore.validate ----------------------

_LINUX = sys.platform.startswith("linux") and os.uname().machine == "x86_64"
_PROC = os.access("/proc/self/smaps", os.R_OK)


def _thp_enabled() -> str | None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            mode = f.read().split("[")[1].split("]")[0]
        with open("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled") as f:
            pmd = f.read().split("[")[1].split("]")[0]
        return mode if pmd == "inherit" else pmd
    except (OSError, IndexError):
        return None


def _shmem_thp() -> str | None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


def _capable(bit: int) -> bool:
    try:
        with open("/proc/self/status") as f:
            eff = next(line for line in f if line.startswith("CapEff:")).split()[1]
        return bool(int(eff, 16) >> bit & 1)
    except (OSError, StopIteration):
        return False


needs_host = pytest.mark.skipif(not (_LINUX and _PROC), reason="needs Linux on x86-64 with /proc")
needs_thp = pytest.mark.skipif(not (_LINUX and _PROC) or _thp_enabled() in (None, "never"),
                               reason="needs transparent huge pages (enabled not never) on Linux")
needs_pfns = pytest.mark.skipif(not _capable(21), reason="pagemap PFNs need CAP_SYS_ADMIN")
needs_tmpfs = pytest.mark.skipif(
    not (_LINUX and _PROC and _capable(21)) or _shmem_thp() in (None, "deny"),
    reason="needs shmem THP (shmem_enabled not deny) and CAP_SYS_ADMIN to mount a tmpfs on Linux")
needs_sys_resource = pytest.mark.skipif(
    not _capable(24), reason="a negative oom_score_adj needs CAP_SYS_RESOURCE")

# rows the engine is known to get wrong on a real kernel: (scenario, observable) -> what differs;
# their tests are xfail(strict=True), so a fix in the engine shows up as XPASS
def _read_ahead_kb(path: str) -> int | None:
    """read_ahead_kb of the block device (or its disk) holding ``path``."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    base = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    for q in (base + "/queue/read_ahead_kb", base + "/../queue/read_ahead_kb"):
        try:
            with open(q) as f:
                return int(f.read())
        except (OSError, ValueError):
            continue
    return None


_RA_KB = _read_ahead_kb(V.FILE_DIR) if _LINUX and _PROC else None
needs_block_dir = pytest.mark.skipif(
    _RA_KB is None or not 16 <= _RA_KB <= V.FILE_MAX_RA_KB,
    reason=f"needs {V.FILE_DIR} on a block device with read_ahead_kb in [16, {V.FILE_MAX_RA_KB}]")
needs_mlock = pytest.mark.skipif(not _capable(14), reason="mlock of a window needs CAP_IPC_LOCK")
_KH_NONE = "/sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none"
needs_underused = pytest.mark.skipif(
    not (os.access(_KH_NONE, os.W_OK)
         and (V._read("/sys/kernel/mm/transparent_hugepage/shrink_underused") or "").strip() == "1"),
    reason="the underused-THP shrinker (6.12+) and a writable khugepaged/max_ptes_none (root)")
KNOWN_MISMATCHES: dict[tuple[str, str], str] = {}
needs_ext4_dir = pytest.mark.skipif(
    not (_LINUX and _PROC) or V._fs_type(V.FILE_DIR) != "ext4",
    reason=f"needs {V.FILE_DIR} on ext4")
_RELEASE = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2]) if _LINUX else (0, 0)
if (4, 14) <= _RELEASE < (6, 16):
    # hosts the 6.18 profile stands for whose ext4 predates large folios (6.16)
    for _row in [V.folio_label(case) for case, _ in V.FOLIO_CASES[:2]] + [V.FOLIO_PMD]:
        KNOWN_MISMATCHES[(V.FOLIO_SCENARIO, _row)] = (
            "the 6.18 profile's ext4 makes large folios on write; this host's (before 6.16) does not")


def _host(thp: dict | None = None, **kw) -> V.HostInfo:
    """A made-up Linux host: 6.18 on x86-64, every capability, THP as given."""
    d = dict(system="linux", machine="x86_64", release="6.18.2", proc=True, root=True,
             cap_eff=(1 << 41) - 1, thp=thp, mem_total_kb=4 << 20, swap_total_kb=0,
             shmem_thp="never")
    d.update(kw)
    return V.HostInfo(**d)


MADVISE = {"enabled": "madvise", "defrag": "madvise", "use_zero_page": "1"}


def _config(**thp) -> Config:
    return V.engine_config(_host({**MADVISE, **thp}))


def _scenario(name: str) -> V.Scenario:
    return next(s for s in V.SCENARIOS if s.name == name)


def _tmpfs(name: str) -> V.TmpfsScenario:
    return next(s for s in V.TMPFS_SCENARIOS if s.name == name)


def _engine_tmpfs(name: str, cfg: Config | None = None) -> dict:
    return V.engine_tmpfs(cfg or _config(), _tmpfs(name).tmpfs)


# ---- the engine side ------------------------------------------------------------------------------

def test_engine_thp_fault_under_madv_hugepage():
    r = V.engine_region(_config(), _scenario("madv-hugepage").region)
    assert r["AnonHugePages"] == r["Rss"] == 8 << 10
    assert r["thp_fault_alloc"] == 4 and r["thp_fault_fallback"] == 0
    # 4 deposited PTE tables (one per THP) plus the fresh mm's PUD and PMD tables
    assert r["VmPTE"] == (4 + 2) * TABLE_KB
    assert r["addr"] % V.HPAGE == 0


def test_engine_nohugepage_and_prctl_give_no_huge_pages():
    cfg = _config(enabled="always")
    nohuge = V.engine_region(cfg, _scenario("madv-nohugepage").region)
    assert nohuge["AnonHugePages"] == 0 and nohuge["Rss"] == 8 << 10
    assert nohuge["thp_fault_alloc"] == 0 and nohuge["VmPTE"] == (4 + 2) * TABLE_KB
    off = V.engine_region(cfg, _scenario("prctl-thp-disable").region)
    assert off["AnonHugePages"] == 0 and off["Rss"] == 8 << 10
    assert off["THP_enabled"] == 0 and off["prctl_get"] == 1
    advised = V.engine_region(cfg, _scenario("prctl-except-advised").region)
    assert advised["AnonHugePages"] == 8 << 10 and advised["THP_enabled"] == 1
    assert advised["prctl_get"] == 3


def test_engine_reads_map_the_zero_pages_or_a_thp_per_use_zero_page():
    huge = V.engine_region(_config(), _scenario("read-huge-zero").region)
    assert (huge["Rss"], huge["AnonHugePages"], huge["huge_zero_pmds"], huge["zero_ptes"]) == (0, 0, 4, 0)
    small = V.engine_region(_config(), _scenario("read-zero").region)
    assert (small["Rss"], small["huge_zero_pmds"], small["zero_ptes"]) == (0, 0, 8 * MiB // 4096)
    # use_zero_page=0: a read fault in a THP-eligible VMA allocates a THP
    thp = V.engine_region(_config(use_zero_page="0"), _scenario("read-huge-zero").region)
    assert thp["Rss"] == thp["AnonHugePages"] == 8 << 10 and thp["huge_zero_pmds"] == 0
    assert thp["thp_fault_alloc"] == 4


def test_engine_page_table_growth():
    r = V.engine_region(_config(), _scenario("pte-growth").region)
    assert r["Rss"] == 16 * 4 and r["AnonHugePages"] == 0
    assert r["VmPTE"] == (16 + 2) * TABLE_KB          # a PTE table per page, plus PUD and PMD


def test_engine_underused_shrinker_splits_the_sparse_thps():
    r = V.engine_region(_config(), _scenario("underused-shrink").region)
    assert (r["Rss"], r["AnonHugePages"]) == (1024, 0)
    assert [r[k] for k in V.SPLIT_KEYS] == [4, 4, 4]
    assert r["thp_fault_alloc"] == 4                   # measured before the drop
    old = V.engine_region(V.engine_config(_host(MADVISE, release="6.6.0")),
                          _scenario("underused-shrink").region)
    assert old["skip"] == "profile 4.13: no underused-THP shrinker (6.12+)"


@needs_thp
@needs_underused
def test_host_underused_child_restores_max_ptes_none():
    with V.host_turn():                   # another worker's scenario may change it meanwhile
        before = V._read(_KH_NONE)
        got = V.run_host_region(_scenario("underused-shrink").region)
        after = V._read(_KH_NONE)
    assert after == before
    assert got["AnonHugePages"] == 0 and got["thp_underused_split_page"] >= 4


def test_engine_prctl_option_missing_from_an_older_profile():
    cfg = V.engine_config(_host(MADVISE, release="5.4.0"))
    assert cfg.kernel == "4.13"
    r = V.engine_region(cfg, _scenario("prctl-except-advised").region)
    assert r["skip"].startswith("profile 4.13: prctl")


def test_engine_oom_uses_the_hosts_totalpages_and_its_own_accounting():
    host = _host(MADVISE, mem_total_kb=(1 << 20) * 4, swap_total_kb=64 << 10)
    before = {"RssAnon": 1000, "RssFile": 6000, "RssShmem": 0, "VmSwap": 0, "VmPTE": 60}
    kids = [{"pid": 4000 + i, "name": n, "length": ln, "adj": adj, "before": before}
            for i, (n, ln, adj) in enumerate(V.OOM_CHILDREN)]
    got = V.engine_oom(V.engine_config(host), host, kids)
    total = (host.mem_total_kb + host.swap_total_kb) // 4
    for k, g in zip(kids, got):
        pages = k["length"] // 4096
        tables = k["length"] // V.HPAGE + 2           # PTE tables, plus PUD and PMD
        rss = (before["RssAnon"] + before["RssFile"]) // 4 + pages
        assert g["VmRSS"] == rss * 4
        assert g["oom_score"] == oom.proc_oom_score(rss, 0, (before["VmPTE"] // 4 + tables) * 4096,
                                                    k["adj"], total, kernel="6.18")


# ---- the engine side of the tmpfs huge page cache group -------------------------------------------
# the values a 6.18 host shows (x86-64, huge=always unless said otherwise)

def test_engine_tmpfs_write_gives_a_folio_per_2mib_touched():
    r = _engine_tmpfs("tmpfs-write")
    # 4 MiB + 4 KiB: three PMD-sized folios, the third for one page of data
    assert (r["ShmemHugePages"], r["used"], r["thp_file_alloc"], r["thp_file_fallback"]) == (
        6144, 6144, 3, 0)


def test_engine_tmpfs_maps_pmds_only_where_address_and_offset_agree():
    r = _engine_tmpfs("tmpfs-map-shared")
    assert r["Rss"] == r["ShmemPmdMapped"] == 4096 and r["ShmemPmdMapped"] == 4096
    assert r["thp_file_mapped"] == 2 and r["thp_file_alloc"] == 0 and r["Anonymous"] == 0
    r = _engine_tmpfs("tmpfs-map-offset")
    assert (r["Rss"], r["ShmemPmdMapped"], r["thp_file_mapped"]) == (2048, 0, 0)


def test_engine_tmpfs_private_write_splits_the_pmd_and_copies_a_page():
    r = _engine_tmpfs("tmpfs-private-write")
    assert r["read:ShmemPmdMapped"] == r["read:Rss"] == 2048
    assert (r["Rss"], r["Anonymous"], r["ShmemPmdMapped"], r["thp_split_pmd"]) == (4, 4, 0, 1)


def test_engine_tmpfs_truncate_frees_and_splits_or_zeroes_by_profile():
    r = _engine_tmpfs("tmpfs-truncate")
    assert (r["ShmemHugePages"], r["Shmem"], r["used"], r["thp_split_page"]) == (2048, 3072, 3072, 1)
    # 4.13 (before 5.17): the folio across the new size is zeroed past it, not split
    old = _engine_tmpfs("tmpfs-truncate", V.engine_config(_host(MADVISE, release="4.19.0")))
    assert (old["ShmemHugePages"], old["used"], old["thp_split_page"]) == (4096, 4096, 0)


def test_engine_tmpfs_within_size_and_collapse():
    r = _engine_tmpfs("tmpfs-within-size")
    assert (r["1M:ShmemHugePages"], r["1M:used"]) == (0, 1024)
    assert (r["ShmemHugePages"], r["used"], r["thp_file_alloc"]) == (2048, 3072, 1)
    r = _engine_tmpfs("tmpfs-collapse")
    assert r["read:ShmemPmdMapped"] == 0 and r["read:Rss"] == 2048 and r["madvise"] == 0
    assert (r["ShmemPmdMapped"], r["Rss"], r["ShmemHugePages"]) == (2048, 2048, 2048)
    assert (r["thp_file_mapped"], r["thp_collapse_alloc"], r["thp_file_alloc"]) == (1, 1, 0)


def test_engine_tmpfs_follows_shmem_enabled_and_the_profile():
    # THP enabled=never leaves tmpfs huge= alone; shmem_enabled deny and force override it
    never = V.engine_config(_host({**MADVISE, "enabled": "never"}))
    assert _engine_tmpfs("tmpfs-write", never)["ShmemHugePages"] == 6144
    deny = V.engine_config(_host(MADVISE, shmem_thp="deny"))
    assert deny.shmem_enabled == "deny"
    assert _engine_tmpfs("tmpfs-write", deny)["ShmemHugePages"] == 0
    assert _engine_tmpfs("tmpfs-collapse", deny)["madvise"] == -22          # EINVAL
    force = V.engine_config(_host(MADVISE, shmem_thp="force"))
    assert _engine_tmpfs("tmpfs-within-size", force)["1M:ShmemHugePages"] == 2048
    # 4.13: no MADV_COLLAPSE (6.1); 3.x: no tmpfs huge pages at all, and no shmem_enabled
    old = V.engine_config(_host(MADVISE, release="4.19.0"))
    assert _engine_tmpfs("tmpfs-collapse", old)["madvise"] == -22
    older = V.engine_config(_host(MADVISE, release="3.14.0", shmem_thp="force"))
    assert older.shmem_enabled == "never"
    assert _engine_tmpfs("tmpfs-write", older)["skip"].startswith("profile 3.12: ")


def test_tmpfs_scenarios_stay_small_and_aligned():
    for sc in V.TMPFS_SCENARIOS:
        assert sc.tmpfs.size <= 64 * MiB and sc.tmpfs.huge in ("always", "within_size", "never")
        ends = [st[1] + st[2] for st in sc.tmpfs.steps if st[0] == "write"]
        assert max(ends) <= 6 * MiB
        assert len({ob.label for ob in sc.observables}) == len(sc.observables)
    with pytest.raises(ValueError, match="unknown tmpfs step"):
        V.engine_tmpfs(_config(), V.Tmpfs("always", (("punch", 0, 4096),)))


def test_closest_profile_and_engine_config():
    assert V.closest_profile("6.18.44-fc") == "6.18"
    assert V.closest_profile("6.8.0-45-generic") == "4.13"
    assert V.closest_profile("3.14.1") == "3.12"
    assert V.closest_profile("2.6.32") == "3.10"
    cfg = V.engine_config(_host({"enabled": "always", "defrag": "defer+madvise", "use_zero_page": "0"}))
    assert (cfg.thp_enabled, cfg.defrag, cfg.thp_use_zero_page) == ("always", "defer+madvise", False)
    # a defrag mode the profile lacks keeps its default; no THP at all is "never"
    cfg = V.engine_config(_host({"enabled": "always", "defrag": "defer", "use_zero_page": "1"},
                                release="3.10.0"))
    assert cfg.kernel == "3.10" and cfg.defrag == "always"
    assert V.engine_config(_host(None)).thp_enabled == "never"


def test_probe_shmem_thp(tmp_path, monkeypatch):
    assert V.probe_shmem_thp(str(tmp_path)) is None
    (tmp_path / "shmem_enabled").write_text("always within_size advise [never] deny force\n")
    assert V.probe_shmem_thp(str(tmp_path)) == "never"
    # a host whose kernel has no shmem THP: probe_host says so, and the tmpfs group is skipped
    monkeypatch.setattr(V, "probe_shmem_thp", lambda *a: None)
    monkeypatch.setattr(V, "run_host_tmpfs", _no_host)
    host = V.probe_host()
    assert host.shmem_thp is None
    report = V.run(host, scenarios=V.TMPFS_SCENARIOS, oom=False, file=False)
    why = "no shmem THP (/sys/kernel/mm/transparent_hugepage/shmem_enabled missing)"
    assert {c.result for c in report.checks} == {f"skipped: {why}"} and report.ok
    assert "no shmem THP" in report.header()


def test_probe_thp_reads_the_pmd_size_and_mthp_sizes(tmp_path):
    assert V.probe_thp(str(tmp_path / "none")) == (None, [])
    (tmp_path / "enabled").write_text("always [madvise] never\n")
    (tmp_path / "defrag").write_text("always defer defer+madvise [madvise] never\n")
    (tmp_path / "use_zero_page").write_text("0\n")
    for size, mode in (("2048kB", "always [inherit] madvise never"),
                       ("64kB", "always inherit madvise [never]"),
                       ("16kB", "always [inherit] madvise never")):
        (tmp_path / f"hugepages-{size}").mkdir()
        (tmp_path / f"hugepages-{size}" / "enabled").write_text(mode + "\n")
    thp, other = V.probe_thp(str(tmp_path))
    assert thp == {"enabled": "madvise", "defrag": "madvise", "use_zero_page": "0"}
    assert other == ["16kB=madvise"]
    (tmp_path / "hugepages-2048kB" / "enabled").write_text("always inherit madvise [never]\n")
    assert V.probe_thp(str(tmp_path))[0]["enabled"] == "never"


def test_check_tolerances_and_results():
    c = V.Check("s", "o", "kB", 5, 4, (0, 2))
    assert c.matches and c.result == "match" and c.tolerance == "+0..+2"
    c.host = 3
    assert not c.matches and c.result == "MISMATCH"
    assert V.Check("s", "o", "kB", 16, 24, (-8, 8)).tolerance == "±8"
    assert V.Check("s", "o", "", "a > b", "a > b").result == "match"
    assert V.Check("s", "o", "", "a > b", "b > a").result == "MISMATCH"
    assert V.Check("s", "o", "", None, None).result == "MISMATCH"      # ran, but no value
    skipped = V.Check("s", "o", "", 1, 2, skipped="not Linux (darwin)")
    assert skipped.matches and skipped.result == "skipped: not Linux (darwin)"


# ---- the skip logic ---------------------------------------------------------------------------

def _no_host(*a, **k):
    raise AssertionError("a host scenario ran on a host that cannot run it")


def test_not_linux_skips_every_host_scenario(monkeypatch):
    monkeypatch.setattr(V, "run_host_region", _no_host)
    monkeypatch.setattr(V, "run_host_tmpfs", _no_host)
    monkeypatch.setattr(V, "run_host_oom", _no_host)
    monkeypatch.setattr(V, "run_host_file", _no_host)
    mac = V.HostInfo(system="darwin", machine="arm64", release="23.1.0", proc=False, root=False)
    monkeypatch.setattr(V, "probe_host", lambda: mac)
    code, out, _ = cli_run(["validate"])
    assert code == 0
    assert out.count("skipped: not Linux (darwin)") == len(_expected_rows())
    report = V.run(mac)
    assert report.ok and report.counts()["skipped"] == report.counts()["checks"]
    # the engine side still ran (THP "never": the host has none): its values are in the table
    rss = next(c for c in report.checks if (c.scenario, c.observable) == ("pte-growth", "smaps Rss"))
    assert rss.engine == 16 * 4 and rss.host is None
    assert report.engine["thp_enabled"] == "never"


def test_thp_never_skips_the_thp_scenarios_only(monkeypatch):
    ran = []

    def fake_region(region):
        """The host agrees with an engine under "never", but its pagemap shows no PFNs."""
        ran.append(region)
        r = V.engine_region(V.engine_config(host), region)
        r = {k: v for k, v in r.items() if k not in ("huge_zero_pmds", "zero_ptes")}
        return {**r, "pagemap_skip": "no CAP_SYS_ADMIN: pagemap shows no PFNs"} if not region.write else r
    host = _host({"enabled": "never", "defrag": "madvise", "use_zero_page": "1"},
                 cap_eff=(1 << 41) - 1 - (1 << 21) - (1 << 24))     # no SYS_ADMIN, no SYS_RESOURCE
    monkeypatch.setattr(V, "run_host_region", fake_region)
    monkeypatch.setattr(V, "run_host_tmpfs", _no_host)
    oom_kids = []
    monkeypatch.setattr(V, "run_host_oom", lambda kids: oom_kids.extend(kids) or [])
    monkeypatch.setattr(V, "run_host_file", lambda d: {"skip": "not this test's"})
    monkeypatch.setattr(V, "engine_oom", lambda *a: [])
    report = V.run(host)
    thp = {s.name for s in V.SCENARIOS if s.needs_thp}
    assert thp and ran == [s.region for s in V.SCENARIOS if not s.needs_thp]
    for c in report.checks:
        if c.scenario in thp:
            assert c.result == "skipped: THP disabled (enabled=never)"
    # no CAP_SYS_ADMIN: the pagemap rows of a scenario that ran are skipped, with the reason,
    # the others compared
    rz = [c for c in report.checks if c.scenario == "read-zero"]
    assert {c.result for c in rz if c.observable.startswith("pagemap")} == {
        "skipped: no CAP_SYS_ADMIN: pagemap shows no PFNs"}
    assert all(c.result == "match" for c in rz if c.observable.startswith("smaps"))
    # no CAP_SYS_RESOURCE: the child with a negative oom_score_adj does not run
    assert oom_kids == [k for k in V.OOM_CHILDREN if k[2] >= 0] and len(oom_kids) < len(V.OOM_CHILDREN)
    neg = [c for c in report.checks if c.scenario == "oom-score" and "adj -" in c.observable]
    assert neg and all(c.result.startswith("skipped: no CAP_SYS_RESOURCE") for c in neg)
    # no CAP_SYS_ADMIN: no tmpfs mount, whatever THP is
    tmpfs = [c for c in report.checks if c.scenario.startswith("tmpfs-")]
    assert len(tmpfs) == sum(len(s.observables) for s in V.TMPFS_SCENARIOS)
    assert {c.result for c in tmpfs} == {"skipped: no CAP_SYS_ADMIN: mounting a tmpfs needs it"}


def test_no_thp_support_and_no_proc(monkeypatch):
    monkeypatch.setattr(V, "run_host_region", _no_host)
    monkeypatch.setattr(V, "run_host_tmpfs", _no_host)
    monkeypatch.setattr(V, "run_host_oom", _no_host)
    monkeypatch.setattr(V, "run_host_file", _no_host)
    assert V._requirements(_host(None), thp=True) == (
        "no transparent huge pages (/sys/kernel/mm/transparent_hugepage missing)")
    assert V._requirements(_host(None), thp=False) is None
    assert V._requirements(_host(MADVISE, proc=False), thp=False) == "no /proc (procfs not mounted)"
    assert V._requirements(_host(MADVISE, machine="aarch64"), thp=False).startswith("not x86-64")
    report = V.run(_host(MADVISE, proc=False))
    assert {c.skipped for c in report.checks} == {"no /proc (procfs not mounted)"}


def test_a_host_prctl_skip_becomes_the_rows_reason(monkeypatch):
    why = "prctl PR_SET_THP_DISABLE unsupported (Invalid argument)"
    monkeypatch.setattr(V, "run_host_region", lambda region: {"skip": why})
    report = V.run(_host(MADVISE), scenarios=(_scenario("prctl-thp-disable"),), oom=False, file=False)
    assert [c.result for c in report.checks] == [f"skipped: {why}"] * 4


@pytest.mark.parametrize("noise, runs, result", [([7, 0], 2, "match"), ([7, 5, 9], 3, "MISMATCH")])
def test_system_wide_counters_are_measured_again_above_the_band(monkeypatch, noise, runs, result):
    host = _host(MADVISE)
    sc = _scenario("madv-hugepage")
    eng = V.engine_region(V.engine_config(host), sc.region)
    calls = []

    def noisy(region):                 # other processes' THP faults land in the first runs
        calls.append(region)
        return {**eng, "thp_fault_alloc": eng["thp_fault_alloc"] + noise[len(calls) - 1]}
    monkeypatch.setattr(V, "run_host_region", noisy)
    report = V.run(host, scenarios=(sc,), oom=False, file=False)
    c = next(c for c in report.checks if c.observable == "vmstat thp_fault_alloc delta")
    assert len(calls) == runs and c.result == result
    assert c.host == eng["thp_fault_alloc"] + min(noise)
    assert all(x.result == "match" for x in report.checks if x is not c)


@pytest.mark.parametrize("noise, runs, result", [([3, 0], 2, "match"), ([3, 4, 1], 3, "match"),
                                                  ([5, 3, 4], 3, "MISMATCH")])
def test_file_mlock_counters_are_measured_again_above_the_band(monkeypatch, noise, runs, result):
    """Another process mlocking pages during the host's file run adds to unevictable_pgs_culled:
    the file group measures it again like the other system-wide counters."""
    host = _host(MADVISE)
    eng = V.engine_file(V.engine_config(host), 128)
    calls = []

    def noisy(directory):
        calls.append(directory)
        culled = eng["unevictable_pgs_culled"] + noise[len(calls) - 1]
        return {**eng, "unevictable_pgs_culled": culled}
    monkeypatch.setattr(V, "_requirements", lambda host, thp: None)
    monkeypatch.setattr(V, "run_host_file", noisy)
    report = V.run(host, scenarios=(), oom=False)
    c = next(c for c in report.checks if c.observable == "vmstat unevictable_pgs_culled delta")
    assert len(calls) == runs and c.result == result
    assert c.host == eng["unevictable_pgs_culled"] + min(noise)
    assert all(x.result == "match" for x in report.checks
               if x is not c and x.scenario == V.FILE_SCENARIO)


def test_tmpfs_skips_without_shmem_thp_or_a_mount(monkeypatch):
    monkeypatch.setattr(V, "run_host_tmpfs", _no_host)
    assert V._tmpfs_requirements(_host(MADVISE)) is None
    assert V._tmpfs_requirements(_host({**MADVISE, "enabled": "never"})) is None   # not needed
    assert V._tmpfs_requirements(_host(None, shmem_thp=None)).startswith("no shmem THP")
    report = V.run(_host(MADVISE, shmem_thp="deny"), scenarios=V.TMPFS_SCENARIOS, oom=False, file=False)
    assert {c.result for c in report.checks} == {"skipped: shmem THP disabled (shmem_enabled=deny)"}
    # the host may refuse the mount (a container, a seccomp filter): the child's reason
    why = "cannot mount a tmpfs (Operation not permitted)"
    calls = []
    monkeypatch.setattr(V, "run_host_tmpfs", lambda tm: calls.append(tm) or {"skip": why})
    report = V.run(_host(MADVISE), scenarios=V.TMPFS_SCENARIOS, oom=False, file=False)
    assert {c.result for c in report.checks} == {f"skipped: {why}"}
    assert calls == [s.tmpfs for s in V.TMPFS_SCENARIOS]               # once each, no re-runs
    # the engine's profile may lack tmpfs huge pages (a 3.x host has no shmem_enabled either)
    monkeypatch.setattr(V, "run_host_tmpfs", lambda tm: V.engine_tmpfs(_config(), tm))
    report = V.run(_host(MADVISE, release="3.14.0"), scenarios=(_tmpfs("tmpfs-write"),), oom=False, file=False)
    assert all(c.result.startswith("skipped: profile 3.12: ") for c in report.checks)


def test_host_runs_take_turns(tmp_path, monkeypatch):
    """A scenario holds the host lock while it runs there, so a second validate run (another
    terminal, another test worker) cannot add its pages to this one's system-wide deltas."""
    import fcntl
    monkeypatch.setattr(V, "HOST_LOCK", str(tmp_path / "host.lock"))
    with V.host_turn():
        with open(V.HOST_LOCK, "a") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(V.HOST_LOCK, "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)     # free again


@pytest.mark.parametrize("noise, runs, result", [([0], 1, "match"), ([2048, 0, 0], 3, "match"),
                                                 ([-2048, 0, 2048], 3, "match"),
                                                 ([2048, -2048, 2048], 3, "MISMATCH")])
def test_system_wide_levels_take_the_median_of_three_runs(monkeypatch, noise, runs, result):
    host = _host(MADVISE)
    sc = _tmpfs("tmpfs-write")
    eng = V.engine_tmpfs(V.engine_config(host), sc.tmpfs)
    calls = []

    def noisy(tm):                 # another process's shmem huge pages come and go
        calls.append(tm)
        return {**eng, "ShmemHugePages": eng["ShmemHugePages"] + noise[len(calls) - 1]}
    monkeypatch.setattr(V, "run_host_tmpfs", noisy)
    report = V.run(host, scenarios=(sc,), oom=False, file=False)
    c = next(c for c in report.checks if c.observable == "meminfo ShmemHugePages delta")
    assert len(calls) == runs and c.result == result
    assert c.host == eng["ShmemHugePages"] + sorted(noise)[(len(noise) - 1) // 2]
    assert all(x.result == "match" for x in report.checks if x is not c)


@needs_host
def test_host_child_reports_an_unsupported_prctl():
    r = V.run_host_region(V.Region(8 * MiB, V.MADV_HUGEPAGE, prctl=(1, 1 << 4)))   # no such flag
    assert r == {"skip": "prctl PR_SET_THP_DISABLE unsupported (Invalid argument)"}


def _mounted(where: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == where for line in f)


@needs_tmpfs
def test_host_tmpfs_child_skips_a_huge_option_the_kernel_rejects():
    r = V.run_host_tmpfs(V.Tmpfs("sometimes", (("write", 0, 4096),)))
    assert r == {"skip": "tmpfs rejects huge=sometimes (Invalid argument): no shmem THP"}


@needs_tmpfs
@pytest.mark.parametrize("unshare", [True, False])
def test_host_tmpfs_is_unmounted_even_on_error(unshare, monkeypatch):
    dirs = []
    real_run = subprocess.run

    def run(cmd, **kw):
        dirs.append(json.loads(cmd[-1])["dir"])
        return real_run(cmd, **kw)
    monkeypatch.setattr(V.subprocess, "run", run)
    bad = V.Tmpfs("always", (("write", 0, 4096), ("punch", 0, 4096)))
    with pytest.raises(RuntimeError, match="unknown tmpfs step 'punch'"):
        V.run_host_tmpfs(bad, unshare=unshare)
    ok = V.run_host_tmpfs(V.Tmpfs("always", (("write", 0, 4096),)), unshare=unshare)
    assert ok["used"] == 2048 and ok["thp_file_alloc"] >= 1
    assert len(dirs) == 2
    for d in dirs:
        assert not os.path.exists(d) and not _mounted(d)


@needs_tmpfs
def test_host_tmpfs_left_mounted_by_a_killed_child_is_unmounted(monkeypatch):
    """A child that died with its tmpfs mounted in the host's namespace (no private one)."""
    where = []
    real_run = subprocess.run

    def killed(cmd, **kw):
        d = json.loads(cmd[-1])["dir"]
        where.append(d)
        real_run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d], check=True)
        assert _mounted(d)
        return subprocess.CompletedProcess(cmd, -9, "", "")
    monkeypatch.setattr(V.subprocess, "run", killed)
    with pytest.raises(RuntimeError, match="exit -9"):
        V.run_host_tmpfs(_tmpfs("tmpfs-write").tmpfs, unshare=False)
    assert not _mounted(where[0]) and not os.path.exists(where[0])


# ---- the host side, on this host -----------------------------------------------------------------

def _expected_rows() -> list[tuple[str, str, list]]:
    """Every row the check prints, with the marks its test needs on a host lacking something."""
    rows = []
    for s in V.SCENARIOS:
        for ob in s.observables:
            marks = [needs_thp if s.needs_thp else needs_host] + ([needs_pfns] if ob.needs_pfns else [])
            if s.region.max_ptes_none is not None:
                marks = marks + [needs_underused]
            rows.append((s.name, ob.label, marks))
    for s in V.TMPFS_SCENARIOS:
        rows += [(s.name, ob.label, [needs_tmpfs]) for ob in s.observables]
    rows.append((V.FILE_SCENARIO, "read_ahead_kb of the device", [needs_block_dir]))
    rows += [(V.FILE_SCENARIO, f"pages cached after a fault on {where}", [needs_block_dir])
             for where in V.FILE_FAULTS]
    rows.append((V.FILE_SCENARIO, "smaps Rss after the first fault", [needs_block_dir]))
    rows += [(V.FILE_SCENARIO, f"vmstat {key} delta", [needs_block_dir, needs_mlock])
             for key in V.MLOCK_KEYS]
    rows += [(V.FOLIO_SCENARIO, V.folio_label(case), [needs_ext4_dir, needs_pfns])
             for case, _ in V.FOLIO_CASES]
    rows.append((V.FOLIO_SCENARIO, V.FOLIO_PMD, [needs_ext4_dir, needs_pfns]))
    for name, length, adj in V.OOM_CHILDREN:
        marks = [needs_host] + ([needs_sys_resource] if adj < 0 else [])
        rows += [("oom-score", label, marks) for label in V.oom_labels(name, length, adj)]
    rows.append(("oom-score", V.OOM_ORDER, [needs_host]))
    return rows


def _row_params():
    for scenario, observable, marks in _expected_rows():
        known = KNOWN_MISMATCHES.get((scenario, observable))
        if known:
            marks = marks + [pytest.mark.xfail(strict=True, reason=known)]
        yield pytest.param(scenario, observable, marks=marks, id=f"{scenario}/{observable}")


@pytest.fixture(scope="module")
def host_report():
    return V.run()


def test_the_report_has_every_row_once(host_report):
    keys = [(c.scenario, c.observable) for c in host_report.checks]
    assert keys == [(s, o) for s, o, _ in _expected_rows()]


@pytest.mark.parametrize("scenario, observable", list(_row_params()))
def test_host_matches_engine(host_report, scenario, observable):
    c = next(c for c in host_report.checks if (c.scenario, c.observable) == (scenario, observable))
    assert c.skipped is None, c.result
    assert c.host is not None and c.engine is not None
    assert c.matches, f"{scenario} {observable}: host {c.host}, engine {c.engine} ({c.tolerance})"


@needs_thp
def test_engine_file_scenario_follows_the_windows():
    """The engine's side of the file group with read_ahead_kb 128: read-around [0, 32), then a
    window per mark; the first window mlocked and munlocked."""
    got = V.engine_file(Config(kernel="6.18"), 128)
    assert [got[f"cached{k}"] for k in range(len(V.FILE_FAULTS))] == [32, 64, 96, 96, 128]
    assert V.file_faults(32) == (5, 24, 32, 40, 64)
    assert got["Rss"] == 64
    assert [got[k] for k in V.MLOCK_KEYS] == [32, 32, 32, 32]


@needs_block_dir
def test_host_file_scenario_reads_the_device_and_evicts_the_file():
    got = V.run_host_file()
    assert got["read_ahead_kb"] == _RA_KB
    ra = _RA_KB // 4
    assert got["cached0"] >= min(ra, 5 + 1)              # at least the faulted page and before it


@needs_host
def test_cachestat_counts_a_files_cached_and_evicted_pages(tmp_path):
    """cachestat(2) through the child's libc: 5 pages written are cached and dirty; written
    back and dropped by POSIX_FADV_DONTNEED (no shadow entries: not evicted), none are left."""
    libc = V._Libc()
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.pwrite(fd, b"\1" * (5 * V.PAGE), 0)
        cs = libc.cachestat(fd, 0, 8 * V.PAGE)
        if cs is None:
            pytest.skip("the kernel has no cachestat (before 6.5)")
        assert cs["nr_cache"] == 5 and cs["nr_dirty"] + cs["nr_writeback"] == 5
        assert libc.cachestat(fd, 2 * V.PAGE, V.PAGE)["nr_cache"] == 1
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        cs = libc.cachestat(fd, 0, 8 * V.PAGE)
        assert (cs["nr_cache"], cs["nr_dirty"], cs["nr_evicted"]) == (0, 0, 0)
    finally:
        os.close(fd)
    with pytest.raises(OSError, match="cachestat"):
        libc.cachestat(fd, 0, V.PAGE)                      # closed: EBADF, not "no cachestat"


@pytest.mark.parametrize("evicted, runs", [([0], 1), ([3, 0], 2), ([5, 5, 5, 5, 5], V.FILE_RUNS)])
def test_host_file_runs_again_while_pages_are_evicted(monkeypatch, evicted, runs):
    """A run that saw the file's pages evicted (a host's proactive reclaim) is run again, up to
    FILE_RUNS times; the last run's figures are reported, with its number."""
    left = list(evicted)
    calls = []

    def one_run(libc, directory, ra_kb):
        calls.append(ra_kb)
        return {"cached0": 100 + len(calls), "evicted": left.pop(0)}
    monkeypatch.setattr(V, "_read_ahead_kb", lambda path, name="read_ahead_kb": (128, ""))
    monkeypatch.setattr(V, "_host_file_run", one_run)
    monkeypatch.setattr(V, "_Libc", lambda: None)
    got = V.host_file({"dir": "/nowhere"})
    assert calls == [128] * runs
    assert got["runs"] == runs and got["cached0"] == 100 + runs
    assert got["evicted"] == evicted[runs - 1]


@needs_thp
def test_host_values_are_the_kernels(host_report):
    """What the kernel showed, independently of the engine: a THP per 2 MiB under MADV_HUGEPAGE,
    none under MADV_NOHUGEPAGE, nothing resident for reads."""
    got = {(c.scenario, c.observable): c.host for c in host_report.checks}
    assert got[("madv-hugepage", "smaps AnonHugePages")] == 8 << 10
    assert got[("madv-nohugepage", "smaps AnonHugePages")] == 0
    assert got[("read-zero", "smaps Rss")] == 0
    assert got[("pte-growth", "smaps Rss")] == 16 * 4
    if _RELEASE >= (6, 1):                      # MADV_COLLAPSE; the anon_vma test
        assert got[("collapse-anon-vma", "MADV_COLLAPSE result, pages only read")] == -22
        assert got[("collapse-anon-vma", "MADV_COLLAPSE result after one write")] == 0
        assert got[("collapse-anon-vma", "smaps AnonHugePages")] == 2048


def test_engine_collapse_scenario_per_profile():
    """The engine side of collapse-anon-vma: 6.18 refuses the region only read (no anon_vma)
    and collapses it after one write; a profile without MADV_COLLAPSE refuses both."""
    region = _scenario("collapse-anon-vma").region
    new = V.engine_region(V.engine_config(_host(MADVISE)), region)
    assert (new["collapse_first"], new["collapse_after_write"], new["AnonHugePages"]) == (-22, 0, 2048)
    old = V.engine_region(V.engine_config(_host(MADVISE, release="5.4.0")), region)
    assert (old["collapse_first"], old["collapse_after_write"], old["AnonHugePages"]) == (-22, -22, 0)


@needs_tmpfs
def test_host_tmpfs_values_are_the_kernels(host_report):
    """What a 6.18 kernel showed, independently of the engine (per process or per mount: exact)."""
    if not platform.release().startswith("6.18"):
        pytest.skip(f"values of a 6.18 kernel; this host runs {platform.release()}")
    got = {(c.scenario, c.observable): c.host for c in host_report.checks}
    assert got[("tmpfs-write", "statfs used")] == 6144
    assert got[("tmpfs-map-shared", "smaps ShmemPmdMapped")] == 4096
    assert got[("tmpfs-map-offset", "smaps ShmemPmdMapped")] == 0
    assert got[("tmpfs-private-write", "smaps ShmemPmdMapped (after the reads)")] == 2048
    assert got[("tmpfs-private-write", "smaps Anonymous")] == 4
    assert got[("tmpfs-truncate", "statfs used")] == 3072
    assert got[("tmpfs-within-size", "statfs used (after 1 MiB)")] == 1024
    assert got[("tmpfs-collapse", "madvise MADV_COLLAPSE result")] == 0
    assert got[("tmpfs-collapse", "smaps ShmemPmdMapped")] == 2048


@needs_ext4_dir
@needs_pfns
def test_host_folio_values_are_the_kernels(host_report):
    """What a 6.16+ ext4 showed: a write's folios take the largest order its length and the
    index's alignment allow (``fgf_set_order``, ``__filemap_get_folio``), up to PMD size, and a
    read fault maps a PMD-sized aligned folio by its PMD; single-page writes make 4 KiB folios."""
    if _RELEASE < (6, 16):
        pytest.skip(f"ext4 large folios came in 6.16; this host runs {platform.release()}")
    got = {c.observable: c.host for c in host_report.checks if c.scenario == V.FOLIO_SCENARIO}
    cases = [case for case, _ in V.FOLIO_CASES]
    assert got[V.folio_label(cases[0])] == "1 4 8 16 32x2 4 2 1"
    assert got[V.folio_label(cases[1])] == "512x2"
    assert got[V.folio_label(cases[2])] == "1x64"
    assert got[V.FOLIO_PMD] == 4096


def test_oom_order_counts_scores_within_one_as_ties():
    pairs = [("a", 666), ("b", 667), ("c", 1000), ("d", 834), ("e", 10)]
    assert V._ordering(pairs) == "c > d > b > a > e"
    assert V._ordering(pairs, 1) == "c > d > a = b > e"
    assert V._ordering([("x", 5), ("y", 4), ("z", 3)], 1) == "x = y = z"   # chained
    c = V.Check("oom-score", "oom_score (a)", "", 666, 667, V.OOM_SCORE_TOL)
    assert c.matches and not V.Check("oom-score", "s", "", 665, 667, V.OOM_SCORE_TOL).matches


def test_runs_text_folds_repeats():
    assert V.runs_text([1, 4, 8, 16, 32, 32, 4, 2, 1]) == "1 4 8 16 32x2 4 2 1"
    assert V.runs_text([512, 512]) == "512x2" and V.runs_text([1] * 64) == "1x64"
    assert V.runs_text([]) == "" and V.runs_text([0, 0, 3]) == "0x2 3"


def test_engine_folio_scenario_reads_its_own_pagemap():
    """The engine side of the folio group, from the engine's pagemap and kpageflags: the host's
    folio sizes (its ext4 on 6.18 makes large folios on write), and a read fault maps the 4 MiB
    file's PMD-sized folios by PMD; on 4.13 every written page is a folio of its own."""
    cases = [case for case, _ in V.FOLIO_CASES]
    got = V.engine_folios(V.engine_config(_host(MADVISE)))
    assert got == {cases[0]: "1 4 8 16 32x2 4 2 1", cases[1]: "512x2", V.FOLIO_PMD: 4096,
                   cases[2]: "1x64"}
    old = V.engine_folios(V.engine_config(_host(MADVISE, release="4.13.0")))
    assert old == {cases[0]: "1x100", cases[1]: "1x1024", V.FOLIO_PMD: 0, cases[2]: "1x64"}


@needs_host
def test_host_folio_child_skips_a_directory_not_on_ext4(tmp_path):
    kind = V._fs_type(str(tmp_path))
    if kind == "ext4":
        pytest.skip("the temporary directory is on ext4 here")
    assert V.run_host_folios(str(tmp_path)) == {"skip": f"{tmp_path} is on {kind}, not ext4"}


def test_fs_type_reads_the_longest_mount_point(monkeypatch, tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                    "30 22 0:5 / /var/tmp rw - tmpfs tmpfs rw\n"
                    "31 22 0:6 / /var/tmpx rw - xfs /dev/sdb rw\n")
    real_open = open

    def fake_open(path, *a, **kw):
        return real_open(info if path == "/proc/self/mountinfo" else path, *a, **kw)
    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(V.os.path, "realpath", lambda p: p)
    assert V._fs_type("/var/tmp/x") == "tmpfs"
    assert V._fs_type("/var/tmpx") == "xfs"
    assert V._fs_type("/home") == "ext4"


# ---- the command line -------------------------------------------------------------------------

def cli_run(args: list[str]) -> tuple[int, str, str]:
    """``cli.main`` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def test_cli_validate_runs_the_host_check_and_writes_json(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mmcore", "validate", "--json", "checks.json"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    d = json.loads((tmp_path / "checks.json").read_text())
    assert r.returncode == (0 if d["summary"]["ok"] else 1), r.stderr
    assert "host fidelity check" in r.stdout and "tolerance" in r.stdout
    assert f"{d['summary']['checks']} checks: {d['summary']['match']} match" in r.stdout
    assert len(d["checks"]) == len(_expected_rows())
    assert {c["result"] for c in d["checks"]} <= {"match", "skipped", "mismatch"}
    assert d["summary"]["mismatch"] == sum(c["result"] == "mismatch" for c in d["checks"])
    assert d["engine"]["kernel"] == V.closest_profile(platform.release())


def test_cli_validate_markdown_and_plain(host_report, monkeypatch):
    monkeypatch.setattr(V, "run", lambda: host_report)
    code, out, _ = cli_run(["validate", "--markdown"])
    assert code == (0 if host_report.ok else 1)
    assert "| scenario | observable | unit | host | engine | tolerance | result |" in out
    assert out.count("\n| ") == len(host_report.checks) + 1
    code, out, _ = cli_run(["validate", "--host"])
    assert "| scenario" not in out and out.count("madv-hugepage ") >= 5


def test_cli_validate_exits_1_on_a_mismatch(host_report, monkeypatch):
    bad = V.Report(host_report.host, host_report.engine,
                   [V.Check("madv-hugepage", "smaps AnonHugePages", "kB", 4096, 8192)],
                   {"madv-hugepage": "x"})
    monkeypatch.setattr(V, "run", lambda: bad)
    code, out, err = cli_run(["validate"])
    assert code == cli.EXIT_MISMATCH == 1
    assert "MISMATCH" in out and "differ" in err


def test_cli_validate_file_form_still_checks_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "run", _no_host)
    code, out, _ = cli_run(["validate", str(DATA / "thp_mixed.toml"), "--set", "reads=10"])
    assert code == 0 and "ok: scenario thp_mixed" in out
    for args, words in ((["validate", "--host", str(DATA / "thp_mixed.toml")], "no scenario file"),
                        (["validate", str(DATA / "thp_mixed.toml"), "--markdown"], "host check"),
                        (["validate", str(DATA / "thp_mixed.toml"), "--json", "x.json"], "host check"),
                        (["validate", "--set", "reads=10"], "scenario file"),
                        (["validate", "--json", str(tmp_path / "no" / "x.json")], "does not exist")):
        code, _, err = cli_run(args)
        assert code == 2 and words in err, (args, err)
