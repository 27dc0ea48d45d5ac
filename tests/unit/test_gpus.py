"""GPUs: how a worker counts and lends them, and which onnxruntime providers a run uses. This
machine has no GPU: providers are chosen from lists as onnxruntime reports them."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from darkroom.engine import sandbox
from darkroom.engine.gpus import GpuPool, detect_gpus, device_files, worker_gpus
from darkroom.inference.session import NoGpuProvider, create_session, execution_providers
from tests.unit.test_inference_models import DOCLAYNET, model_path

CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
TRT = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    for name in ("nvidia0", "nvidia1", "nvidia3", "nvidiactl", "nvidia-uvm", "null"):
        (tmp_path / name).touch()
    return tmp_path


def test_gpus_are_counted_from_their_device_files_within_cuda_visible_devices(dev: Path):
    assert detect_gpus(dev, {}) == [0, 1, 3]
    assert detect_gpus(dev, {"CUDA_VISIBLE_DEVICES": "3,0"}) == [3, 0]
    assert detect_gpus(dev, {"CUDA_VISIBLE_DEVICES": ""}) == []  # none made visible
    assert detect_gpus(dev / "missing", {}) == []
    assert worker_gpus(None, [0, 1]) == [0, 1]
    assert worker_gpus(1, [0, 1]) == [0]  # DARKROOM_GPUS=1: the first of them
    assert worker_gpus(0, [0, 1]) == []
    assert worker_gpus(2, []) == [0, 1]  # told of GPUs it cannot see as files
    assert device_files([1], dev) == [dev / "nvidiactl", dev / "nvidia-uvm", dev / "nvidia1"]


def test_a_gpu_is_lent_to_one_run_at_a_time():
    pool = GpuPool([0, 1])
    first = pool.take(1)
    assert first == [0]
    assert pool.take(2) is None  # one left
    assert pool.take(1) == [1]
    assert pool.free() == 0
    pool.give_back(first)
    pool.give_back(first)  # twice is once
    assert (pool.total, pool.free(), pool.take(0)) == (2, 1, [])


def test_providers_follow_the_run_and_what_onnxruntime_offers(monkeypatch: pytest.MonkeyPatch):
    assert execution_providers(0, TRT) == ["CPUExecutionProvider"]
    assert execution_providers(1, CUDA) == CUDA
    assert execution_providers(1, TRT) == CUDA  # TensorRT compiles at load: only when asked
    monkeypatch.setenv("DARKROOM_TENSORRT", "1")
    assert execution_providers(2, TRT) == TRT
    with pytest.raises(NoGpuProvider, match=r"install darkroom\[gpu\]"):
        execution_providers(1, ["CPUExecutionProvider"])


def test_this_onnxruntime_runs_a_cpu_run_and_refuses_a_gpu_it_does_not_have():
    model = model_path(*DOCLAYNET)
    assert create_session(model).get_providers() == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert create_session(model, gpus=1).get_providers()[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(NoGpuProvider, match="offers only"):
            create_session(model, gpus=1)


def test_a_gpu_runs_sandbox_opens_its_device_files(dev: Path):
    spec = sandbox.SandboxSpec(argv=["true"], env={}, token=None, socket=None,
                               devices=device_files([0], dev))  # fmt: skip
    argv = sandbox.bwrap_command("bwrap", spec, {"/etc/passwd": 3, "/etc/group": 4})
    binds = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--dev-bind"]
    assert binds == [str(dev / "nvidiactl"), str(dev / "nvidia-uvm"), str(dev / "nvidia0")]
    cpu = sandbox.SandboxSpec(argv=["true"], env={}, token=None, socket=None)
    assert "--dev-bind" not in sandbox.bwrap_command("bwrap", cpu, {"/etc/passwd": 3,
                                                                    "/etc/group": 4})  # fmt: skip
