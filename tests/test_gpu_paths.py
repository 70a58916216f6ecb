"""The GPU-only branches, reached on this machine: patched device capabilities, a GPU-written
checkpoint, a non-CPU device, torchrun's environment, shared host memory, the memory guard."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from src.common.errors import ConfigError
from src.common.image_array_writer import ArrayWriter
from src.gan import random_state
from src.gan.config import TrainConfig
from src.gan.model_folder import CHECKPOINT_NAME, load_checkpoint
from src.gan.networks.build import build_gan
from src.gan.training import loop, memory
from src.gan.training import ranks as ranks_module
from src.gan.training.memory import check_device_memory
from src.gan.training.ranks import SINGLE, Launch, plan_launch, run_launch
from tests.conftest import SMOKE
from tests.support.host_memory import bank_anonymous_growth

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda")


def visible_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize(("gpus", "requested", "expected"), [(4, None, 4), (4, 2, 2), (1, None, 1)])
def test_one_training_process_per_visible_gpu_unless_asked(monkeypatch, gpus, requested, expected):
    visible_gpus(monkeypatch, gpus)
    launch = plan_launch(CUDA, requested, env={})
    assert (launch.local, launch.world_size, launch.spawns) == (expected, expected, expected > 1)


def test_more_processes_than_visible_gpus_are_refused_with_the_fix(monkeypatch):
    visible_gpus(monkeypatch, 2)
    with pytest.raises(ConfigError, match="only 2 CUDA devices are visible: request that many"):
        plan_launch(CUDA, 4, env={})


def test_a_per_process_launcher_makes_this_process_one_rank(monkeypatch):
    visible_gpus(monkeypatch, 8)
    env = {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "10.0.0.2"}
    launch = plan_launch(CUDA, None, env=env)
    assert launch.external == ranks_module.Ranks(5, 8, 1) and not launch.spawns
    with pytest.raises(ConfigError, match="the launcher started 8 processes"):
        plan_launch(CUDA, 2, env=env)


def test_a_per_machine_launcher_makes_this_machine_a_node_of_the_job(monkeypatch):
    # Vertex AI and Kubeflow multi-replica jobs set WORLD_SIZE/RANK per machine, no LOCAL_RANK
    visible_gpus(monkeypatch, 4)
    env = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "trainer-0", "MASTER_PORT": "23456"}
    launch = plan_launch(CUDA, None, env=env)
    assert (launch.local, launch.world_size, launch.first_rank) == (4, 8, 4)
    assert launch.master == ("trainer-0", 23456)


def test_the_parent_process_asks_the_gpu_nothing_before_the_ranks_start(
    cleansed_sample, tmp_path, monkeypatch
):
    # Given two visible GPUs, and every call that would open a CUDA context forbidden here
    visible_gpus(monkeypatch, 2)
    for name in (
        "get_device_capability", "get_device_properties", "get_device_name", "is_bf16_supported",
        "mem_get_info", "set_device", "current_device", "init", "_lazy_init",
    ):  # fmt: skip
        monkeypatch.setattr(torch.cuda, name, forbidden(name))
    started = {}

    def spawn(launch, target, args):
        started["launch"] = launch
        return "trained"

    monkeypatch.setattr(ranks_module, "_spawn", spawn)
    # When training starts, then the ranks are launched without the parent touching CUDA
    assert loop.train_gan(cleansed_sample, tmp_path / "m", SMOKE) == "trained"
    assert (started["launch"].device_type, started["launch"].local) == ("cuda", 2)


def forbidden(name: str):
    def call(*args, **kwargs):
        raise AssertionError(f"the parent called torch.cuda.{name}: a CUDA context on GPU 0")

    return call


def gpu_written_copy(source: Path, target: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`source`'s checkpoint as 8 GPUs would write it: CUDA storage locations, a CUDA random
    state per GPU (torch.save records each tensor's device; the bytes are the same)."""
    saved = load_checkpoint(source)
    saved["rng"]["cuda"] = [torch.get_rng_state()[:16].clone() for _ in range(8)]
    target.mkdir(parents=True, exist_ok=True)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(saved, target / CHECKPOINT_NAME)
    return target


def test_a_checkpoint_written_on_gpus_resumes_here_exactly(cleansed_sample, tmp_path, monkeypatch):
    # Given a 4-step run, and a 2-step checkpoint of the same run as 8 GPUs would have written it
    config = replace(SMOKE, steps=4, save_every=2)
    loop.train_gan(cleansed_sample, tmp_path / "straight", config)
    loop.train_gan(cleansed_sample, tmp_path / "half", replace(config, steps=2))
    gpu_dir = gpu_written_copy(tmp_path / "half", tmp_path / "gpu", monkeypatch)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(gpu_dir / CHECKPOINT_NAME, weights_only=True)  # it really asks for a GPU
    # When this CPU machine resumes it, then it continues exactly
    resumed = loop.train_gan(cleansed_sample, gpu_dir, config)
    assert resumed.start_step == 2
    a, b = load_checkpoint(tmp_path / "straight")["gan"], load_checkpoint(gpu_dir)["gan"]
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
def test_the_real_resume_path_places_a_checkpoint_on_a_non_cpu_device(
    trained_model, cleansed_sample
):
    # Given a checkpoint, resumed by the training process's own preparation for the meta device
    meta = torch.device("meta")
    source = str(trained_model / CHECKPOINT_NAME)
    job = loop._Job(cleansed_sample, trained_model, SMOKE, "", source)
    run, saved, fine_tune = loop._prepare(SINGLE, meta, job)
    step = loop._resume(run, saved, job, fine_tune)
    # Then weights and Adam's moments moved to that device, while what must stay on the CPU did
    assert step == saved["step"]
    assert {p.device for p in run.gan.parameters()} == {meta}
    adam = next(iter(run.gan.G_opt.state.values()))
    assert adam["exp_avg"].device == meta and adam["step"].device.type == "cpu"
    assert torch.equal(torch.get_rng_state(), saved["rng"]["torch"])
    assert run.step.bank.generator.get_state().device.type == "cpu"


def test_random_states_of_more_gpus_than_are_visible_restore_this_gpus_own(monkeypatch):
    # Given a state saved by a rank on a machine with 8 GPUs, restored where one is visible
    saved = {**random_state.capture(torch.device("cpu"))}
    saved["cuda"] = [torch.full((16,), index, dtype=torch.uint8) for index in range(8)]
    calls = []

    def set_rng_state(state, device="cuda"):
        assert state.dtype == torch.uint8 and state.device.type == "cpu", "needs a CPU ByteTensor"
        calls.append((int(state[0]), torch.device(device)))

    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    # When it is restored onto GPU 0, then GPU 0's own state is set, and nothing else
    random_state.restore(saved, torch.device("cuda", 0))
    assert calls == [(0, torch.device("cuda", 0))]


def test_a_set_that_leaves_no_room_on_the_gpu_is_refused_with_the_sizes_and_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (9.1e9, 15.8e9))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    gan = build_gan(replace(SMOKE), torch.device("cpu"))
    with pytest.raises(ConfigError) as error:
        check_device_memory(12.3e9, gan, torch.device("cuda", 0))
    message = str(error.value)
    assert "12.30 GB on the GPU" in message and "9.10 GB free of 15.80 GB" in message
    assert "Tesla T4" in message and "lower image_size" in message
    check_device_memory(1e9, gan, torch.device("cuda", 0))  # what fits passes


def test_training_processes_share_one_host_copy_of_the_images(tmp_path):
    # Given a 50 MB cleansed set
    rows = np.random.default_rng(0).integers(0, 256, (4096, 64, 64, 3), dtype=np.uint8)
    writer = ArrayWriter(tmp_path, (64, 64, 3))
    for index, row in enumerate(rows):
        writer.append(row, f"{index}.png")
    writer.close()
    # When two training processes each load it into their bank and draw a whole epoch
    growth = run_launch(Launch("cpu", 2, 2), torch.device("cpu"), bank_anonymous_growth, tmp_path)
    # Then the first process holds no private copy (the memory map is shared)
    assert growth < rows.nbytes / 10, f"{growth / 1e6:.1f} MB of private memory"


def test_a_cpu_step_that_will_not_fit_is_refused_with_the_sizes_and_the_batch_that_fits(
    monkeypatch,
):
    # 1024 px at batch 10 on a CPU: the run passed 8 GB in its second step
    monkeypatch.setattr(memory, "available_host_bytes", lambda: 6e9)
    config = TrainConfig(image_size=1024, batch_size=10, fmap_max=32, latent_dim=64)
    gan = build_gan(replace(SMOKE), torch.device("cpu"))
    with pytest.raises(ConfigError) as refused:
        memory.check_host_memory(config, gan, torch.device("cpu"))
    message = str(refused.value)
    assert re.search(
        r"at 1024 px with batch_size=10 needs about \d+\.\d GB \(\d\.\d\d GB an image\)", message
    )
    assert "this process may use 6.0 GB: lower batch_size to" in message
    fits = int(re.search(r"lower batch_size to (\d+)", message).group(1))
    memory.check_host_memory(
        replace(config, batch_size=max(1, fits * 8 // 10)), gan, torch.device("cpu")
    )


def test_training_that_cannot_fit_stops_before_its_first_step(
    cleansed_sample, tmp_path, monkeypatch
):
    monkeypatch.setattr(memory, "available_host_bytes", lambda: 50e6)
    with pytest.raises(ConfigError, match="lower image_size or fmap_max, or train on a GPU"):
        loop.train_gan(cleansed_sample, tmp_path / "m", SMOKE)
    assert not (tmp_path / "m" / CHECKPOINT_NAME).exists()
