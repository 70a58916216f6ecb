"""Training: the step, precision, processes, data, checkpoints and the loop that ties them."""
