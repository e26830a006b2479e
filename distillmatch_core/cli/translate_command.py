"""``distillmatch translate --to infrared IN OUT``: V2I-GAN pseudo-infrared for a file or a folder.

A folder is translated file by file into OUT with the same file names (sub-folders too with
``--recursive``); unreadable files are skipped with a warning and counted in the summary.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Tuple

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "translate", help="translate visible images to pseudo-infrared with V2I-GAN",
        description="Translate a visible image, or every image of a folder, to pseudo-infrared with the V2I-GAN "
                    "generator. Output images keep the input size and file names.")
    p.add_argument("--to", dest="target", choices=["infrared"], required=True,
                   help="target modality (only visible -> infrared ships)")
    p.add_argument("input", type=Path, help="an image file or a folder of images")
    p.add_argument("output", type=Path, help="output file (for a file input) or folder")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="V2I-GAN generator file (default: the packaged assets/v2i_gan_generator.pt)")
    p.add_argument("--max-side", type=int, default=0,
                   help="run the generator with the long side at most this many pixels, then resize back "
                        "(default 0: the scale it was trained at)")
    p.add_argument("--recursive", action="store_true", help="also translate images in sub-folders")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run)
    return p


def collect_jobs(source: Path, destination: Path, recursive: bool) -> List[Tuple[Path, Path]]:
    """(input file, output file) pairs; a folder maps to the same relative names under destination."""
    from distillmatch_core.cli.errors import CliError

    if source.is_file():
        if destination.is_dir():
            destination = destination / source.name
        return [(source, destination)]
    if not source.is_dir():
        raise CliError(f"input not found: {source}")
    if destination.exists() and not destination.is_dir():
        raise CliError(f"output must be a folder when the input is a folder: {destination}")
    files = sorted(source.rglob("*") if recursive else source.iterdir())
    jobs = [(f, destination / f.relative_to(source)) for f in files
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not jobs:
        raise CliError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}")
    return jobs


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from distillmatch_core.cli.errors import CliError
    from distillmatch_core.image_io import ImageReadError, read_image, write_image
    from distillmatch_core.thermal_normalization import normalize_to_uint8_gray

    jobs = collect_jobs(args.input, args.output, args.recursive)
    if args.input.is_file() and args.output.suffix.lower() not in IMAGE_SUFFIXES and not args.output.is_dir():
        raise CliError(f"output file needs an image extension ({', '.join(sorted(IMAGE_SUFFIXES))}): {args.output}")

    import torch

    from distillmatch_core.v2i_gan.checkpoint import V2IGanCheckpointError
    from distillmatch_core.v2i_gan.translator import V2IGanTranslator, default_generator_path

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or default_generator_path()
    try:
        translator = V2IGanTranslator.from_checkpoint(checkpoint, max_side=args.max_side or None)
    except (V2IGanCheckpointError, ValueError) as exc:
        raise CliError(str(exc)) from None

    translated, skipped = 0, []
    for src, dst in tqdm(jobs, desc="translate", unit="img", disable=None, file=sys.stderr):
        try:
            image = read_image(src)
        except ImageReadError as exc:
            skipped.append(src)
            tqdm.write(f"warning: skipping {src}: {exc}", file=sys.stderr)
            continue
        if image.dtype.name != "uint8":
            image = normalize_to_uint8_gray(image)  # 16-bit / float visible images: gray is what the GAN sees
        try:
            write_image(dst, translator(image))
        except OSError as exc:
            raise CliError(str(exc)) from None
        translated += 1

    summary = f"translated {translated} of {len(jobs)} image(s) to {args.output}"
    if skipped:
        summary += f"; skipped {len(skipped)} unreadable: " + ", ".join(p.name for p in skipped[:10])
        if len(skipped) > 10:
            summary += ", ..."
    print(summary)
    if translated == 0:
        raise CliError("no image could be translated")
    return 0
