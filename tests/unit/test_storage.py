"""Blob store: content addressing, dedup, streaming limits, interrupted writes; local and S3."""

from __future__ import annotations

import hashlib
import io

import pytest

from darkroom.errors import PayloadTooLarge
from darkroom.storage import BlobStore


class Exploding(io.RawIOBase):
    """A stream that fails half-way, like a client disconnecting during an upload."""

    def __init__(self, good: bytes) -> None:
        self.good = good
        self.sent = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self.sent:
            self.sent = True
            return self.good
        raise ConnectionResetError("client went away")


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return BlobStore(str(tmp_path / "blobs"))
    return request.getfixturevalue("s3_store")


def test_put_is_content_addressed_and_deduplicated(store):
    data = b"hello" * 1000
    first = store.put(io.BytesIO(data))
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    assert first.created
    assert not store.put(io.BytesIO(data)).created
    assert not store.put_bytes(data).created
    assert store.exists(first.sha256)
    assert store.read(first.sha256) == data
    assert b"".join(store.iter_chunks(first.sha256, 1000)) == data


def test_delete(store):
    blob = store.put_bytes(b"x")
    store.delete(blob.sha256)
    assert not store.exists(blob.sha256)
    store.delete(blob.sha256)  # idempotent


def test_max_bytes_stores_nothing(store, tmp_path):
    with pytest.raises(PayloadTooLarge):
        store.put(io.BytesIO(b"a" * 5000), max_bytes=1000)
    assert not store.exists(hashlib.sha256(b"a" * 5000).hexdigest())


def test_interrupted_stream_leaves_no_file(tmp_path):
    store = BlobStore(str(tmp_path / "blobs"))
    with pytest.raises(ConnectionResetError):
        store.put(Exploding(b"partial"))
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == []


def test_derived_files_round_trip(store):
    assert store.read_derived("thumbs/x.jpg") is None
    store.write_derived("thumbs/x.jpg", b"jpeg")
    assert store.read_derived("thumbs/x.jpg") == b"jpeg"


def test_local_store_has_no_signed_url_but_s3_has(store):
    blob = store.put_bytes(b"signed")
    url = store.url_for(blob.sha256)
    if store.is_local:
        assert url is None
    else:
        assert url is not None
        assert "Signature" in url or "X-Amz-Signature" in url


def test_the_clients_tar_reader_refuses_a_truncated_batch():
    import io
    import tarfile

    import pytest

    from darkroom.client import ApiError
    from darkroom.client._datasets import _untar

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("7", b"x" * 700), ("9", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    whole = out.getvalue()
    assert _untar(whole) == {7: b"x" * 700, 9: b""}
    with pytest.raises(ApiError, match="ended in the middle"):
        _untar(whole[:800])
