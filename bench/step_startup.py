"""What the project image saves each step: the committed files' embedded code against the image.

    python -m bench.step_startup [--repeats 3] [--steps download-images,...]

Each step's command runs exactly as compiled, in a container as a backend's launcher
would start it, with the same executor input, both ways:

- embedded: the committed (default) file's command, which pip-installs the step's
  lock from the package index at start and unpacks the embedded code, on the base
  image without the project (the stand-in base here: the PyTorch image cannot be
  pulled on these machines; the data steps' stock Python image neither);
- image: the `compile --image` file's command on the project image, which
  installs nothing.

The work is the same (the bundled sample, 2 training steps, 2 images), so the
difference is start-up cost. Runs interleave (embedded, image, embedded, ...)
on one network with the emulator on its gateway; medians per step, then per run
(the four steps), and the images' sizes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT
from devtools.compiled_steps import executor_input, load_spec

STEPS = ("download-images", "cleanse-images", "train-gan", "generate-images")
PARAMS = {"steps": 2, "image_size": 32, "batch_size": 2, "num_images": 2, "latent_dim": 32,
          "fmap_max": 16, "greyscale": True}  # fmt: skip
# Each step's input artifacts: (input name, producing step, its output name).
INPUTS = {
    "cleanse-images": [("raw_images", "download-images", "images")],
    "train-gan": [("images", "cleanse-images", "cleansed")],
    "generate-images": [("model", "train-gan", "model"), ("real_images", "cleanse-images", "cleansed")],
}  # fmt: skip


def compile_both(image: str, out: Path) -> dict[str, dict]:
    """The Vertex file's spec, compiled the default way and for the image."""
    from src.cli.main import main

    specs = {}
    for variant, extra in (("embedded", []), ("image", ["--image", image])):
        assert main(["compile", "--out-dir", str(out / variant), *extra]) == 0
        specs[variant] = load_spec(out / variant / "lightweight_gan_vertex.yaml")
    return specs


def run_step(client, spec: dict, step: str, image: str, payload: dict, args: dict) -> float:
    """Seconds from container start to its exit; raises with the log if the step failed."""
    container = spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]
    command = [*container["command"], *(json.dumps(payload) if a == "{{$}}" else a for a in container["args"])]  # fmt: skip
    started = time.perf_counter()
    handle = client.containers.run(image, command, detach=True, **args)
    status = handle.wait()["StatusCode"]
    seconds = time.perf_counter() - started
    log = handle.logs().decode(errors="replace")
    handle.remove(force=True)
    if status != 0:
        raise RuntimeError(f"{step} failed ({status}):\n{log[-3000:]}")
    return seconds


def measure(image: str, base: str, repeats: int, steps: list[str]) -> dict[str, dict[str, float]]:
    from src.backends import containers
    from src.backends.emulator import GcsEmulator
    from src.backends.sample import SAMPLE_SOURCE, upload_sample
    from src.params.schema import local_defaults

    client = containers.docker_client()
    work = Path(tempfile.mkdtemp(prefix="step-startup-"))
    specs = compile_both(image, work)
    times: dict[str, dict[str, list[float]]] = {s: {"embedded": [], "image": []} for s in steps}
    network = client.networks.create(
        f"lwgan-bench-{work.name}", labels={containers.LABEL: str(work)}
    )
    network.reload()
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    emulator = GcsEmulator.start(work / "logs", host=gateway)
    try:
        upload_sample(emulator.client())
        net = containers.RunNetwork(network.name, gateway)
        args = containers.container_args(work, net, {"STORAGE_EMULATOR_HOST": emulator.url}, [work])
        params = {**local_defaults(sample=True), **PARAMS, "source_uri": SAMPLE_SOURCE}
        for repeat in range(repeats):
            for step in steps:
                inputs = {name: work / "out" / source / output for name, source, output in INPUTS.get(step, [])}  # fmt: skip
                for variant, on in (("embedded", base), ("image", image)):
                    out = work / ("out" if variant == "embedded" else f"out-{variant}") / step
                    payload = executor_input(specs[variant], step, params, inputs, out)
                    seconds = run_step(client, specs[variant], step, on, payload, args)
                    times[step][variant].append(seconds)
                    print(f"  repeat {repeat + 1}/{repeats} {step:16s} {variant:8s} {seconds:6.2f}s", flush=True)  # fmt: skip
    finally:
        emulator.stop()
        containers.remove_run_containers(work, client)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return {s: {v: statistics.median(t) for v, t in by.items()} for s, by in times.items()}


def image_size(tag: str) -> float:
    from src.backends.containers import docker_client

    return docker_client().images.get(tag).attrs["Size"] / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated, in order")
    args = parser.parse_args(argv)
    from devtools.project_image import build, standin_tag

    image, base = build(), standin_tag()
    steps = args.steps.split(",")
    medians = measure(image, base, args.repeats, steps)
    print(f"step start-up, embedded code vs project image (medians of {args.repeats}):")
    for step in steps:
        embedded, imaged = medians[step]["embedded"], medians[step]["image"]
        print(f"  {step:16s} embedded {embedded:6.2f}s  image {imaged:6.2f}s  saves {embedded - imaged:6.2f}s  ({embedded / imaged:.2f}x)")  # fmt: skip
    total_e = sum(medians[s]["embedded"] for s in steps)
    total_i = sum(medians[s]["image"] for s in steps)
    print(f"  per run ({len(steps)} steps): embedded {total_e:.2f}s  image {total_i:.2f}s  saves {total_e - total_i:.2f}s  ({total_e / total_i:.2f}x)")  # fmt: skip
    base_gb, image_gb = image_size(base), image_size(image)
    print(f"image {image}: {image_gb:.2f} GB; base {base}: {base_gb:.2f} GB; the project adds {(image_gb - base_gb) * 1000:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
