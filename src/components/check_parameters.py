"""Step 0: check every pipeline parameter before any byte is downloaded."""

from src.build.embedded_code import project_component
from src.build.images import CHECK_PACKAGES, DATA_IMAGE


@project_component(base_image=DATA_IMAGE, packages=CHECK_PACKAGES)
def check_parameters(
    source_uri: str,
    image_size: int = 256,
    batch_size: int = 10,
    gradient_accumulate_every: int = 4,
    steps: int = 10000,
    learning_rate: float = 2e-4,
    latent_dim: int = 256,
    fmap_max: int = 512,
    attn_res_layers: str = "32",
    aug_prob: float = -1.0,
    aug_types: str = "translation,cutout",
    disc_output_size: int = 1,
    dual_contrast_loss: bool = False,
    antialias: bool = False,
    transparent: bool = False,
    save_every: int = 1000,
    seed: int = 0,
    amp: str = "auto",
    num_images: int = 64,
    generator: str = "auto",
    download_workers: int = 32,
    near_duplicate_distance: int = -1,
    train_processes: int = 0,
    fid_weights_uri: str = "",
    checkpoint_root: str = "",
):
    """Fails in seconds, naming every bad value and its fix, when a value typed into a UI is wrong.

    The signature mirrors src/params/schema.py (a test holds them equal).
    """
    values = dict(locals())
    from src.params.values import check_values

    check_values(values)
    print(f"all {len(values)} parameters are valid")
