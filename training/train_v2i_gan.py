"""Train V2I-GAN on the training split, then measure it on the dev split against baselines.

    nice -n 10 python training/train_v2i_gan.py --config training/configs/v2i_gan.yaml \
        --mode paired --max-minutes 8 --output-dir outputs/v2i_gan/paired

Writes to the output directory: ``train.log`` (one JSON line per log interval),
``generator_vi.pt`` (the shippable visible->infrared generator with config + dev metrics),
``training_state.pt`` (all networks and optimisers) and ``dev_metrics.json``.
``--evaluate-only CKPT`` skips training and evaluates an existing generator file.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from distillmatch_core.config import to_dict
from distillmatch_core.data.splits import load_split
from distillmatch_core.v2i_gan.checkpoint import load_generator, save_generator, save_training_state
from distillmatch_core.v2i_gan.config import PAIRED, TRAINING_MODES, V2IGanTrainingConfig, load_training_config
from distillmatch_core.v2i_gan.generator import count_parameters
from distillmatch_core.v2i_gan.trainer import V2IGanTrainer
from distillmatch_core.v2i_gan.training_data import RandomCropBatches
from distillmatch_core.v2i_gan.translation_quality import (
    BASELINES,
    AffineGrayscaleBaseline,
    HistogramMatchedGrayscaleBaseline,
    evaluate_translators,
)
from distillmatch_core.v2i_gan.translator import V2IGanTranslator


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=Path(__file__).parent / "configs" / "v2i_gan.yaml")
    p.add_argument("--mode", choices=TRAINING_MODES, help="override the config's training mode")
    p.add_argument("--max-minutes", type=float, help="override the wall-clock budget")
    p.add_argument("--max-steps", type=int, help="override the step budget")
    p.add_argument("--batch-size", type=int, help="override the batch size")
    p.add_argument("--output-dir", type=Path, help="override the output directory")
    p.add_argument("--threads", type=int, help="override torch's thread count")
    p.add_argument("--data-source", type=Path, help="manifest CSV or pair folder (default: shared data)")
    p.add_argument("--evaluate-only", type=Path, metavar="CKPT", help="only evaluate this generator on dev")
    p.add_argument("--no-eval", action="store_true", help="skip the dev evaluation after training")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> V2IGanTrainingConfig:
    cfg = load_training_config(args.config)
    if args.mode:
        cfg.mode = args.mode
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    if args.max_steps is not None:
        cfg.max_steps = args.max_steps
    if args.batch_size:
        cfg.batch_size = args.batch_size
    if args.output_dir:
        cfg.output_dir = str(args.output_dir)
    if args.threads:
        cfg.num_threads = args.threads
    if args.data_source:
        cfg.data.source = str(args.data_source)
    cfg.__post_init__()
    return cfg


def train(cfg: V2IGanTrainingConfig, out_dir: Path) -> tuple:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t_load = time.time()
    batches = RandomCropBatches.from_config(cfg.data)
    print(f"loaded {len(batches.pairs)} {cfg.data.split} pairs in {time.time() - t_load:.1f}s", flush=True)
    trainer = V2IGanTrainer(cfg)
    print(f"mode={cfg.mode} G_VI params={count_parameters(trainer.g_vi)} "
          f"total trainable={sum(p.numel() for p in trainer.parameters() if p.requires_grad)}", flush=True)
    paired = cfg.mode == PAIRED
    start = time.time()
    step = 0
    running: dict = {}
    with open(out_dir / "train.log", "a", encoding="utf-8") as log:
        while step < cfg.max_steps and (time.time() - start) < cfg.max_minutes * 60:
            visible, infrared = batches.batch(cfg.batch_size, rng, paired=paired)
            losses = trainer.step(visible, infrared)
            step += 1
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + v
            if step % cfg.log_every == 0:
                record = {"step": step, "elapsed_s": round(time.time() - start, 1),
                          **{k: round(v / cfg.log_every, 5) for k, v in running.items()}}
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(" ".join(f"{k}={v}" for k, v in record.items()), flush=True)
                running = {}
    elapsed = time.time() - start
    return trainer, step, elapsed


def evaluate(generator_path: Path, short_side: int, data_source: str = "") -> dict:
    generator, info = load_generator(generator_path)
    source = Path(data_source) if data_source else None
    train_pairs = load_split("train", source)
    affine = AffineGrayscaleBaseline.fit(train_pairs, short_side)
    # Dev images are resized to the training short side below, so the GAN runs at that scale unchanged.
    translators = {"v2i_gan": V2IGanTranslator(generator, max_side=None), **BASELINES,
                   "affine_grayscale_fit_on_train": affine,
                   "histogram_matched_grayscale": HistogramMatchedGrayscaleBaseline.fit(train_pairs, short_side)}
    pairs = load_split("dev", source)
    results = evaluate_translators(pairs, translators, short_side=short_side)
    return {"num_pairs": len(pairs), "short_side": short_side, "generator": str(generator_path),
            "mode": info.get("metadata", {}).get("mode"),
            "affine_baseline": {"gain": affine.gain, "offset": affine.offset}, "results": results}


def print_summary(report: dict) -> None:
    print(f"dev split: {report['num_pairs']} pairs at short side {report['short_side']}")
    print(f"{'method':<32}{'L1':>8}{'SSIM':>8}{'int.EMD':>9}{'grad.EMD':>9}")
    for name, res in report["results"].items():
        m = res["mean"]
        print(f"{name:<32}{m['l1']:>8.2f}{m['ssim']:>8.3f}{m['intensity_emd']:>9.2f}{m['gradient_emd']:>9.3f}")


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = resolve_config(args)
    torch.set_num_threads(cfg.num_threads)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.evaluate_only:
        report = evaluate(args.evaluate_only, cfg.data.short_side, cfg.data.source)
        print_summary(report)
        (out_dir / "dev_metrics.json").write_text(json.dumps(report, indent=1))
        return 0

    trainer, steps, elapsed = train(cfg, out_dir)
    save_training_state(out_dir / "training_state.pt", trainer, steps, elapsed)
    # 4:3 frames at the training short side; the translator downsizes larger inputs to this.
    long_side = int(round(cfg.data.short_side * 4 / 3))
    metadata = {
        "mode": cfg.mode, "steps": steps, "training_seconds": round(elapsed, 1),
        "threads": cfg.num_threads, "training_short_side": cfg.data.short_side,
        "training_long_side": long_side, "split": cfg.data.split, "training_config": to_dict(cfg),
    }
    gen_path = save_generator(out_dir / "generator_vi.pt", trainer.g_vi, metadata=metadata)
    print(f"trained {steps} steps in {elapsed / 60:.1f} min -> {gen_path}", flush=True)
    if not args.no_eval:
        report = evaluate(gen_path, cfg.data.short_side, cfg.data.source)
        print_summary(report)
        (out_dir / "dev_metrics.json").write_text(json.dumps(report, indent=1))
        metadata["dev_metrics"] = {name: res["mean"] for name, res in report["results"].items()}
        save_generator(gen_path, trainer.g_vi, metadata=metadata)
    return 0


if __name__ == "__main__":
    sys.exit(main())
