"""Trains decompNet (Park & Berg 2016) on decomp_mnist, stage by stage (Appendix B).

    python train.py --flagfile=configs/mnist_quick.flags
    python train.py --flagfile=configs/mnist.flags --model_dir=runs/paper

Rerunning the same command resumes from the last checkpoint in --model_dir (finished stages are
skipped, the running stage restarts its interrupted epoch from the last saved weights and
optimizer state). TensorBoard: `tensorboard --logdir=<model_dir>/logs`.

Every flag but --model is a field of a dataclass in decompnet_tf/config.py, where its default,
help text and bounds are written (`python train.py --help` lists them). The inference flags
(--stop_threshold, --mask_threshold, --box_source, --segmentation_delta) are stored in
config.json for evaluate.py, export.py and predict.py.
"""

from __future__ import annotations

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import (
    BaselineConfig,
    Config,
    DataConfig,
    InferenceConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
)
from decompnet_tf.config_flags import define_flags, from_flags, resolve_settings
from decompnet_tf.console import entry_point

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "decompnet", ["decompnet", "baseline"],
                  "decompnet, or the paper's sliding-window CNN baseline (section 3.1).")
# The inference settings are stored in config.json for evaluate.py, export.py and predict.py.
define_flags(DataConfig, ModelConfig, LossConfig, TrainConfig, BaselineConfig, InferenceConfig)
flags.adopt_module_key_flags(config_flags)  # --help lists them as this script's own.


def config_from_flags() -> Config:
    """Turns the flags into the frozen Config, once. Rerun on a model_dir that holds a run,
    the inference settings stored there (perhaps calibrate_thresholds.py --write's) stay,
    but for those whose flags are given."""
    from decompnet_tf.model_io import Run

    try:  # Through tf.io.gfile: a gs:// model dir keeps its settings too.
        inference, _ = resolve_settings(Run.open(FLAGS.model_dir).config.inference)
    except FileNotFoundError:  # A new run.
        inference = from_flags(InferenceConfig)
    return Config(kind=FLAGS.model, model=from_flags(ModelConfig), loss=from_flags(LossConfig),
                  data=from_flags(DataConfig), train=from_flags(TrainConfig),
                  baseline=from_flags(BaselineConfig), inference=inference)


def main():
    config = config_from_flags()
    if config.kind == "baseline":
        from decompnet_tf.engine.baseline import run_baseline_training

        run_baseline_training(config)
    else:
        from decompnet_tf.engine.loop import run_training

        run_training(config)


if __name__ == "__main__":
    app.run(entry_point(main))
