"""The runtime SDK against its fake server (`darkroom.runtime.testing`) and a flaky transport."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from darkroom.client import ApiError, Client
from darkroom.processings import dataset_stats
from darkroom.runtime import Limits, ProcessingContext
from darkroom.runtime.testing import fake_context


def _image(seed: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)


def test_batches_larger_than_the_servers_limit_lose_no_image():
    """The bug: batch_size 65 against a 64-image limit decoded 5 images of 70 and the run
    'succeeded'. Batches are now split into requests the server accepts."""
    images = {f"{i}.png": _image(i) for i in range(70)}
    ctx = fake_context(images=images, labels=["cat"])
    batches = list(ctx.iter_assets(batch_size=65))
    assert [len(b) for b in batches] == [65, 5]
    assert ctx.failures == 0
    got = {item.asset.filename: item.image for batch in batches for item in batch}
    assert all(np.array_equal(got[name], image) for name, image in images.items())


def test_a_refused_batch_request_ends_the_run_instead_of_failing_each_image():
    ctx = fake_context(
        images={f"{i}.png": _image(i) for i in range(10)}, limits=Limits(max_batch_images=4)
    )
    ctx.limits = Limits(max_batch_images=8)  # the run believes a larger limit than the server's
    with pytest.raises(ApiError, match="at most 4 assets"):
        list(ctx.iter_assets(batch_size=8))
    assert ctx.failures == 0


def test_an_undecodable_image_is_one_counted_failure():
    ctx = fake_context(images={"good.png": _image(1)}, parameters={"max_failures": 0})
    ctx.fake.assets[1].data = b"\x89PNG\r\n\x1a\n broken"
    with pytest.raises(Exception, match="max_failures=0"):
        list(ctx.iter_assets())


def test_writes_split_at_the_published_limits_and_mark_finished_assets():
    images = {f"{i}.png": _image(i) for i in range(5)}
    ctx = fake_context(images=images, labels=["cat"], limits=Limits(max_annotation_items=2))
    rect = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 4, 4]}
    added = ctx.add_annotations([{"asset_id": i, "shapes": [rect]} for i in (1, 2, 3)], done=[4, 5])
    assert added == 3
    assert ctx.fake.finished == {1, 2, 3, 4, 5}
    with pytest.raises(ApiError, match="no label 'dog'"):
        ctx.add_annotations([{"asset_id": 1, "shapes": [{**rect, "label": "dog"}]}])


def test_output_versions_take_uploads_but_the_input_does_not():
    ctx = fake_context(images={"a.png": _image(1)})
    out = ctx.create_output_version("augmented", copy_input=False)
    data = ctx.fake.assets[1].data
    made = ctx.upload_images(out, [(f"{i}.png", data) for i in range(3)])
    assert [a.filename for a in made] == ["0.png", "1.png", "2.png"]
    assert sorted(ctx.fake.uploads[out.id]) == ["0.png", "1.png", "2.png"]
    with pytest.raises(ApiError, match="HTTP 403"):
        ctx.upload_images(ctx.input_version, [("x.png", data)])


def test_a_builtin_runs_on_the_fake_context(caplog):
    ctx = fake_context(
        images={f"{i}.png": _image(i) for i in range(3)}, labels=["cat"],
        parameters={"page_size": 2, "delay_s": 0},
        annotations={"0.png": [{"kind": "rectangle", "label": "cat", "bbox": [0, 0, 2, 2]}]},
    )  # fmt: skip
    with caplog.at_level("INFO", logger="darkroom.processing"):
        dataset_stats.run(ctx)
    assert "done: 3 assets, 1 annotated, 1 shapes" in caplog.text
    assert ctx.fake.progress[-1] == (3, 3)


class Flaky(httpx.BaseTransport):
    """Fails the first `failures` requests as a restarting server would, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if len(self.seen) <= self.failures:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(201, json={"shapes_added": 1})


def test_keyed_writes_are_retried_with_the_same_key():
    flaky = Flaky(failures=3)
    client = Client("http://x", "t", transport=flaky, retry_for_s=10)
    assert client.add_run_annotations(1, [{"asset_id": 1, "shapes": []}]) == {"shapes_added": 1}
    keys = {r.headers["Idempotency-Key"] for r in flaky.seen}
    assert len(flaky.seen) == 4
    assert len(keys) == 1


def test_unkeyed_writes_are_not_retried_and_retry_gives_up_after_its_budget():
    flaky = Flaky(failures=1)
    client = Client("http://x", "t", transport=flaky, retry_for_s=10)
    with pytest.raises(ApiError, match="cannot reach darkroom"):
        client.create_dataset("d")
    assert len(flaky.seen) == 1
    flaky = Flaky(failures=1000)
    client = Client("http://x", "t", transport=flaky, retry_for_s=0.5)
    with pytest.raises(ApiError, match="cannot reach darkroom"):
        client.version_stats(1)
    assert 3 <= len(flaky.seen) <= 6


def test_queued_writes_land_in_order_and_a_failed_one_surfaces_in_flush():
    ctx = fake_context(images={f"{i}.png": _image(i) for i in range(6)}, labels=["cat"])
    rect = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 4, 4]}
    for i in range(1, 7):
        ctx.queue_annotations([{"asset_id": i, "shapes": [rect] * i}])
    ctx.flush()
    assert ctx.queued_shapes == 21
    assert [len(ctx.fake.shapes_by_asset[i]) for i in range(1, 7)] == [1, 2, 3, 4, 5, 6]
    ctx.queue_annotations([{"asset_id": 1, "shapes": [{**rect, "label": "dog"}]}])
    with pytest.raises(ApiError, match="no label 'dog'"):
        ctx.flush()
    ctx.flush()  # raised once, then the context is usable again


def test_uploads_are_split_into_requests_and_keep_their_order():
    ctx = fake_context(images={"a.png": _image(1)})
    out = ctx.create_output_version("augmented", copy_input=False)
    data = ctx.fake.assets[1].data
    made = ctx.upload_images(out, ((f"{i:03d}.png", data) for i in range(70)))
    assert [a.filename for a in made] == [f"{i:03d}.png" for i in range(70)]
    assert ctx.counts["upload"] == 70
    with pytest.raises(ApiError, match="already in version"):
        ctx.upload_images(out, [("new.png", data), ("000.png", data)])


def test_the_fake_server_filters_pages_as_the_api_does():
    rect = {"kind": "rectangle", "label": "cat", "bbox": [0, 0, 2, 2]}
    ctx = fake_context(
        images={f"{i}.png": _image(i) for i in range(4)}, labels=["cat"],
        annotations={"1.png": [rect]},
    )  # fmt: skip
    names = lambda **f: [a.filename for p in ctx.iter_asset_pages(**f) for a in p]  # noqa: E731
    assert names(label="Cat") == ["1.png"]
    assert names(human_annotated=False) == ["0.png", "2.png", "3.png"]
    assert names(annotated=True) == ["1.png"]


def test_annotations_of_many_assets():
    images = {"a.png": _image(1), "b.png": _image(2)}
    box = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 4, 4]}
    ctx = fake_context(images=images, labels=["cat"], annotations={"a.png": [box]})
    ids = {a.filename: a.id for page in ctx.iter_asset_pages() for a in page}
    found = ctx.annotations_of(ids.values())
    assert [s.bbox for a in found[ids["a.png"]] for s in a.shapes] == [[1, 1, 4, 4]]
    assert found[ids["b.png"]] == []
    loaded = [x for batch in ctx.iter_assets(with_annotations=True) for x in batch]
    assert {x.asset.filename: len(x.annotations) for x in loaded} == {"a.png": 1, "b.png": 0}
    assert all(x.annotations is None for b in ctx.iter_assets() for x in b)


def _slow_progress(fake, status: int = 200):
    """A run context on `fake`'s server whose progress endpoint takes 0.3 s (and answers
    `status`)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/progress"):
            time.sleep(0.3)
            if status != 200:
                return httpx.Response(status, json={"error": {"code": "boom", "message": "no"}})
        return fake.fake.handle(request)

    client = Client("http://darkroom.test", "t", transport=httpx.MockTransport(handle))
    return ProcessingContext(client, fake.context)


def test_progress_never_holds_the_processing_up_and_flush_waits_for_it():
    fake = fake_context(images={"a.png": _image(1)})
    ctx = _slow_progress(fake)
    started = time.perf_counter()
    for done in range(1, 4):
        ctx.progress(done, 3, force=True)
    assert time.perf_counter() - started < 0.15  # three reports, none waited for
    ctx.flush()
    assert fake.fake.progress[-1] == (3, 3)  # the latest is always sent; others may be skipped
    assert len(fake.fake.progress) <= 3


def test_a_progress_report_that_failed_raises_in_the_run():
    fake = fake_context(images={"a.png": _image(1)})
    ctx = _slow_progress(fake, status=500)
    ctx.progress(1, 2, force=True)
    with pytest.raises(ApiError, match="HTTP 500"):
        ctx.flush()
