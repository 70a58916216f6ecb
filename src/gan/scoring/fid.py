"""Fréchet Inception Distance with Inception-v3 weights the user supplies.

Nothing is downloaded from the internet: `fid_weights_uri` names a state_dict
for torchvision's `inception_v3` (ImageNet weights, e.g. torchvision's
`inception_v3_google-0cc3c7bd.pth`) on GCS or on disk. Features are the
2048-d pool3 activations of 299 px inputs. Scores are comparable between runs
that use the same weights file and sample counts; they are not the TF-Inception
numbers of papers (pytorch-fid's port of that graph is another architecture).
FID is biased upwards for small samples (it needs thousands for a stable
covariance): the sample counts go into the metrics next to the score.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from src.common.errors import ConfigError
from src.common.gcs_uri import parse_gcs_uri
from src.common.retry import with_retries

INPUT_SIZE = 299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), in float64.

    Tr((S1 S2)^1/2) is computed as the sum of square roots of the eigenvalues of
    the symmetric S1^1/2 S2 S1^1/2, which avoids a non-symmetric matrix root.
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    value = diff @ diff + torch.trace(sigma1) + torch.trace(sigma2) - 2 * trace_root
    return float(value.clamp(min=0))


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of [N, D] features."""
    features = features.double()
    return features.mean(dim=0), torch.cov(features.T)


def fetch_weights(uri: str, dest_dir: Path) -> Path:
    """A local copy of `uri` (gs://bucket/object or a path on disk)."""
    if not uri.startswith("gs://"):
        path = Path(uri)
        if not path.is_file():
            raise ConfigError(f"fid_weights_uri {uri!r} is not a file: pass gs://BUCKET/OBJECT.pth")
        return path
    bucket_name, name = parse_gcs_uri(uri)
    from google.api_core import exceptions as api_exceptions
    from google.cloud import storage

    target = dest_dir / Path(name).name
    blob = storage.Client().bucket(bucket_name).blob(name)
    try:
        with_retries(lambda: blob.download_to_filename(str(target)), what=f"download of {uri}")
    except api_exceptions.NotFound as error:
        raise ConfigError(
            f"fid_weights_uri {uri} not found: upload torchvision's inception_v3 weights there "
            "or leave fid_weights_uri empty"
        ) from error
    return target


def load_inception(weights_path: Path, device: torch.device) -> torch.nn.Module:
    """torchvision's Inception-v3 with the given weights, returning pool3 features."""
    from torchvision.models import inception_v3

    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(
            f"{weights_path.name} is not a torch state_dict ({error}): pass torchvision's "
            "inception_v3 weights (inception_v3_google-*.pth)"
        ) from error
    # transform_input: torchvision's Google weights expect it, as `inception_v3(weights=...)` sets
    model = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("AuxLogits.")]
    if missing or unexpected:
        raise ConfigError(
            f"{weights_path.name} does not fit torchvision's inception_v3 (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}): pass inception_v3_google-*.pth"
        )
    model.fc = torch.nn.Identity()
    model.aux_logits, model.AuxLogits = False, None
    return model.eval().to(device)


@torch.no_grad()
def inception_features(
    model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 32
) -> torch.Tensor:
    """[N, 2048] pool3 features of uint8 [N, C, H, W] images (grey or RGB; alpha dropped)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device).float() / 255
        batch = batch[:, :3] if batch.shape[1] >= 3 else batch.expand(-1, 3, -1, -1)
        batch = F.interpolate(
            batch, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
        )
        chunks.append(model((batch - mean) / std).cpu())
    return torch.cat(chunks)


class FidScorer:
    """Inception loaded once (before any image is generated), then scores image sets."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device

    @classmethod
    def from_uri(cls, weights_uri: str, device: torch.device | None = None) -> FidScorer:
        device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        with tempfile.TemporaryDirectory(prefix="inception-") as folder:
            return cls(load_inception(fetch_weights(weights_uri, Path(folder)), device), device)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 2048] pool3 features of uint8 images [N, C, H, W]."""
        if len(images) < 2:
            raise ConfigError("FID needs at least 2 real and 2 generated images: raise num_images")
        return inception_features(self.model, images, self.device)

    def score(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """FID between two uint8 image tensors [N, C, H, W]."""
        return features_fid(self.features(real), self.features(fake))


def features_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of Inception features."""
    return frechet_distance(*statistics(real), *statistics(fake))


def fid_between_folders(
    scorer: FidScorer, real_dir: Path, fake_dir: Path, real_limit: int = 2048
) -> tuple[float, int]:
    """FID of the generated `image_*.png` in `fake_dir` against up to `real_limit` real images."""
    from src.gan.images import load_images

    real = load_images(real_dir, 3)
    if len(real) > real_limit:  # an even spread over the sorted files, the same every run
        real = real[torch.linspace(0, len(real) - 1, real_limit).long().numpy()]
    fake = load_images(fake_dir, 3, real.shape[1], "image_*.png")
    return scorer.score(_channels_first(real), _channels_first(fake)), len(real)


def _channels_first(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, C] (an array or a memory map) -> a uint8 tensor [N, C, H, W]."""
    return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2)
