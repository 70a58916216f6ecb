"""The one-command GPU check: every GPU path of training runs, and how fast beside upstream.

    python -m bench.gpu_check                         # a GPU machine: minutes, no network
    python -m bench.gpu_check --device cpu --quick    # the same code paths on a CPU (a test runs it)

Prints one table and writes JSON (--json). Sections:

    speed     steps/s and peak GPU memory at 64 and 256 px for fp32, bf16 (where the GPU has it
              natively) and fp16: this project's step and upstream lightweight-gan's own
              `Trainer.train`, same GPU and config (the pipeline's compiled defaults); upstream
              has no bf16. Each upstream run is a process of its own.
    resume    a training process killed (SIGKILL) after a checkpoint on the device; the resumed
              run must continue at the saved step
    generate  images/s of the generate step's sampling on the device
    ranks     2 training processes (NCCL on 2 visible GPUs; gloo on a CPU), gradients averaged

It needs torch (any recent CUDA build), torchvision, numpy and Pillow from the machine and
imports nothing of kfp or the Google Cloud clients. lightweight-gan and the other pure-Python
packages training imports come, when the machine lacks them, from bench/gpu_wheels/, which
`python -m bench.gpu_wheels` prepares where a package index can be reached; they are installed
offline into .gpu_check/site, never into the machine's environment.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "bench" / "gpu_wheels"
SITE = ROOT / ".gpu_check" / "site"
# Modules training imports beyond torch, numpy and Pillow (carried by bench/gpu_wheels.py).
NEEDED = ("lightweight_gan", "kornia", "kornia_rs", "einops", "adabelief_pytorch", "tensorboardX")
NEEDED += ("tabulate", "colorama", "tqdm", "google.protobuf")
SIZES, QUICK_SIZES = (64, 256), (32,)


def ensure_packages() -> str:
    """Makes NEEDED importable: installs the carried wheels offline when something is missing."""
    if SITE.is_dir():
        sys.path.insert(0, str(SITE))
    missing = [name for name in NEEDED if not _importable(name)]
    if not missing:
        return "present"
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        raise SystemExit(
            f"missing {', '.join(missing)} and no wheels in {WHEELS}: run "
            "`python -m bench.gpu_wheels` where PyPI can be reached, and bring that folder along"
        )
    # By name from the folder: pip takes each package's wheel that fits this Python.
    names = sorted({wheel.name.split("-")[0] for wheel in wheels})
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    command += ["--find-links", str(WHEELS), "--target", str(SITE)]
    subprocess.run([*command, *names], check=True)
    sys.path.insert(0, str(SITE))
    importlib.invalidate_caches()
    still = [name for name in NEEDED if not _importable(name)]
    if still:
        raise SystemExit(f"still missing after installing {WHEELS}: {', '.join(still)}")
    return f"installed {len(wheels)} wheels into {SITE.relative_to(ROOT)}"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def check_config(size: int, quick: bool):
    """The pipeline's compiled defaults at `size` (what users train); tiny ones for --quick."""
    from src.gan.config import TrainConfig
    from src.gan.training.settings import config_from_params
    from src.params.schema import compiled_defaults

    if quick:
        return TrainConfig(image_size=size, batch_size=2, latent_dim=32, fmap_max=16, aug_prob=0.3)
    fields = set(TrainConfig.__dataclass_fields__)
    values = {k: v for k, v in compiled_defaults().items() if k in fields}
    return config_from_params(**{**values, "image_size": size})


def make_images(folder: Path, size: int, count: int = 96) -> Path:
    """The bundled digits at `size` px: a cleansed array for ours, PNG files for upstream's loader."""
    import numpy as np
    from PIL import Image

    from src.common.image_array_writer import ArrayWriter

    sources = sorted((ROOT / "data" / "sample").glob("digit_*.png"))
    folder.mkdir(parents=True, exist_ok=True)
    writer = ArrayWriter(folder, (size, size, 3))
    for index in range(count):
        with Image.open(sources[index % len(sources)]) as image:
            picture = image.convert("RGB").resize((size, size), Image.BICUBIC)
        writer.append(np.asarray(picture), f"img_{index:04d}.png")
        picture.save(folder / f"img_{index:04d}.png")
    writer.close()
    return folder


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def time_ours(config, data: Path, device, amp: str, warmup: int, steps: int) -> dict[str, Any]:
    """Steps/s and peak memory of this project's step (the train step's own parts)."""
    import torch

    from src.gan import random_state
    from src.gan.images import load_images
    from src.gan.networks.build import build_gan
    from src.gan.training.image_bank import ImageBank
    from src.gan.training.precision import Precision, choose_amp, flush_denormals
    from src.gan.training.step import GanStep

    _reset_peak(device)
    precision = Precision(choose_amp(amp, device), device)
    random_state.seed_all(0)
    bank = ImageBank(load_images(data, 3, config.image_size), 3, 0, device)
    runner = GanStep(build_gan(config, device), bank, config, precision, config.aug_probability(96))
    with flush_denormals(device):
        for index in range(warmup):
            runner(index)
        _sync(device)
        started = time.perf_counter()
        for index in range(warmup, warmup + steps):
            losses = runner(index)
        _sync(device)
        seconds = time.perf_counter() - started
    result = {"steps_per_second": steps / seconds, "peak_gb": _peak_gb(device)}
    result["finite"] = bool(torch.isfinite(torch.tensor([losses.d_loss, losses.g_loss])).all())
    del runner, bank
    return result


def time_upstream(config, data: Path, device_name: str, amp: str, warmup: int, steps: int) -> dict:
    """The same measurement of upstream's `Trainer.train`, in a process of its own."""
    command = [
        sys.executable,
        "-m",
        "bench.gpu_check",
        "--worker",
        "upstream",
        "--device",
        device_name,
    ]
    payload = {"config": _trainer_kwargs(config), "data": str(data), "amp": amp}
    payload |= {"warmup": warmup, "steps": steps}
    run = subprocess.run(
        [*command, json.dumps(payload)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed"}
    return json.loads(run.stdout.rsplit("RESULT ", 1)[1])


def _trainer_kwargs(config) -> dict[str, Any]:
    return {
        "image_size": config.image_size, "batch_size": config.batch_size,
        "gradient_accumulate_every": config.gradient_accumulate_every,
        "latent_dim": config.latent_dim, "fmap_max": config.fmap_max,
        "attn_res_layers": list(config.attn_res_layers), "disc_output_size": config.disc_output_size,
        "aug_prob": config.aug_probability(96), "aug_types": list(config.aug_types),
        "lr": config.learning_rate,
    }  # fmt: skip


def upstream_worker(device_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    import torch

    device = torch.device(device_name)
    if device.type == "cuda":
        import lightweight_gan.lightweight_gan as module
    else:
        from devtools.upstream_cpu import load_upstream_on_cpu

        module = load_upstream_on_cpu()
    torch.manual_seed(0)
    _reset_peak(device)
    with tempfile.TemporaryDirectory() as base:
        trainer = module.Trainer(
            base_dir=base, use_aim=False, amp=payload["amp"] == "fp16", save_every=10**9,
            evaluate_every=10**9, num_image_tiles=3, **payload["config"],
        )  # fmt: skip
        trainer.set_data_src(payload["data"])
        for _ in range(payload["warmup"]):  # step 0 also evaluates and saves
            trainer.train()
        _sync(device)
        started = time.perf_counter()
        for _ in range(payload["steps"]):
            trainer.train()
        _sync(device)
        seconds = time.perf_counter() - started
    return {"steps_per_second": payload["steps"] / seconds, "peak_gb": _peak_gb(device)}


def precisions(device, quick: bool) -> list[str]:
    """fp32 ('off'), bf16 where computed natively (on a CPU by autocast), fp16.

    --quick on a CPU leaves bf16 out: it is the same code path as fp16 without the scaler, the
    test suite trains it, and CPU autocast makes it the slowest row.
    """
    import torch

    from src.gan.training.precision import NATIVE_BF16_CAPABILITY

    if device.type != "cuda":
        return ["off", "fp16"] if quick else ["off", "bf16", "fp16"]
    native = torch.cuda.get_device_capability(device) >= NATIVE_BF16_CAPABILITY
    return ["off", "bf16", "fp16"] if native else ["off", "fp16"]


def speed_rows(device, work: Path, quick: bool) -> list[dict[str, Any]]:
    warmup, steps = (0, 1) if quick else (4, 16)
    rows = []
    for size in QUICK_SIZES if quick else SIZES:
        config = check_config(size, quick)
        data = make_images(work / f"images_{size}", size)
        for amp in precisions(device, quick):
            ours = time_ours(config, data, device, amp, warmup, steps)
            theirs = None
            if amp != "bf16" and (
                amp == "off" or device.type == "cuda"
            ):  # upstream's amp: CUDA fp16
                theirs = time_upstream(config, data, str(device), amp, warmup, steps)
            rows.append({"size": size, "amp": amp, "ours": ours, "upstream": theirs})
            print(f"  speed {size}px {amp}: ours {ours}, upstream {theirs}", flush=True)
    return rows


def train_worker(data: str, model: str, device: str, steps: int, quick: bool) -> None:
    from src.gan.training.loop import train_gan

    config = replace(check_config(_size_of(Path(data)), quick), steps=steps, save_every=2)
    train_gan(Path(data), Path(model), config, device=device, world_size=1)


def _size_of(data: Path) -> int:
    return json.loads((data / "index.json").read_text())["shape"][1]


def kill_and_resume(device, data: Path, work: Path, quick: bool) -> dict[str, Any]:
    """Trains in a process that is SIGKILLed after its first checkpoint, then resumes here."""
    from src.gan.model_folder import CONFIG_NAME, load_checkpoint
    from src.gan.training.loop import train_gan

    model = work / "resume_model"
    command = [
        sys.executable,
        "-m",
        "bench.gpu_check",
        "--worker",
        "train",
        "--device",
        str(device),
    ]
    command += [json.dumps({"data": str(data), "model": str(model), "steps": 50, "quick": quick})]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, killed_at = time.monotonic() + 600, 0
    while time.monotonic() < deadline and process.poll() is None:
        if (model / CONFIG_NAME).is_file():
            killed_at = json.loads((model / CONFIG_NAME).read_text())["step"]
            if killed_at >= 2:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(model)["step"]  # model_config.json may trail a newer checkpoint
    config = replace(check_config(_size_of(data), quick), steps=killed_at + 2, save_every=2)
    result = train_gan(data, model, config, device=str(device), world_size=1)
    return {
        "killed_at_step": killed_at,
        "resumed_from": result.start_step,
        "ended_at": result.end_step,
        "continued_at_saved_step": result.start_step == killed_at > 0,
        "model": str(model),
    }


def generation(device, model: Path, work: Path, quick: bool) -> dict[str, Any]:
    from src.gan.sampling.generate import generate_images

    count = 8 if quick else 64
    generate_images(model, work / "warm", count=2, device=str(device))
    result = generate_images(model, work / "samples", count=count, device=str(device))
    return {"images": result.count, "images_per_second": result.images_per_second}


def ranks(device, data: Path, work: Path, quick: bool) -> dict[str, Any]:
    """2 data-parallel processes (NCCL on GPUs, gloo on a CPU), where that many devices exist."""
    import torch

    from src.gan.model_folder import load_checkpoint
    from src.gan.training.loop import train_gan

    if device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU visible"}
    config = replace(check_config(_size_of(data), quick), steps=2 if quick else 8, save_every=8)
    result = train_gan(data, work / "ranks_model", config, device=device.type, world_size=2)
    saved = load_checkpoint(work / "ranks_model")
    backend = "nccl" if device.type == "cuda" else "gloo"
    return {
        "backend": backend,
        "world_size": saved["world_size"],
        "steps_per_second": result.steps_per_second,
    }


def describe(device) -> dict[str, Any]:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        info |= {"gpu": torch.cuda.get_device_name(device), "capability": f"sm{major}{minor}"}
        info["gpus_visible"] = torch.cuda.device_count()
    info["date"] = time.strftime("%Y-%m-%d")
    return info


def table(report: dict[str, Any]) -> str:
    info = report["machine"]
    lines = [f"GPU check: {info.get('gpu', info['device'])} {info.get('capability', '')}, "
             f"torch {info['torch']}, Python {info['python']}, {info['date']}",
             f"{'size':>5} {'amp':>5} {'ours it/s':>10} {'ours GB':>8} {'upstream it/s':>14} "
             f"{'upstream GB':>12} {'ours/upstream':>14}"]  # fmt: skip
    for row in report["speed"]:
        ours, theirs = row["ours"], row["upstream"] or {}
        ratio = (
            ours["steps_per_second"] / theirs["steps_per_second"]
            if "steps_per_second" in theirs
            else None
        )
        cells = [f"{row['size']:>5}", f"{row['amp']:>5}", f"{ours['steps_per_second']:>10.2f}",
                 _gb(ours["peak_gb"], 8), _rate(theirs, 14), _gb(theirs.get("peak_gb"), 12),
                 f"{ratio:>13.2f}x" if ratio else f"{'n/a':>14}"]  # fmt: skip
        lines.append(" ".join(cells))
    resume, gen, parallel = report["resume"], report["generate"], report["ranks"]
    verdict = "ok" if resume["continued_at_saved_step"] else "FAILED"
    lines.append(f"resume: killed after step {resume['killed_at_step']}, resumed at step "
                 f"{resume['resumed_from']} -> {resume['ended_at']}: {verdict}")  # fmt: skip
    lines.append(f"generate: {gen['images']} images, {gen['images_per_second']:.1f} images/s")
    if "skipped" in parallel:
        lines.append(f"ranks: skipped ({parallel['skipped']})")
    else:
        lines.append(f"ranks: {parallel['world_size']} processes over {parallel['backend']}, "
                     f"{parallel['steps_per_second']:.2f} steps/s")  # fmt: skip
    return "\n".join(lines)


def _gb(value: float | None, width: int) -> str:
    return f"{value:>{width}.2f}" if value is not None else f"{'-':>{width}}"


def _rate(result: dict[str, Any], width: int) -> str:
    if "steps_per_second" in result:
        return f"{result['steps_per_second']:>{width}.2f}"
    return f"{'error' if 'error' in result else 'n/a':>{width}}"


def run_check(device_name: str, quick: bool) -> dict[str, Any]:
    import torch

    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible: run with --device cpu --quick instead")
    report: dict[str, Any] = {"machine": describe(device), "quick": quick}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        work = Path(folder)
        report["speed"] = speed_rows(device, work, quick)
        data = work / f"images_{(QUICK_SIZES if quick else SIZES)[0]}"
        report["resume"] = kill_and_resume(device, data, work, quick)
        report["generate"] = generation(device, Path(report["resume"].pop("model")), work, quick)
        report["ranks"] = ranks(device, data, work, quick)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and a step each (CPU smoke)"
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "gpu_check.json"))
    parser.add_argument("--worker", choices=["upstream", "train"], help=argparse.SUPPRESS)
    parser.add_argument("payload", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    packages = ensure_packages()
    if args.worker == "upstream":
        print("RESULT " + json.dumps(upstream_worker(args.device, json.loads(args.payload))))
        return 0
    if args.worker == "train":
        payload = json.loads(args.payload)
        train_worker(
            payload["data"], payload["model"], args.device, payload["steps"], payload["quick"]
        )
        return 0
    started = time.monotonic()
    report = run_check(args.device, args.quick)
    report["packages"], report["seconds"] = packages, round(time.monotonic() - started, 1)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"written to {args.json} in {report['seconds']:.0f}s")
    return 0 if report["resume"]["continued_at_saved_step"] else 1


if __name__ == "__main__":
    sys.exit(main())
