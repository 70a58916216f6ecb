"""The GAN: upstream lightweight-gan's networks, training, checkpoints, sampling and scores."""
