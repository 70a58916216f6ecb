"""Load an exported model with upstream's own `Trainer.load` and generate images.

python -m tests.support.upstream_generate UPSTREAM_DIR NAME LATENT_DIM OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from devtools.upstream_cpu import load_upstream_on_cpu


def main(base_dir: str, name: str, latent_dim: str, out_dir: str) -> None:
    module = load_upstream_on_cpu()
    trainer = module.Trainer(
        name=name, base_dir=base_dir, results_dir=out_dir, latent_dim=int(latent_dim), use_aim=False
    )
    trainer.load(-1)
    folder = trainer.generate(num=0, num_image_tiles=3, checkpoint=trainer.checkpoint_num)
    print(f"steps={trainer.steps} files={len(list(Path(folder).glob('*.jpg')))}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
