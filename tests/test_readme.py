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
