"""Step 2: cleanse raw images into an equal-size training set."""

from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from src.build.embedded_code import project_component
from src.build.images import DATA


@project_component(base_image=DATA.image, packages=DATA.lock())
def cleanse_images(
    raw_images: Input[Dataset],
    cleansed: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
    contact_sheet: Output[HTML],
    image_size: int,
    transparent: bool,
    greyscale: bool,
    near_duplicate_distance: int,
    mode: str = "RGB",
    min_side: int = 0,
    min_images: int = 1,
    max_pixels: int = 64_000_000,
):
    """Drops broken, tiny and duplicate images; one colour mode; one size.

    Args:
        raw_images: output of download_images.
        cleansed: images.npy (uint8 [N, image_size, image_size, channels]), index.json
            (names and sources, in order), cleanse_report.json.
        metrics: kept and dropped counts by reason.
        report: the same as a table, with example file names.
        contact_sheet: a few kept and dropped images per reason.
        mode: RGB, RGBA or L (transparent and greyscale choose RGBA and L).
        min_side: drop images whose short side is below this (0: image_size / 2).
        min_images: fail if fewer images survive (set to the training batch size).
        max_pixels: refuse images with more pixels (decompression bombs).
    """
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.common.artifacts import write_metrics_file
    from src.common.step_logging import configure_logging
    from src.data.cleanse import GREY_ADVICE, CleanseSettings, TooFewImagesError, cleanse_inputs
    from src.data.contact_sheet import contact_sheet_html
    from src.data.layout import raw_inputs

    configure_logging()
    mode = "RGBA" if transparent else "L" if greyscale else mode
    settings = CleanseSettings(
        image_size=image_size,
        mode=mode,
        min_side=min_side,
        min_images=min_images,
        near_duplicate_distance=near_duplicate_distance,
        max_pixels=max_pixels,
    )
    inputs, out_dir = raw_inputs(Path(raw_images.path)), Path(cleansed.path)

    def publish(result) -> None:
        """The metrics, the Markdown report and the contact sheet: also when too few survived."""
        metrics.log_metric("kept", result.kept)
        for reason, count in sorted(result.dropped.items()):
            metrics.log_metric(f"dropped_{reason}", count)
        metrics.log_metric("images_per_second", round(result.images_per_second, 1))
        metrics.log_metric("all_grey", int(result.all_grey))
        Path(report.path).write_text(result.markdown())
        advice = GREY_ADVICE.replace("**", "") if result.all_grey else ""
        Path(contact_sheet.path).write_text(
            contact_sheet_html(
                inputs, out_dir, result.examples, result.dropped, result.sources, advice
            )
        )
        write_metrics_file(metrics)

    try:
        result = cleanse_inputs(inputs, out_dir, settings, where=raw_images.uri)
    except TooFewImagesError as error:
        publish(error.report)
        raise
    publish(result)
    cleansed.metadata.update({"image_count": result.kept, "image_size": image_size, "mode": mode})
    cleansed.metadata["work_seconds"] = time.monotonic() - started
