# Project image: every pipeline step runs on it with nothing installed at run time.
# Build and push with cloudbuild.yaml; compile with `python -m src.pipeline compile --image IMAGE`.
# BASE is the pinned PyTorch CUDA image; where no registry is reachable,
# `python -m devtools.project_image build` passes a stand-in made from Debian's packages.
ARG BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Exactly what the steps would install at run time (src/build/locks/, every package pinned).
COPY src/build/locks/ /tmp/locks/
RUN python -m pip install --no-deps -r /tmp/locks/data.txt -r /tmp/locks/gan.txt

WORKDIR /app
COPY src/ /app/src/
ENV PYTHONPATH=/app
RUN python -c "import src.data.cleanse, src.gan.training, src.data.download"
