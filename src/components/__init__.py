"""The pipeline's steps, one `@dsl.component` per module."""

from src.components.cleanse_images import cleanse_images
from src.components.download_images import download_images
from src.components.generate_images import generate_images
from src.components.train_gan import train_gan

__all__ = [
    "cleanse_images",
    "download_images",
    "generate_images",
    "train_gan",
]
