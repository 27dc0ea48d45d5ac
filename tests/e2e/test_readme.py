"""The README's "Writing a custom processing" section, followed verbatim against a server."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.helpers import image_bytes

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    return text[text.index("## Writing a custom processing") :].split("\n## ", 1)[0]


def test_custom_processing_section_works_as_written(cli, tmp_path):
    section = _section()
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
