"""The GAN: upstream lightweight-gan's networks, training, sampling, scores and what a person watches.

Top-level modules are shared by every subpackage (config, random streams, the
model folder, the images); `networks` builds upstream's model; `training`,
`sampling`, `scoring` and `watching` use it and never import each other upwards
(tests/test_architecture.py holds the order).
"""
