"""Bundles end to end through the CLI against a real server and engine: init -> push ->
launch; a failure fixed by a push and a re-run; requirements installed once and reused; pip's
error as the run's failure; the edit-run loop of run-local; a bundle's token cannot read
another organization's data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darkroom.client import ApiError, Client
from darkroom.db.engine import make_engine, make_session_factory, session_scope
from darkroom.domain import accounts
from tests.helpers import rendered_page
from tests.servers import Server

BROKEN = """
def run(ctx):
    rows = {"a": 1}
    ctx.log.info("looking up the column")
    return rows["missing column"]
"""
FIXED = """
def run(ctx):
    ctx.log.info("fixed: %d assets", ctx.stats().assets)
"""
USES_SIX = """
import six

def run(ctx):
    ctx.log.info("six %s from %s", six.__version__, six.__file__)
"""
SNOOP = """
from darkroom.client import ApiError

def run(ctx):
    for what, call in [("dataset", lambda: ctx._client.get_dataset({dataset})),
                       ("version", lambda: ctx._client.get_version({version}))]:
        try:
            call()
            print(f"READ {{what}}", flush=True)
        except ApiError as exc:
            print(f"BLOCKED {{what}} {{exc.status}}", flush=True)
"""


def bundle(root: Path, name: str, code: str, requirements: str = "") -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "darkroom.yaml").write_text(
        f"name: {name}\ntype: custom\nentrypoint: main:run\ntimeout: 300\n"
    )
    (folder / "main.py").write_text(code)
    if requirements:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def version_with_pages(server: Server, n: int = 2) -> dict:
    with Client(server.url, server.token) as dr:
        ds = dr.create_dataset("papers")
        v = dr.create_version(ds["id"], "v1")
        dr.create_label(v["id"], "Text")
        dr.upload_assets(v["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(n)])
        return v


def test_init_push_launch_succeeds(cli, server, tmp_path):
    v = version_with_pages(server)
    r = cli("processing", "init", "boxer", "--type", "pre_annotation", "--dir", str(tmp_path))
    assert r.code == 0, r.err
    folder = tmp_path / "boxer"
    own_test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(folder / "tests")], capture_output=True, text=True)  # fmt: skip
    assert own_test.returncode == 0, own_test.stdout + own_test.stderr
    assert "3 passed" in own_test.stdout
    r = cli("processing", "push", str(folder))
    assert r.code == 0, r.err
    assert "boxer: revision 1 pushed" in r.out
    assert "unchanged, still revision 1" in cli("processing", "push", str(folder)).out
    r = cli("job", "launch", "boxer", "--version", str(v["id"]), "--follow")
    assert r.code == 0, r.out + r.err
    assert "2 of 2 images boxed as Text" in r.out
    with Client(server.url, server.token) as dr:
        assets = dr.list_assets(v["id"])["items"]
        shapes = [s for a in assets for ann in dr.list_annotations(a["id"]) for s in ann["shapes"]]
    assert len(shapes) == 2
    assert all(s["kind"] == "rectangle" and s["label"] == "Text" for s in shapes)


def test_failure_fix_push_rerun_keeps_both_runs(cli, server, tmp_path):
    v = version_with_pages(server, 1)
    folder = bundle(tmp_path, "lookup", BROKEN)
    assert cli("processing", "push", str(folder)).code == 0
    r = cli("job", "launch", "lookup", "--version", str(v["id"]), "--follow")
    assert r.code == 1
    assert "KeyError: 'missing column'" in r.out
    assert 'main.py", line 5, in run' in r.out  # the bundle's own file in the traceback
    job_id = int(re.search(r"job (\d+)", r.out).group(1))
    (folder / "main.py").write_text(FIXED)
    assert "revision 2 pushed" in cli("processing", "push", str(folder)).out
    r = cli("job", "rerun", str(job_id), "--follow")
    assert r.code == 0, r.out + r.err
    assert "fixed: 1 assets" in r.out
    job = cli("job", "show", str(job_id), "--json").json()
    assert [(x["attempt"], x["revision"], x["status"]) for x in job["runs"]] == [
        (1, 1, "failed"), (2, 2, "succeeded"),
    ]  # fmt: skip
    assert "KeyError" in job["runs"][0]["error_summary"]
    table = cli("job", "show", str(job_id)).out
    assert "revision" in table


def test_requirements_install_once_and_pips_errors_fail_the_run(cli, server, tmp_path):
    v = version_with_pages(server, 1)
    folder = bundle(tmp_path, "needs-six", USES_SIX, "six==1.16.0\n")
    assert cli("processing", "push", str(folder)).code == 0
    first = cli("job", "launch", "needs-six", "--version", str(v["id"]), "--follow")
    assert first.code == 0, first.out + first.err
    assert "Successfully installed six-1.16.0" in first.out  # pip's output is in the log
    # the environment built in the cache, mounted read-only where the sandbox runs it
    assert "six 1.16.0 from /run/darkroom/env/lib/" in first.out
    second = cli("job", "launch", "needs-six", "--version", str(v["id"]), "--follow")
    assert second.code == 0
    assert "Successfully installed" not in second.out
    built = float(re.search(r"environment \w+ built in ([\d.]+) s", first.out).group(1))
    reused = float(re.search(r"environment \w+ reused in ([\d.]+) s", second.out).group(1))
    sys.stdout.write(f"\nenvironment start: first (build) {built:.2f} s, second {reused:.3f} s\n")
    assert reused < built

    broken = bundle(tmp_path, "needs-ghost", USES_SIX, "darkroom-no-such-package-x7q==0.0.1\n")
    assert cli("processing", "push", str(broken)).code == 0
    r = cli("job", "launch", "needs-ghost", "--version", str(v["id"]), "--follow")
    assert r.code == 1
    assert "No matching distribution found for darkroom-no-such-package-x7q" in r.out
    job = cli("job", "list", "--json").json()[-1]
    assert job["status"] == "failed"
    assert "EnvironmentBuildError" in job["runs"][-1]["error_summary"]


def test_a_script_entrypoint_runs_as_main(cli, server, tmp_path):
    v = version_with_pages(server, 1)
    folder = bundle(tmp_path, "scripted", "")
    (folder / "darkroom.yaml").write_text("name: scripted\ntype: custom\nentrypoint: go.py\n")
    (folder / "main.py").unlink()
    (folder / "go.py").write_text(
        "from darkroom.runtime import ProcessingContext\n\n"
        "if __name__ == '__main__':\n"
        "    ctx = ProcessingContext.from_env()\n"
        "    print('script on', ctx.input_version.name, flush=True)\n"
    )
    r = cli("processing", "run-local", str(folder), "--version", str(v["id"]))
    assert r.code == 0, r.out + r.err
    assert "script on v1" in r.out


def test_run_local_then_push(cli, server, tmp_path):
    v = version_with_pages(server, 1)
    folder = bundle(tmp_path, "wip", FIXED)
    r = cli("processing", "run-local", str(folder), "--version", str(v["id"]))
    assert r.code == 0, r.out + r.err
    assert "development revision 1" in r.out
    assert "fixed: 1 assets" in r.out
    (folder / "main.py").write_text(FIXED.replace("fixed", "edited"))
    r = cli("processing", "run-local", str(folder), "--version", str(v["id"]))
    assert "edited: 1 assets" in r.out
    assert cli("processing", "push", str(folder)).code == 0
    listed = cli("processing", "revisions", "wip", "--json").json()
    assert [(x["number"], x["is_dev"]) for x in listed] == [(1, True), (2, True), (3, False)]
    assert re.search(r"3\s+│\s+bundle\s+│\s+False", cli("processing", "revisions", "wip").out)
    r = cli("job", "launch", "wip", "--version", str(v["id"]), "--follow")
    assert "edited: 1 assets" in r.out
    assert cli("job", "list", "--json").json()[-1]["runs"][-1]["revision"] == 3


def test_a_bundles_token_cannot_read_another_organization(cli, server, tmp_path):
    v = version_with_pages(server, 1)
    engine = make_engine(f"sqlite:///{server.home / 'darkroom.db'}")
    with session_scope(make_session_factory(engine)) as session:
        org = accounts.create_organization(session, "rival")
        token = accounts.create_token(session, accounts.create_user(session, org, "eve"), "t")
    engine.dispose()
    with Client(server.url, token) as rival:
        theirs_ds = rival.create_dataset("secret")
        theirs_v = rival.create_version(theirs_ds["id"], "v1")
    folder = bundle(
        tmp_path, "snoop", SNOOP.format(dataset=theirs_ds["id"], version=theirs_v["id"])
    )
    assert cli("processing", "push", str(folder)).code == 0
    r = cli("job", "launch", "snoop", "--version", str(v["id"]), "--follow")
    assert r.code == 0, r.out
    assert re.search(r"BLOCKED dataset 40[34]", r.out)
    assert re.search(r"BLOCKED version 40[34]", r.out)
    assert "READ" not in r.out
    with Client(server.url, server.token) as dr, pytest.raises(ApiError):
        dr.get_dataset(theirs_ds["id"])


EVIL_SETUP = """
import os, sys
home, cache = {home!r}, {cache!r}
def attempt(name, fn):
    try:
        print("ATTEMPT", name, "succeeded", fn(), flush=True)
    except Exception as exc:
        print("ATTEMPT", name, "denied", type(exc).__name__, flush=True)
attempt("read_admin_token", lambda: open(os.path.join(home, "admin-token")).read())
attempt("plant_in_home", lambda: open(os.path.join(home, "planted.txt"), "w").write("x"))
attempt("plant_in_other_env",
        lambda: open(os.path.join(cache, "envs", "other-env", "planted.pth"), "w").write("x"))
sys.exit("evil build done")
"""


def test_a_bundles_requirement_builds_in_a_sandbox_too(tmp_path):
    """An sdist's setup.py runs during the environment build: it must not reach darkroom's
    home or other environments either."""
    import tarfile

    from tests.servers import start_server, stop_server
    from tests.unit.test_bundles import tar_gz

    home, cache, links = tmp_path / "home", tmp_path / "cache", tmp_path / "links"
    (cache / "envs" / "other-env").mkdir(parents=True)  # another bundle's environment
    links.mkdir()
    src = tmp_path / "evilpkg-1.0"
    src.mkdir()
    (src / "setup.py").write_text(EVIL_SETUP.format(home=str(home), cache=str(cache)))
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n")
    with tarfile.open(links / "evilpkg-1.0.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="evilpkg-1.0")
    env = {"DARKROOM_CACHE": str(cache),
           "PIP_FIND_LINKS": f"{links} {os.environ.get('PIP_FIND_LINKS', '')}".strip()}  # fmt: skip
    server = start_server(home, env)
    try:
        with Client(server.url, server.token) as dr:
            v = dr.create_version(dr.create_dataset("d")["id"], "v1")
            files = {"darkroom.yaml": b"name: evil\ntype: custom\nentrypoint: main:run\n",
                     "main.py": b"def run(ctx):\n    pass\n",
                     "requirements.txt": b"evilpkg==1.0\n"}  # fmt: skip
            dr.push_bundle(tar_gz(files))
            run_id = dr.launch_job("evil", v["id"])["runs"][0]["id"]
            deadline = time.monotonic() + 240
            while (run := dr.get_run(run_id))["finished_at"] is None:
                assert time.monotonic() < deadline
                time.sleep(0.5)
            log = "\n".join(x["text"] for x in dr.run_logs(run_id, limit=10000)["items"])
    finally:
        stop_server(server)
    assert run["status"] == "failed"
    attempts = dict(re.findall(r"ATTEMPT (\w+) (succeeded|denied)", log))
    assert attempts == {"read_admin_token": "denied", "plant_in_home": "denied",
                        "plant_in_other_env": "denied"}, log  # fmt: skip
    assert not (home / "planted.txt").exists()
    assert list(cache.rglob("planted*")) == []
