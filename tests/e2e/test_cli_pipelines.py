"""`darkroom pipeline …` as a user's shell runs it: a YAML file, launch --follow, show, re-run."""

from __future__ import annotations

from tests.e2e.test_cli_jobs import _version

PIPELINE = """
name: stats
steps:
  - name: first
    processing: dataset-stats
    parameters: {page_size: 1}
  - name: second
    processing: {second}
    input: first
"""
BROKEN = "def run(ctx):\n    raise RuntimeError('second is broken')\n"
FIXED = "def run(ctx):\n    ctx.log.info('second is fine')\n"


def test_create_launch_follow_fail_fix_rerun(cli, tmp_path):
    v = _version(cli, tmp_path)
    code = tmp_path / "second.py"
    code.write_text(BROKEN)
    assert cli("processing", "create", "second", "--code", str(code)).code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(PIPELINE.replace("{second}", "missing"))
    refused = cli("pipeline", "create", "-f", str(bad))
    assert refused.code == 1
    assert "step 'second': no processing 'missing'" in refused.err
    good = tmp_path / "pipeline.yaml"
    good.write_text(PIPELINE.replace("{second}", "second"))
    made = cli("pipeline", "create", "-f", str(good))
    assert made.code == 0, made.err
    assert "pipeline stats revision 1" in made.out

    r = cli("pipeline", "launch", "stats", "--version", str(v["id"]), "--follow")
    assert r.code == 1, r.err
    assert "first: succeeded" in r.out
    assert "second: failed" in r.out
    [run] = cli("pipeline", "runs", "stats", "--json").json()
    assert run["status"] == "failed"

    code.write_text(FIXED)
    assert cli("processing", "update", "second", "--code", str(code)).code == 0
    again = cli("pipeline", "rerun", str(run["id"]), "--follow")
    assert again.code == 0, again.out + again.err
    shown = cli("pipeline", "show", str(run["id"]), "--json").json()
    assert shown["status"] == "succeeded"
    assert [s["status"] for s in shown["steps"]] == ["succeeded", "succeeded"]
    assert "second" in cli("pipeline", "show", str(run["id"])).out
