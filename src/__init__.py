"""Lightweight GAN on Kubeflow Pipelines: download, cleanse, train, generate."""

__version__ = "0.1.0"
