"""The Python snippets of the README and docs/ type-check under `mypy --strict` and run."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def snippets() -> list[str]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found += re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
    return found


def test_the_docs_python_snippets_type_check_and_run(tmp_path: Path) -> None:
    blocks = snippets()
    assert blocks, "the README shows Python"
    files = []
    for n, code in enumerate(blocks):
        f = tmp_path / f"snippet_{n}.py"
        f.write_text(code, encoding="utf-8")
        files.append(str(f))
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files], capture_output=True, text=True
    )
    assert typed.returncode == 0, typed.stdout
    for name in files:
        ran = subprocess.run([sys.executable, name], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, (name, ran.stderr[-2000:])
