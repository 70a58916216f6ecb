# Project image: every pipeline step runs on it with nothing installed at run time.
# Build and push with cloudbuild.yaml; compile with `python -m src.pipeline compile --image IMAGE`.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The versions in src/runtime.py (DATA_PACKAGES, GAN_PACKAGES) plus the KFP executor.
RUN python -m pip install \
        kfp==2.17.3 \
        google-cloud-storage==3.17.1 \
        pillow==13.0.0 \
        numpy==2.4.6 \
        lightweight-gan==1.2.1 \
        kornia==0.9.0 \
        einops==0.8.2

WORKDIR /app
COPY src/ /app/src/
ENV PYTHONPATH=/app
RUN python -c "import src.data.cleanse, src.gan.training, src.data.download"
