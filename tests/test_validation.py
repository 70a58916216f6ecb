"""Bad parameters are refused before any work, with the fix in the message."""

import re

import pytest

from src.build.accelerators import GpuRequest, normalise_accelerator
from src.common.errors import ConfigError
from src.common.gcs_uri import parse_gcs_uri
from src.gan.config import TrainConfig
from src.gan.training.settings import check_config
from src.params.checks import require
from src.params.rules import enough_images_problem, image_size_problem
from src.params.schema import local_defaults
from src.params.values import resolve


@pytest.mark.parametrize("size", [16, 48, 100, 0, -32])
def test_image_size_not_a_power_of_two_or_below_32_is_refused(size):
    with pytest.raises(ConfigError, match="power of two from 32 to 1024"):
        require(image_size_problem(size))


@pytest.mark.parametrize("size", [32, 64, 256, 1024])
def test_valid_image_sizes_pass(size):
    assert image_size_problem(size) is None


@pytest.mark.parametrize(
    "uri", ["/local/folder", "s3://bucket/x", "gs:/bucket/x", "https://x/y", ""]
)
def test_source_that_is_not_gs_is_refused(uri):
    with pytest.raises(ConfigError, match="gs://BUCKET/PREFIX"):
        parse_gcs_uri(uri)


@pytest.mark.parametrize("uri", ["gs://bucket", "gs://bucket/", "gs://bucket//"])
def test_source_with_empty_prefix_is_refused(uri):
    with pytest.raises(ConfigError, match="empty prefix"):
        parse_gcs_uri(uri)


def test_gcs_uri_splits_into_bucket_and_prefix():
    assert parse_gcs_uri("gs://my-bucket/a/b/") == ("my-bucket", "a/b/")


@pytest.mark.parametrize("field", ["steps", "batch_size", "latent_dim", "save_every"])
def test_non_positive_counts_are_refused(field):
    with pytest.raises(ConfigError, match=f"{field}=0 must be positive"):
        check_config(TrainConfig(**{field: 0}))


def test_fewer_images_than_batch_size_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"only 3 usable images for batch_size=4.*at most 3"):
        require(enough_images_problem(3, 4))


def test_dual_contrast_loss_needs_disc_output_size_one():
    with pytest.raises(ConfigError, match="disc_output_size=1"):
        check_config(TrainConfig(dual_contrast_loss=True, disc_output_size=5))


def test_unknown_accelerator_lists_the_valid_names_and_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"Did you mean NVIDIA_TESLA_T4.*Choose one of .*NVIDIA_L4"
    ):
        normalise_accelerator("NVIDIA_TESLA_T5")


def test_gke_spelling_of_an_accelerator_is_accepted():
    assert normalise_accelerator("nvidia-l4") == "NVIDIA_L4"


@pytest.mark.parametrize("name", ["TPU_V3", "NVIDIA_TESLA_K80", "NVIDIA_B200"])
def test_accelerators_the_cuda_step_cannot_use_get_one_message_on_both_targets(name):
    messages = set()
    for target in ("vertex", "kfp"):
        with pytest.raises(
            ConfigError, match=f"{name}' is not a CUDA GPU this step can run on"
        ) as error:
            GpuRequest(accelerator=name).validated(target)
        messages.add(str(error.value))
    (message,) = messages
    assert "TPU" not in message.split("Choose one of")[1]


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        ({"cpu_limit": "0"}, "cpu_limit='0' is not a positive quantity"),
        ({"memory_limit": "-5G"}, "memory_limit='-5G' is not a positive quantity"),
        ({"memory_limit": "0"}, "such as '30G', '500M' or '16Gi'"),
    ],
)
def test_non_positive_machine_sizes_are_refused(limits, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        GpuRequest(**limits).validated("kfp")


def test_a_gpu_count_no_machine_carries_is_refused_with_the_counts_that_exist():
    with pytest.raises(ConfigError, match=r"3 x NVIDIA_L4 is not a machine.*1 or 2 or 4 or 8"):
        GpuRequest(accelerator="NVIDIA_L4", count=3).validated("vertex")


def test_bad_memory_quantity_is_refused():
    with pytest.raises(ConfigError, match="memory_limit='lots'"):
        GpuRequest(memory_limit="lots").validated("vertex")


def test_negative_train_processes_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="one per GPU"):
        resolve({"train_processes": "-1"}, local_defaults())


def test_two_processes_need_a_full_batch_each():
    with pytest.raises(ConfigError, match="per training process"):
        require(enough_images_problem(5 // 2, 4, processes=2))  # images per process


@pytest.mark.parametrize(
    ("short", "suggested"),
    [
        ("T4", "NVIDIA_TESLA_T4"),
        ("a100", "NVIDIA_TESLA_A100, NVIDIA_A100_80GB"),
        ("L4", "NVIDIA_L4"),
    ],
)
def test_a_gpus_short_name_gets_its_full_names_suggested(short, suggested):
    with pytest.raises(ConfigError, match=f"Did you mean {suggested}\\?"):
        normalise_accelerator(short)
