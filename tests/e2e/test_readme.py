"""The README's "Write your own processing" section, followed verbatim against a server."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.helpers import image_bytes, rendered_page

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(heading: str) -> str:
    text = README.read_text()
    return text[text.index(heading) :].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_single_file_processing_works_as_written(cli, tmp_path):
    section = _section("### A single file")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    schema = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    commands = re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()
    (tmp_path / "count.py").write_text(code)
    (tmp_path / "schema.json").write_text(schema)

    ds = cli("dataset", "create", "readme", "--json").json()
    v = cli("version", "create", str(ds["id"]), "v1", "--json").json()
    assert v["id"] == 1  # the README launches on version 1
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(image_bytes(seed=i))
    cli("asset", "upload", "1", str(tmp_path))

    outputs = []
    for line in commands:
        args = shlex.split(line)
        assert args[0] == "darkroom"
        args = [str(tmp_path / a) if a in ("count.py", "schema.json") else a for a in args[1:]]
        r = cli(*args)
        assert r.code == 0, f"{line}\n{r.out}\n{r.err}"
        outputs.append(r.out)
    assert "3 images in version v1" in outputs[-1]


def test_bundle_section_works_as_written(cli, server, tmp_path):
    """init, the example's own test, run-local, push, launch; then fix, push, re-run."""
    section = _section("## Write your own processing")
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    first, fix = (block.strip().splitlines() for block in blocks[:2])
    ds = cli("dataset", "create", "readme", "--json").json()
    v = cli("version", "create", str(ds["id"]), "v1", "--json").json()
    assert v["id"] == 1
    assert cli("label", "add", "1", "Text").code == 0
    (tmp_path / "page.png").write_bytes(rendered_page(seed=1)[0])
    cli("asset", "upload", "1", str(tmp_path / "page.png"))

    def run(line: str) -> str:
        args = shlex.split(line)
        if args[0] == "python":
            proc = subprocess.run([sys.executable, *args[1:]], cwd=tmp_path, capture_output=True,
                                  text=True, env=server.env)  # fmt: skip
            assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
            return proc.stdout
        assert args[0] == "darkroom"
        r = cli(*args[1:], cwd=tmp_path)
        assert r.code == 0, f"{line}\n{r.out}\n{r.err}"
        return r.out

    outputs = [run(line) for line in first]
    assert "3 passed" in outputs[1]
    assert "1 of 1 images boxed as Text" in outputs[2]  # run-local
    assert "revision 2 pushed" in outputs[3]  # after development revision 1
    assert "1 of 1 images boxed as Text" in outputs[4]
    main = tmp_path / "boxer" / "main.py"
    main.write_text(main.read_text().replace('"%d of %d images boxed', '"fixed: %d of %d boxed'))
    outputs = [run(line) for line in fix]
    assert "revision 3 pushed" in outputs[0]
    assert "fixed: 1 of 1 boxed as Text" in outputs[1]
    job = cli("job", "show", "2", "--json").json()
    assert [(r["revision"], r["status"]) for r in job["runs"]] == [
        (2, "succeeded"), (3, "succeeded"),
    ]  # fmt: skip
