"""What a person watches while a GAN trains: loss history, progress frames, TensorBoard, the page."""
