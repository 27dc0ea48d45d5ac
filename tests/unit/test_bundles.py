"""Bundles without a server: manifest checks, archive safety, canonical packing, environments'
garbage collection."""

from __future__ import annotations

import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from darkroom.bundles import pack_dir, read_bundle, unpack
from darkroom.bundles.archive import Limits
from darkroom.bundles.environments import LAST_USED, READY, collect_garbage
from darkroom.bundles.manifest import parse_requirements
from darkroom.bundles.scaffold import scaffold
from darkroom.errors import InvalidInput, PayloadTooLarge

MANIFEST = b"name: demo\ntype: custom\nentrypoint: main:run\n"
MAIN = b"def run(ctx):\n    pass\n"


def tar_gz(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return raw.getvalue()


def zip_of(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            z.writestr(info, "/etc/passwd")
    return raw.getvalue()


def error_of(data: bytes, **limits: int) -> InvalidInput | PayloadTooLarge:
    with pytest.raises((InvalidInput, PayloadTooLarge)) as info:
        read_bundle(data, Limits(**limits) if limits else None)
    return info.value


def test_a_valid_bundle_reads_the_same_from_zip_and_tar():
    files = {"darkroom.yaml": MANIFEST, "main.py": MAIN, "lib/util.py": b"X = 1\n"}
    a, b = read_bundle(tar_gz(files)), read_bundle(zip_of(files))
    assert a.manifest.name == "demo"
    assert a.manifest.entrypoint == "main:run"
    assert a.sha256 == b.sha256  # canonical: same files, same bytes
    prefixed = read_bundle(zip_of({f"demo/{k}": v for k, v in files.items()}))
    assert prefixed.sha256 == a.sha256  # an archive of the folder itself


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"../evil.py": b"x", "darkroom.yaml": MANIFEST, "main.py": MAIN}, "escapes"),
        ({"/etc/cron.d/x": b"x", "darkroom.yaml": MANIFEST, "main.py": MAIN}, "escapes"),
        ({"a/../../x": b"x", "darkroom.yaml": MANIFEST, "main.py": MAIN}, "escapes"),
        ({"main.py": MAIN}, "no darkroom.yaml"),
        ({"darkroom.yaml": b"name: [unclosed\n", "main.py": MAIN}, "darkroom.yaml line"),
        ({"darkroom.yaml": b"- a list\n"}, "must be a mapping"),
        ({"darkroom.yaml": MANIFEST + b"colour: red\n", "main.py": MAIN}, "unknown key 'colour'"),
        ({"darkroom.yaml": b"name: demo\nentrypoint: main:run\n", "main.py": MAIN},
         "'type' is required"),
        ({"darkroom.yaml": b"name: demo\ntype: magic\nentrypoint: main:run\n", "main.py": MAIN},
         "type must be one of"),
        ({"darkroom.yaml": MANIFEST}, "entrypoint module 'main' not found"),
        ({"darkroom.yaml": b"name: demo\ntype: custom\n", "main.py": MAIN},
         "'entrypoint' is required"),
        ({"darkroom.yaml": MANIFEST, "main.py": b"def other(ctx): pass\n"},
         "defines no function 'run'"),
        ({"darkroom.yaml": MANIFEST, "main.py": b"def run(ctx):\n  return (\n"}, "main.py line"),
        ({"darkroom.yaml": MANIFEST.replace(b"main:run", b"go.py")}, "script 'go.py' is not in"),
        ({"darkroom.yaml": MANIFEST.replace(b"main:run", b"main")}, "or a script"),
        ({"darkroom.yaml": MANIFEST + b"parameters: {type: object, properties: {n: {type: "
          b"integer, default: x}}}\n", "main.py": MAIN}, "defaults do not validate"),
        ({"darkroom.yaml": MANIFEST + b"parameters: {type: nonsense}\n", "main.py": MAIN},
         "not a valid JSON Schema"),
        ({"darkroom.yaml": MANIFEST + b"requirements: reqs.txt\n", "main.py": MAIN},
         "'reqs.txt' is not in the bundle"),
        ({"darkroom.yaml": MANIFEST, "main.py": MAIN, "requirements.txt": b"numpy>=1\n"},
         "requirements.txt line 1: 'numpy>=1' is not pinned"),
        ({"darkroom.yaml": MANIFEST, "main.py": MAIN, "requirements.txt": b"\nnot a req!!\n"},
         "requirements.txt line 2: cannot parse"),
        ({"darkroom.yaml": MANIFEST, "main.py": MAIN,
          "requirements.txt": b"--index-url http://evil/\n"}, "options such as '--index-url'"),
        ({"darkroom.yaml": MANIFEST, "main.py": MAIN,
          "requirements.txt": b"pkg @ https://x/pkg.whl\n"}, "URLs are not allowed"),
    ],
)  # fmt: skip
def test_bad_bundles_are_refused_with_a_precise_error(entries, message):
    error = error_of(tar_gz(entries))
    assert message in error.message
    assert error_of(zip_of(entries)).message == error.message


def test_links_devices_and_bombs_are_refused():
    files = {"darkroom.yaml": MANIFEST, "main.py": MAIN}
    assert "link" in error_of(tar_gz(files, links={"data": "/etc/passwd"})).message
    assert "symbolic link" in error_of(zip_of(files, symlink="data")).message
    too_big = error_of(tar_gz(files), max_bytes=10)
    assert isinstance(too_big, PayloadTooLarge)
    assert "limit is 10" in too_big.message
    bomb = tar_gz({**files, "zeros.bin": bytes(5_000_000)})
    assert len(bomb) < 100_000
    assert "expands to more than" in error_of(bomb, max_unpacked_bytes=1_000_000).message
    many = tar_gz({**files, **{f"f{i}.txt": b"" for i in range(20)}})
    assert "more than 10 files" in error_of(many, max_files=10).message
    assert "not a readable" in error_of(b"definitely not an archive").message


def test_a_corrupt_entry_is_a_bad_archive_not_a_crash():
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("darkroom.yaml", MANIFEST)
        z.writestr("main.py", MAIN * 50)
    data = bytearray(raw.getvalue())
    at = data.find(b"main.py") + 20  # inside main.py's compressed bytes
    data[at : at + 10] = b"\xff" * 10
    error = error_of(bytes(data))
    assert isinstance(error, InvalidInput)
    assert error.code == "bad_archive"


def test_pinned_requirements_are_normalized():
    text = "# tools\nSix==1.16.0  # comment\nrequests[socks]==2.32.3 ; python_version > '3'\n"
    assert parse_requirements(text) == [
        'requests[socks]==2.32.3; python_version > "3"',
        "Six==1.16.0",
    ]


def test_pack_dir_skips_caches_refuses_links_and_is_deterministic(tmp_path):
    folder = scaffold("boxer", "pre_annotation", tmp_path)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"junk")
    first = pack_dir(folder)
    assert sorted(first.files) == ["README.md", "darkroom.yaml", "main.py", "requirements.txt",
                                   "tests/test_main.py"]  # fmt: skip
    assert first.manifest.type == "pre_annotation"
    os.utime(folder / "main.py", (0, 0))
    assert pack_dir(folder).sha256 == first.sha256
    (folder / "main.py").write_text((folder / "main.py").read_text() + "\n# changed\n")
    assert pack_dir(folder).sha256 != first.sha256
    (folder / "secret").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="symbolic link"):
        pack_dir(folder)
    with pytest.raises(InvalidInput, match=r"has no darkroom\.yaml"):
        pack_dir(tmp_path)


def test_unpack_is_read_only(tmp_path):
    bundle = read_bundle(tar_gz({"darkroom.yaml": MANIFEST, "main.py": MAIN, "pkg/a.py": b""}))
    unpack(bundle, tmp_path / "b")
    assert (tmp_path / "b" / "main.py").read_bytes() == MAIN
    assert not os.access(tmp_path / "b" / "main.py", os.W_OK) or os.geteuid() == 0
    assert (tmp_path / "b" / "pkg").stat().st_mode & 0o777 == 0o555
    assert (tmp_path / "b" / "main.py").stat().st_mode & 0o777 == 0o444


def _env(root: Path, name: str, used: float, size: int) -> None:
    path = root / name
    path.mkdir(parents=True)
    (path / READY).touch()
    (path / "blob").write_bytes(bytes(size))
    (path / LAST_USED).touch()
    os.utime(path / LAST_USED, (used, used))


def test_environment_gc_by_age_then_size(tmp_path):
    now = time.time()
    _env(tmp_path, "old", now - 40 * 86400, 10)
    _env(tmp_path, "lru", now - 5 * 86400, 1000)
    _env(tmp_path, "recent", now - 3600, 1000)
    _env(tmp_path, "fresh", now, 1000)
    (tmp_path / "half-built.building-1").mkdir()  # no .ready: not an environment yet
    (tmp_path / "killed.building-2").mkdir()  # a build killed two days ago
    os.utime(tmp_path / "killed.building-2", (now - 2 * 86400, now - 2 * 86400))
    removed = collect_garbage(tmp_path, keep="fresh", max_age_s=30 * 86400, max_bytes=2500,
                              now=now)  # fmt: skip
    assert removed == ["old", "lru"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "fresh", "half-built.building-1", "recent",
    ]  # fmt: skip


def test_a_cancelled_environment_build_is_removed_at_once(tmp_path):
    import threading

    from darkroom.bundles.environments import BuildCancelled, ensure_environment

    cancelled = threading.Event()
    lines: list[str] = []

    def output(line: str) -> None:
        lines.append(line)
        cancelled.set()  # cancel as soon as pip says anything

    threading.Timer(0.5, cancelled.set).start()  # or while the venv is being created
    with pytest.raises(BuildCancelled):
        ensure_environment(tmp_path / "envs", ["six==1.16.0"], output, cancelled)
    assert [p.name for p in (tmp_path / "envs").iterdir() if ".building-" in p.name] == []
