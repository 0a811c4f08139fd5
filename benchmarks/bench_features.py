"""Feature extraction through the cache against a bare AlexNet forward, in one run.

Prints images per second of (a) ``FeatureCache.get`` on an empty cache (build
the two-digit images, preprocess, forward, write float16 to disk) and (b) a
bare ``alexnet.features`` forward over the same images already preprocessed,
in batches of the same size, and their ratio. With ``--classes K`` it then
times building the features of K classes at the reference sizes (2,000 train
+ 1,000 test images per class).

    python benchmarks/bench_features.py --data-dir ../shared/data [--images 512] [--classes 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from metaplastic.config import DEFAULT_BACKBONE
from metaplastic.data import CLASSES, load_digits
from metaplastic.data.two_digit import build_class, source_fingerprint
from metaplastic.feature_cache import FeatureCache
from metaplastic.features import load_backbone, preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/")
    parser.add_argument("--images", type=int, default=512, help="images for the rate comparison")
    parser.add_argument("--batch", type=int, default=64, help="extraction batch size")
    parser.add_argument("--classes", type=int, default=0,
                        help="also time building K classes at 2,000 train + 1,000 test images")
    args = parser.parse_args()

    digits = load_digits(args.data_dir, download=False)
    backbone = load_backbone(DEFAULT_BACKBONE)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backbone "
          f"{backbone.weights}, digits {digits.source}, batch {args.batch}")
    with torch.inference_mode():  # warm-up: the first forward pays for kernel selection
        warm = build_class(digits, "01", "train", args.batch, seed=0)
        backbone.module(preprocess(warm, backbone.input_style))
    with tempfile.TemporaryDirectory() as folder:
        cache = FeatureCache(folder, backbone, digits_fingerprint=source_fingerprint(digits),
                             batch_size=args.batch)
        start = time.perf_counter()
        cache.get(digits, "38", "train", args.images, seed=0)
        cached_rate = args.images / (time.perf_counter() - start)

        batches = [preprocess(b, backbone.input_style) for b in torch.from_numpy(
            build_class(digits, "38", "train", args.images, seed=0)).split(args.batch)]
        with torch.inference_mode():
            start = time.perf_counter()
            for batch in batches:
                backbone.module(batch)
            bare_rate = args.images / (time.perf_counter() - start)
        print(f"through the cache {cached_rate:7.1f} img/s   bare forward {bare_rate:7.1f} img/s"
              f"   ratio {cached_rate / bare_rate:.3f}   ({args.images} images)")

        if args.classes:
            wanted = [(name, split, n) for name in CLASSES[: args.classes]
                      for split, n in (("train", 2000), ("test", 1000))]
            start = time.perf_counter()
            cache.ensure(digits, wanted, seed=1)
            elapsed = time.perf_counter() - start
            images = sum(n for *_, n in wanted)
            print(f"built {args.classes} classes ({images} images) in {elapsed:.0f} s "
                  f"({images / elapsed:.0f} img/s)")


if __name__ == "__main__":
    main()
