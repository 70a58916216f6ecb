"""Environment variables the train step reads, set by the compiled pipeline or by Vertex AI."""

SPOT = "LWGAN_SPOT"  # "1" on spot capacity: the step then insists on a checkpoint mirror
TENSORBOARD = "LWGAN_TENSORBOARD"  # the attached Vertex AI TensorBoard's resource name
VERTEX_LOG_DIR = "AIP_TENSORBOARD_LOG_DIR"  # where Vertex AI streams TensorBoard events from
