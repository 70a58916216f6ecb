"""What each pipeline parameter means, for people: CLI help, the pipeline UIs, the README table.

Kept apart from schema.py so that the pipeline's steps, which only check values,
do not ship this prose (each compiled file has a size budget).
"""

from __future__ import annotations

from src.params import rules

DESCRIPTIONS: dict[str, str] = {
    "source_uri": "gs://BUCKET/PREFIX of image objects, or of one .zip/.tar/.tar.gz archive object",
    "image_size": "side of the training images in pixels: a power of two, 32 to 1024",
    "batch_size": "images per micro-batch (per training process); the cleanse step fails if fewer "
          "images survive",
    "gradient_accumulate_every": "micro-batches per optimizer step",
    "steps": "training steps",
    "learning_rate": "Adam learning rate of G and D",
    "latent_dim": "size of the latent vector",
    "fmap_max": "widest feature map",
    "attn_res_layers": 'comma-separated resolutions with linear attention, e.g. "32,64"; "" for none',
    "aug_prob": "differentiable augmentation probability, 0 to 1; -1: upstream's automatic value",
    "aug_types": f"comma-separated augmentations: {', '.join(rules.AUG_TYPES)}",
    "disc_output_size": "discriminator output grid: 1 or 5",
    "dual_contrast_loss": "dual contrastive loss (needs disc_output_size=1)",
    "antialias": "blur when up- and downsampling",
    "transparent": "keep alpha: cleanse to RGBA and train a 4-channel GAN",
    "greyscale": "cleanse to one grey channel and train a 1-channel GAN",
    "save_every": "checkpoint interval in steps",
    "checkpoint_minutes": "also checkpoint once this many minutes passed since the last save (what a "
    "preemption that allows no save loses, as on open-source KFP); 0: only save_every",
    "seed": "training and generation seed",
    "amp": "mixed precision: auto (bf16 where the GPU has it, else fp16; off on CPUs), bf16, fp16, off",
    "num_images": "images to generate",
    "generator": "raw, ema, or auto (EMA once upstream has averaged it, after step 20,000)",
    "download_workers": "parallel downloads",
    "near_duplicate_distance": "dHash bit distance under which images count as near-duplicates; -1: off",
    "train_processes": "data-parallel training processes; 0: one per GPU of the train task (1 on a CPU)",
    "fid_weights_uri": "gs://.../inception_v3_google-*.pth (torchvision's weights) to also log FID; empty: SWD only",
    "checkpoint_root": "gs:// folder (or absolute path) that keeps the latest checkpoint so that retries and "
          "resumed runs continue; empty: mirror/ beside a gs:// model artifact. One folder per training run",
    "resume_from": "a model's checkpoint.pt (gs:// or an absolute path) to fine-tune on these images "
    "when this run has no checkpoint of its own; empty: train from scratch",
}  # fmt: skip
