"""The README's Python examples run as written."""
import re
from pathlib import Path


def test_readme_python_examples_run(capsys):
    text = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    ns: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), ns)   # noqa: S102 - our own documentation
    out = capsys.readouterr().out.split()
    assert out[0] == "65536"                         # AnonHugePages of the 64 MiB region
    assert ns["res"][0].tolist() == [0, 0, 0]
    # the huge-pages example: khugepaged turned every sparse range down, MADV_COLLAPSE did not
    m, t, a = ns["m"], ns["t"], ns["a"]
    assert t.smaps(a)["AnonHugePages"] == 64 << 10
    assert m.khugepaged()["pages_collapsed"] == 0 and m.khugepaged()["full_scans"] >= 1
    assert m.vmstat()["thp_scan_exceed_none_pte"] >= 32
    assert m.vmstat()["thp_collapse_alloc"] == 32
    # the huge page cache example: 64 MiB of tmpfs mapped by 32 PMDs
    shm, app, addr = ns["shm"], ns["app"], ns["addr"]
    assert app.smaps(addr)["ShmemPmdMapped"] == 64 << 10
    assert shm.vmstat()["thp_file_mapped"] == 32 and shm.meminfo()["ShmemHugePages"] == 64 << 10
    assert app.counters()["min_flt"] == 32
    # the swap example: every page written is resident or in swap, and nothing was killed
    hog, sw = ns["hog"], ns["sw"]
    assert hog.status()["RssAnon"] + hog.status()["VmSwap"] == 96 << 10
    assert hog.status()["VmSwap"] >= 32 << 10 and sw.vmstat()["oom_kill"] == 0
    # the memory cgroup example: the bigger task of the cgroup died, the fault went on
    job, box = ns["job"], ns["box"]
    assert job.events()["oom_kill"] == 1 and [p.comm for p in box.tasks()] == ["init", "worker"]
    assert job.current == 16 << 20
