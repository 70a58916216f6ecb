"""Release check: run each compiled step on the versions its image ships, not the test venv's.

Builds one virtual environment per base image in .runtime-check/ with that image's
Python minor version and what the image ships (torch 2.5.1 and torchvision 0.20.1
for the PyTorch image, nothing for python:3.11-slim), then runs the four compiled
step commands from compiled/lightweight_gan_vertex.yaml in order on a tiny set
served by fake-gcs-server. Each command installs exactly its own pip line (the
lock, --no-deps) and imports `src` only from its embedded code.

    python scripts/check_runtime.py     # needs the package index; ~4 GB of downloads

Not run by .ci/run: the PyTorch environment alone downloads ~3.5 GB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.compiled_steps import executor_input, load_spec, metrics_of, run_step  # noqa: E402
from src.backends.emulator import GcsEmulator  # noqa: E402
from src.backends.sample import SAMPLE_DIR, upload_folder  # noqa: E402
from src.build.images import IMAGES  # noqa: E402
from src.params.schema import local_defaults  # noqa: E402
from src.pipeline import COMPILED_DIR, COMPILED_FILES  # noqa: E402

WORK = ROOT / ".runtime-check"
SMALL = {"steps": 2, "latent_dim": 32, "fmap_max": 16, "batch_size": 2, "num_images": 4}
STEPS = (
    ("download-images", "data", {}),
    ("cleanse-images", "data", {"raw_images": ("download-images", "images")}),
    ("train-gan", "gan", {"images": ("cleanse-images", "cleansed")}),
    (
        "generate-images",
        "gan",
        {"model": ("train-gan", "model"), "real_images": ("cleanse-images", "cleansed")},
    ),
)


def build_env(image) -> Path:
    """A venv with the image's Python minor and what the image ships; returns its bin folder."""
    folder = WORK / image.name
    if not (folder / "bin" / "python3").exists():
        python = shutil.which(f"python{image.python}") or sys.executable
        subprocess.run([python, "-m", "venv", str(folder)], check=True)
        if image.ships:
            pip = [str(folder / "bin" / "python3"), "-m", "pip", "install", "--quiet"]
            subprocess.run([*pip, *image.ships], check=True)
    return folder / "bin"


def versions(bin_dir: Path) -> str:
    code = (
        "import sys, importlib.metadata as m\n"
        "names = ['torch', 'torchvision', 'numpy', 'pillow', 'kfp', 'google-cloud-storage']\n"
        "found = [f'{n} {m.version(n)}' for n in names if list(m.distributions(name=n))]\n"
        "print(f'Python {sys.version.split()[0]}; ' + ', '.join(found))"
    )
    return subprocess.run(
        [str(bin_dir / "python3"), "-c", code], capture_output=True, text=True
    ).stdout.strip()


def main() -> int:
    spec = load_spec(COMPILED_DIR / COMPILED_FILES["vertex"])
    bins = {image.name: build_env(image) for image in IMAGES}
    emulator = GcsEmulator.start(WORK / "logs")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url  # the download step reads it
    upload_folder(emulator.client(), SAMPLE_DIR, "runtime-check", "digits/")
    params = {**local_defaults(), **SMALL, "source_uri": "gs://runtime-check/digits/"}
    params["checkpoint_root"] = ""
    outputs: dict[str, Path] = {}
    failed = False
    try:
        for task, image, wiring in STEPS:
            out = WORK / "out" / task
            shutil.rmtree(out, ignore_errors=True)
            inputs = {name: outputs[src] / artifact for name, (src, artifact) in wiring.items()}
            payload = executor_input(spec, task, params, inputs, out)
            started = time.monotonic()
            result = run_step(spec, task, payload, WORK / "empty", bins[image])
            seconds = time.monotonic() - started
            outputs[task] = out
            if result.returncode != 0:
                print(f"{task}: FAILED after {seconds:.0f}s")
                print(result.stdout[-2000:], result.stderr[-4000:], sep="\n")
                failed = True
                break
            name = "images" if task == "download-images" else "metrics"
            print(f"{task}: ok in {seconds:.0f}s on {versions(bins[image])}")
            print(f"  {metrics_of(out, name)}")
    finally:
        emulator.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
