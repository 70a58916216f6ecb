"""Data-parallel training: averaged gradients, disjoint shards, exact resume, errors from any rank."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from src.common.errors import ConfigError
from src.common.net import free_port
from src.gan.model_folder import load_checkpoint
from src.gan.training.image_bank import ImageBank
from src.gan.training.loop import train_gan
from src.gan.training.ranks import Launch, Ranks, run_launch
from tests.conftest import SMOKE
from tests.support.datasets import cleansed_images
from tests.support.rank_gradients import half_batch_gradients

ROOT = Path(__file__).resolve().parents[1]


def test_each_rank_takes_a_disjoint_share_of_every_epoch():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)  # [N, H, W, C]
    cpu = torch.device("cpu")
    banks = [ImageBank(images, 1, 3, cpu, Ranks(rank, 2)) for rank in range(2)]
    single = ImageBank(images, 1, 3, cpu)
    for _ in range(3):  # epochs
        shares = [bank.next_batch(5).flatten().mul(255).round().long().tolist() for bank in banks]
        whole = single.next_batch(10).flatten().mul(255).round().long().tolist()
        assert set(shares[0]).isdisjoint(shares[1])
        assert sorted(shares[0] + shares[1]) == list(range(10))
        assert shares[0] == whole[0::2] and shares[1] == whole[1::2]  # one shared permutation


def test_averaged_gradients_equal_the_full_batch_gradient():
    torch.manual_seed(1)
    inputs, targets = torch.randn(8, 3), torch.randn(8, 1)
    cpu = torch.device("cpu")
    result = run_launch(Launch("cpu", 2, 2), cpu, half_batch_gradients, inputs, targets, 1)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    torch.nn.functional.mse_loss(model(inputs), targets).backward()
    for averaged, full in zip(result["grads"], [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(averaged, full)
    assert result["failed"] is False
    assert result["flagged"] is True  # rank 1's failure reaches rank 0


@pytest.mark.slow
def test_two_processes_train_in_step_and_resume_exactly_whoever_started_them(
    cleansed_sample, tmp_path
):
    # Given a 4-step run of two processes, and the same run whose first 2 steps torchrun
    # started (RANK/LOCAL_RANK/WORLD_SIZE per process) and whose last 2 the project's launcher did
    config = replace(SMOKE, steps=4, save_every=2)
    straight = train_gan(cleansed_sample, tmp_path / "straight", config, device="cpu", world_size=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    command += [
        "tests/support/train_entry.py",
        str(cleansed_sample),
        str(tmp_path / "resumed"),
        "2",
    ]
    launched = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    first_half = load_checkpoint(tmp_path / "resumed")
    resumed = train_gan(cleansed_sample, tmp_path / "resumed", config, world_size=2)
    train_gan(cleansed_sample, tmp_path / "single", config, world_size=1)
    # Then torchrun's processes were ranks of one job, and the resumed run equals the straight one
    assert (first_half["world_size"], first_half["step"]) == (2, 2)
    assert (straight.world_size, straight.end_step, resumed.start_step) == (2, 4, 2)
    saved = load_checkpoint(tmp_path / "straight")
    assert saved["world_size"] == 2 and len(saved["other_ranks"]) == 1
    assert not torch.equal(saved["other_ranks"][0]["rng"]["torch"], saved["rng"]["torch"])
    a, b = saved["gan"], load_checkpoint(tmp_path / "resumed")["gan"]
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert straight.final_d_loss == resumed.final_d_loss
    # and two processes train differently from one
    one = load_checkpoint(tmp_path / "single")["gan"]
    assert not torch.equal(a["G.initial_conv.0.weight"], one["G.initial_conv.0.weight"])
    assert (tmp_path / "straight" / "upstream" / "models").is_dir()


def test_an_error_in_a_rank_is_raised_with_its_own_type_and_message(cleansed_sample, tmp_path):
    images = len(cleansed_images(cleansed_sample))
    config = replace(SMOKE, batch_size=images // 2 + 1)
    with pytest.raises(ConfigError, match="per training process"):
        train_gan(cleansed_sample, tmp_path / "model", config, world_size=2)
    assert not (tmp_path / "model" / "checkpoint.pt").exists()


TRAIN_TWO = (
    "import sys; from pathlib import Path; from dataclasses import replace;"
    "from tests.conftest import SMOKE; from src.common.step_logging import configure_logging;"
    "from src.gan.training.loop import train_gan; configure_logging();"
    "train_gan(Path(sys.argv[1]), Path(sys.argv[2]), replace(SMOKE, steps=500, save_every=1000,"
    " log_every=1), device='cpu', world_size=2, checkpoint_root=sys.argv[3])"
)


def test_sigterm_to_the_first_process_alone_reaches_every_rank_and_saves(cleansed_sample, tmp_path):
    # Given two ranks training, checkpoints only every 1,000 steps, in a session of their own
    log = tmp_path / "train.log"
    with open(log, "w") as sink:
        parent = subprocess.Popen(
            [sys.executable, "-c", TRAIN_TWO, str(cleansed_sample), str(tmp_path / "m"), str(tmp_path / "mirror")],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while "step 3/500" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "step 3/500" in log.read_text(), log.read_text()[-2000:]
        # When only the first process gets SIGTERM, as a container runtime sends it to PID 1
        os.kill(parent.pid, signal.SIGTERM)
        code = parent.wait(timeout=120)
    finally:
        os.killpg(parent.pid, signal.SIGKILL) if parent.poll() is None else None
    # Then every rank stops after the step in flight, which is saved and mirrored
    text = log.read_text()
    stopped = int(re.search(r"stopped by SIGTERM after step (\d+)", text).group(1))
    assert code != 0 and 3 <= stopped < 500
    assert load_checkpoint(tmp_path / "mirror")["step"] == stopped
