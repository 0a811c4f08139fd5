"""The feature cache: the features of each (class, split) on disk, extracted once.

Features are keyed by everything they depend on (the backbone's fingerprint, the digits, the
class, split, image count and dataset seed, the preprocessing and the extraction version), stored
in float16 with their checksum, and rebuilt when damaged (docs/features.md, "The cache").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from metaplastic.data.two_digit import build_class
from metaplastic.features import EXTRACTION_VERSION, FEATURE_DIM, Backbone, extract, file_sha256


class CacheError(RuntimeError):
    """The feature cache folder cannot be used; the message says why."""


class FeatureCache:
    """Features of each (class, split) on disk, keyed by everything they depend on.

    Each entry is ``<key>.npy`` (float16 ``[n, 9216]``, read by memory map)
    plus ``<key>.json`` (its settings and a SHA-256 of the array file). Both
    are written to a temporary file and renamed, the ``.json`` last, so an
    entry exists only once complete; an entry whose checksum, shape or
    header does not match is rebuilt.
    """

    def __init__(self, root: str | os.PathLike, backbone: Backbone, *, digits_fingerprint: str,
                 batch_size: int | None = None, device: str | torch.device = "cpu"):
        self.root = Path(root).expanduser()
        self.backbone = backbone
        self.digits_fingerprint = digits_fingerprint
        self.device = device
        self.device_type = torch.device(device).type
        # A GPU wants large batches (one 227x227x3 image is 0.6 MB in float32; 512 take 316 MB).
        self.batch_size = batch_size or (64 if self.device_type == "cpu" else 512)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-", delete=True)
            probe.close()
        except OSError as error:
            raise CacheError(f"feature cache folder {self.root} is not writable ({error.strerror}); "
                             "choose another with --cache-dir or METAPLASTIC_CACHE") from None

    def settings(self, name: str, split: str, n: int, seed: int) -> dict:
        """Everything an entry depends on; its hash is the entry's key.

        Extraction runs in float32 on the cache's device; features computed on another kind of
        device differ in their last bits (other convolution algorithms), so the device type is
        part of the key. CPU entries, the only ones before that was recorded, leave it out and
        keep their keys.
        """
        settings = {"class": name, "split": split, "images": n, "dataset_seed": seed,
                    "digits": self.digits_fingerprint, "backbone": self.backbone.weights,
                    "backbone_fingerprint": self.backbone.fingerprint,
                    "preprocessing": self.backbone.preprocessing,
                    "extraction_version": EXTRACTION_VERSION, "dtype": "float16"}
        if self.device_type != "cpu":
            settings["extraction"] = {"device": self.device_type, "precision": "float32"}
        return settings

    def key(self, name: str, split: str, n: int, seed: int) -> str:
        text = json.dumps(self.settings(name, split, n, seed), sort_keys=True)
        return f"{name}-{split}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"

    def load(self, name: str, split: str, n: int, seed: int) -> np.ndarray | None:
        """The cached features (a read-only memory map), or ``None`` if absent or damaged."""
        key = self.key(name, split, n, seed)
        array_path, meta_path = self.root / f"{key}.npy", self.root / f"{key}.json"
        try:
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict) or meta.get("sha256") != file_sha256(array_path):
                return None   # damaged or foreign entry: built again
            features = np.load(array_path, mmap_mode="r")
        except (OSError, ValueError, EOFError):
            return None
        if features.shape != (n, FEATURE_DIM) or features.dtype != np.float16:
            return None
        return features

    def store(self, name: str, split: str, n: int, seed: int, features: np.ndarray) -> np.ndarray:
        key = self.key(name, split, n, seed)
        array_path, meta_path = self.root / f"{key}.npy", self.root / f"{key}.json"
        meta_path.unlink(missing_ok=True)  # the old entry stops counting before it is replaced
        _atomic_write(array_path, lambda handle: np.save(handle, features.astype(np.float16)))
        meta = self.settings(name, split, n, seed) | {
            "sha256": file_sha256(array_path), "extracted_on": {"device": self.device_type,
                                                            "precision": "float32"}}
        _atomic_write(meta_path, lambda handle: handle.write(json.dumps(meta, indent=1).encode()))
        return np.load(array_path, mmap_mode="r")

    def get(self, digits, name: str, split: str, n: int, seed: int, on_batch=None) -> np.ndarray:
        """Features of (class, split): from disk, or built, stored and returned."""
        cached = self.load(name, split, n, seed)
        return cached if cached is not None else self._build(digits, name, split, n, seed, on_batch)

    def _build(self, digits, name, split, n, seed, on_batch=None) -> np.ndarray:
        images = build_class(digits, name, split, n, seed)
        features = extract(self.backbone, images, batch_size=self.batch_size, device=self.device,
                           on_batch=on_batch)
        return self.store(name, split, n, seed, features)

    def ensure(self, digits, wanted: Iterable[tuple[str, str, int]], seed: int,
               progress: bool = True) -> dict[tuple[str, str], np.ndarray]:
        """Features of every (class, split, n) in ``wanted``, extracting what is not on disk.

        Entries already on disk are reused, so an interrupted run resumes with
        the classes not yet done. A progress bar shows images per second.
        """
        found, missing = {}, []
        for name, split, n in wanted:
            cached = self.load(name, split, n, seed)
            if cached is None:
                missing.append((name, split, n))
            else:
                found[(name, split)] = cached
        total = sum(n for _, _, n in missing)
        with _progress(progress and total > 0) as bar:
            task = bar.add_task("extracting features", total=total)
            for name, split, n in missing:
                bar.update(task, description=f"features {name} {split}")
                found[(name, split)] = self._build(digits, name, split, n, seed,
                                                   on_batch=lambda k: bar.advance(task, k))
        return found


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # the cache may be shared between users of a machine
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    class ImagesPerSecond(ProgressColumn):
        def render(self, task):
            return f"{task.speed:6.0f} img/s" if task.speed else "   -- img/s"

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    ImagesPerSecond(), TimeRemainingColumn(), disable=not enabled)
