"""FID: the closed form, real/real against real/noise, weights from GCS, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from src.backends.sample import SAMPLE_DIR
from src.common.errors import ConfigError
from src.components import generate_images
from src.data.cleanse import CleanseSettings, cleanse_folder
from src.gan.images import load_images
from src.gan.scoring.fid import FidScorer, features_fid, frechet_distance
from src.params.schema import compiled_defaults
from src.params.values import resolve
from tests.support.components import run_component


@pytest.fixture(scope="module")
def inception_weights(gcs_client, tmp_path_factory) -> str:
    """Randomly initialised inception_v3 weights (no internet here), uploaded to the emulator.

    Random weights still give a fixed feature map, so FID's behaviour is testable;
    the numbers differ from ImageNet weights.
    """
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "inception_random.pth"
    torch.save(inception_v3(weights=None, init_weights=True).state_dict(), path)
    bucket = gcs_client.bucket("fid-weights")
    if not bucket.exists():
        gcs_client.create_bucket("fid-weights")
    bucket.blob("inception_random.pth").upload_from_filename(str(path))
    return "gs://fid-weights/inception_random.pth"


def test_frechet_distance_matches_an_independent_computation():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    b = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    sigma1, sigma2 = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mu1 = torch.randn(6, generator=generator, dtype=torch.float64)
    mu2 = torch.randn(6, generator=generator, dtype=torch.float64)
    # S1 S2 is similar to a positive definite matrix: its eigenvalues are real and positive
    eigenvalues = torch.linalg.eigvals(sigma1 @ sigma2).real
    expected = (mu1 - mu2).double().square().sum() + sigma1.trace() + sigma2.trace()
    expected -= 2 * eigenvalues.sqrt().sum()
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(float(expected), rel=1e-9)
    assert frechet_distance(mu1, sigma1, mu1, sigma1) == pytest.approx(0.0, abs=1e-9)


def test_fid_separates_real_from_noise(inception_weights, cleansed_sample):
    scorer = FidScorer.from_uri(inception_weights, torch.device("cpu"))
    real = torch.from_numpy(np.array(load_images(cleansed_sample, 3))).permute(0, 3, 1, 2)
    noise = torch.randint(0, 256, (12, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    first, second, random = (
        scorer.features(images) for images in (real[0::2][:12], real[1::2][:12], noise.byte())
    )
    real_real, real_noise = features_fid(first, second), features_fid(first, random)
    assert features_fid(first, first) == pytest.approx(0.0, abs=1e-6 * real_noise)
    assert real_real < real_noise / 2


def test_generate_component_logs_fid_when_given_weights(
    inception_weights, trained_model, cleansed_sample, tmp_path
):
    few = tmp_path / "few"  # a few real images keep Inception's CPU time short
    few.mkdir()
    for path in sorted(SAMPLE_DIR.glob("digit_*.png"))[:6]:
        (few / path.name).write_bytes(path.read_bytes())
    real = tmp_path / "real"
    cleanse_folder(few, real, CleanseSettings(image_size=32, workers=1))
    samples, metrics = Artifact(uri=str(tmp_path / "s")), Metrics(uri=str(tmp_path / "m"))
    run_component(
        generate_images,
        model=Model(uri=str(trained_model)),
        real_images=Dataset(uri=str(real)),
        samples=samples,
        gallery=HTML(uri=str(tmp_path / "g.html")),
        metrics=metrics,
        num_images=4,
        interpolation_steps=0,
        fid_weights_uri=inception_weights,
    )
    assert metrics.metadata["fid_vs_real"] > 0
    assert metrics.metadata["fid_real_images"] == 6
    assert samples.metadata["fid"] == pytest.approx(metrics.metadata["fid_vs_real"], abs=1e-3)


def test_wrong_weights_are_refused_before_any_image_is_generated(
    trained_model, cleansed_sample, tmp_path
):
    wrong = tmp_path / "resnet.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), wrong)
    with pytest.raises(ConfigError, match="inception_v3"):
        run_component(
            generate_images,
            model=Model(uri=str(trained_model)),
            real_images=Dataset(uri=str(cleansed_sample)),
            samples=Artifact(uri=str(tmp_path / "s")),
            gallery=HTML(uri=str(tmp_path / "g.html")),
            metrics=Metrics(uri=str(tmp_path / "m")),
            num_images=4,
            fid_weights_uri=str(wrong),
        )
    assert not Path(tmp_path / "s").exists() or not list(Path(tmp_path / "s").iterdir())


def test_missing_weights_object_names_the_fix(gcs_client, emulator):
    if not gcs_client.bucket("fid-weights").exists():
        gcs_client.create_bucket("fid-weights")
    with pytest.raises(ConfigError, match="not found"):
        FidScorer.from_uri("gs://fid-weights/nothing-here.pth", torch.device("cpu"))


def test_submission_refuses_weights_outside_gcs():
    with pytest.raises(ConfigError, match=r"fid_weights_uri='/home/me/w.pth': pass gs://"):
        resolve(
            {"source_uri": "gs://bucket/images/", "fid_weights_uri": "/home/me/w.pth"},
            compiled_defaults(),
        )
