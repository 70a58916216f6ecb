"""Where the pipeline runs: kfp.local with a GCS emulator, Vertex AI, a KFP endpoint."""
