"""Generation is seeded and byte-identical; the quality score separates real from noise."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from src.common.errors import ConfigError
from src.gan.sampling.generate import choose_generator, generate_images
from src.gan.scoring.swd import PATCH, load_float_images, patch_descriptors, swd


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))
    }


def test_same_model_and_seed_give_byte_identical_pngs(trained_model, tmp_path):
    generate_images(trained_model, tmp_path / "a", count=6, seed=5, batch_size=4)
    generate_images(trained_model, tmp_path / "b", count=6, seed=5, batch_size=4)
    generate_images(trained_model, tmp_path / "c", count=6, seed=6)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert digests(tmp_path / "a") != digests(tmp_path / "c")


def test_generation_leaves_the_callers_random_stream_alone(trained_model, tmp_path):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    generate_images(trained_model, tmp_path / "a", count=2, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_auto_uses_raw_g_until_upstream_really_averages_ema():
    assert choose_generator("auto", 500) == "raw"
    assert choose_generator("auto", 30000) == "ema"
    assert choose_generator("ema", 10) == "ema"
    with pytest.raises(ConfigError, match="generator='best'"):
        choose_generator("best", 10)


def test_metadata_says_which_generator_and_step(trained_model, tmp_path):
    result = generate_images(trained_model, tmp_path / "a", count=2, which="ema")
    assert result.metadata()["generator"] == "ema" and result.metadata()["step"] == 2


def test_swd_separates_real_from_real_and_real_from_noise(cleansed_sample):
    images = load_float_images(cleansed_sample, 3, 32)
    first, second = images[:48], images[48:96]
    noise = torch.rand_like(second)
    real_real, real_noise = swd(first, second), swd(first, noise)
    assert real_real * 2 < real_noise


@pytest.mark.parametrize("shape", [(5, 3, 32, 32), (3, 4, 64, 48), (2, 1, 7, 7)])
def test_patches_are_exactly_those_unfold_would_pick(shape):
    # Given images and two generators in the same state
    images = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    ours, theirs = (torch.Generator().manual_seed(1) for _ in range(2))
    # When patches are gathered directly, and by unfolding every patch and picking
    gathered = patch_descriptors(images, 10, ours)
    unfolded = F.unfold(images, PATCH)
    index = torch.randint(0, unfolded.shape[-1], (shape[0], 10), generator=theirs)
    picked = torch.gather(unfolded, 2, index.unsqueeze(1).expand(-1, unfolded.shape[1], -1))
    # Then they are the same numbers in the same order
    assert torch.equal(gathered, picked.permute(0, 2, 1).reshape(-1, unfolded.shape[1]))
