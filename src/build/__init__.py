"""What the compiled pipeline is made of: images, pinned packages, GPUs, shipped code."""
