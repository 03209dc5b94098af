"""Trains decompNet (Park & Berg 2016) on decomp_mnist, stage by stage (Appendix B).

    python train.py --flagfile=configs/mnist_quick.flags
    python train.py --flagfile=configs/mnist.flags --model_dir=runs/paper

Rerunning the same command resumes from the last checkpoint in --model_dir (finished stages are
skipped, the running stage restarts its interrupted epoch from the last saved weights and
optimizer state). TensorBoard: `tensorboard --logdir=<model_dir>/logs`.
"""

from __future__ import annotations

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_enum("model", "decompnet", ["decompnet", "baseline"],
                  "decompnet, or the paper's sliding-window CNN baseline (section 3.1).")
# Data.
flags.DEFINE_string("dataset", "decomp_mnist/small", "TFDS dataset/config to train on.")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default ~/tensorflow_datasets).")
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_integer("train_examples", 0, "Use only the first N training images (0: all).")
flags.DEFINE_integer("max_per_class", 10, "Objects per category kept in the targets.")
# Model (section 2, Appendix B).
flags.DEFINE_list("image_size", ["100", "100"], "Input height,width.")
flags.DEFINE_integer("num_classes", 3, "Categories (decomp_mnist: 3, for the digits 3, 6, 9).")
flags.DEFINE_integer("steps", 11, "Recurrent steps T per category (max objects + the stop map).")
flags.DEFINE_boolean("full_resolution", False, "Maps at full input size ('decomp full').")
flags.DEFINE_enum("backbone", "mnist", ["mnist", "vgg16"],
                  "Category network: the paper's MNIST network (grayscale) or Appendix A's VGG16 "
                  "with deconvolutions (RGB; decomp_kitti).")
flags.DEFINE_string("backbone_weights", "imagenet",
                    "vgg16 only: 'imagenet' (from the Keras cache, never downloaded; random "
                    "with a warning when absent), a path to the no-top .h5 file, or 'none'.")
flags.DEFINE_integer("instance_pool", 1,
                     "Average-pool the category maps by this factor before the instance "
                     "network (KITTI: 4 keeps its recurrent and box layers small).")
flags.DEFINE_boolean("category_skips", False, "Encoder-decoder skips in CategoryNet (or the "
                     "FCN skips from VGG16's pooling layers with --backbone=vgg16).")
flags.DEFINE_integer("instance_units", 2048, "Units of each fully connected recurrent layer.")
flags.DEFINE_integer("instance_filters", 32, "Filters of the InstanceCell's deconvolutions.")
flags.DEFINE_boolean("instance_skips", False, "Encoder-decoder skips inside the InstanceCell.")
flags.DEFINE_boolean("instance_decoder_norm", False,
                     "Batch norm in the InstanceCell's decoder (Appendix B; off: see the cell).")
flags.DEFINE_enum("instance_activation", "sigmoid", ["sigmoid", "linear"],
                  "Output of the instance maps. sigmoid saturates under the L2 loss and can "
                  "collapse to all-zero maps; linear does not (maps are clipped to [0, 1] for "
                  "detection).")
flags.DEFINE_enum("instance_recurrence", "rnn", ["rnn", "lstm", "convlstm"],
                  "Recurrent bottleneck: the paper's fully connected RNN, or section 5's LSTM "
                  "and convolutional LSTM.")
flags.DEFINE_boolean("stop_head", False,
                     "Learned stop signal: a sigmoid on the recurrent state per step, trained "
                     "with cross-entropy (not in the paper); replaces the peak threshold.")
flags.DEFINE_boolean("instance_gated", False,
                     "Instance maps as gated selections of the category map: "
                     "sigmoid(cell output) * clip(category map, 0, 1) (not in the paper).")
flags.DEFINE_integer("box_hidden", 4096, "Hidden units of the box regressor (section 2.3).")
flags.DEFINE_float("box_dropout", 0.5, "Dropout rate of the box regressor.")
flags.DEFINE_float("segmentation_delta", 0.1, "delta of the segmentation score, eq. 6.")
# Loss.
flags.DEFINE_float("category_p", 0.1, "p of D_p (eq. 2) in the category loss.")
flags.DEFINE_float("instance_p", 0.1, "p of D_p in the instance loss and the matching cost.")
flags.DEFINE_float("lam", 1.0, "lambda: weight of the matched-instance term after warm-up.")
flags.DEFINE_float("gamma", 1.0, "gamma: weight of the summed-map (stop) term after warm-up.")
flags.DEFINE_float("warmup_weight", 0.3, "lambda = gamma during a stage's first epoch.")
flags.DEFINE_float("eta", 1.0, "eta: weight of the box-regression term.")
flags.DEFINE_enum("instance_loss", "l2", ["l2", "bce"],
                  "Matched instance-map loss: eq. 2's weighted L2, or section 5's pixel-wise "
                  "cross-entropy (needs --instance_activation=sigmoid).")
flags.DEFINE_boolean("size_weighting", False,
                     "Weigh each matched instance inversely to its area (section 5).")
flags.DEFINE_float("stop_weight", 1.0, "Weight of the stop head's cross-entropy.")
# Baseline (--model=baseline): patch classifier + sliding windows + NMS, section 3.1.
flags.DEFINE_integer("patch_size", 32, "Baseline: classifier input size in px.")
flags.DEFINE_integer("positives_per_object", 2, "Baseline: positive patches per object.")
flags.DEFINE_integer("negatives_per_image", 8, "Baseline: background patches per image.")
flags.DEFINE_float("window_min_size", 10.0, "Baseline: smallest window side in px.")
flags.DEFINE_float("window_max_size", 56.0, "Baseline: largest window side in px.")
flags.DEFINE_integer("window_step", 5, "Baseline: window stride in px (paper: 3 or 5).")
flags.DEFINE_float("nms_iou", 0.3, "Baseline: NMS IoU threshold (paper: 0.3).")
# Schedule.
flags.DEFINE_string("model_dir", "runs/default", "Checkpoints, config.json, logs, model.")
flags.DEFINE_list("stages", ["1", "2"], "Stages to run in order: 1 category, 2 instance, 3 all.")
flags.DEFINE_list("epochs", ["1", "1"], "Epochs per stage.")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "Optimizer (SGD with momentum default).")
flags.DEFINE_list("learning_rates", ["0.01", "0.01"], "Learning rate per stage.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("lr_decay", 1.0, "Learning-rate factor applied after every epoch.")
flags.DEFINE_float("clipnorm", 10.0, "Gradient norm clipping (0: off).")
flags.DEFINE_integer("checkpoint_steps", 0, "Also checkpoint every N steps (0: per epoch).")
flags.DEFINE_string("init_category_from", "",
                    "Start from the category network of this earlier run's model_dir (then "
                    "train --stages=2 only): instance-network variants share one stage 1.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 1 progress bar, 2 one line per epoch.")


def config_from_flags():
    """Turns the flags into the frozen Config, once."""
    from decompnet_tf.config import (
        BaselineConfig,
        Config,
        DataConfig,
        LossConfig,
        ModelConfig,
        TrainConfig,
    )

    ints = lambda xs: tuple(int(x) for x in xs)  # noqa: E731
    return Config(
        kind=FLAGS.model,
        model=ModelConfig(
            num_classes=FLAGS.num_classes, steps=FLAGS.steps,
            image_size=ints(FLAGS.image_size), full_resolution=FLAGS.full_resolution,
            category_skips=FLAGS.category_skips, instance_units=FLAGS.instance_units,
            instance_filters=FLAGS.instance_filters, instance_skips=FLAGS.instance_skips,
            instance_decoder_norm=FLAGS.instance_decoder_norm,
            instance_activation=FLAGS.instance_activation,
            instance_recurrence=FLAGS.instance_recurrence, stop_head=FLAGS.stop_head,
            instance_gated=FLAGS.instance_gated,
            box_hidden=FLAGS.box_hidden, box_dropout=FLAGS.box_dropout,
            segmentation_delta=FLAGS.segmentation_delta, backbone=FLAGS.backbone,
            backbone_weights=FLAGS.backbone_weights if FLAGS.backbone == "vgg16" else "",
            instance_pool=FLAGS.instance_pool),
        loss=LossConfig(category_p=FLAGS.category_p, instance_p=FLAGS.instance_p,
                        lam=FLAGS.lam, gamma=FLAGS.gamma, warmup_weight=FLAGS.warmup_weight,
                        eta=FLAGS.eta, instance_loss=FLAGS.instance_loss,
                        size_weighting=FLAGS.size_weighting, stop_weight=FLAGS.stop_weight),
        data=DataConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                        batch_size=FLAGS.batch_size, max_per_class=FLAGS.max_per_class,
                        train_examples=FLAGS.train_examples, seed=FLAGS.seed),
        train=TrainConfig(
            model_dir=FLAGS.model_dir, stages=ints(FLAGS.stages), epochs=ints(FLAGS.epochs),
            optimizer=FLAGS.optimizer,
            learning_rates=tuple(float(x) for x in FLAGS.learning_rates),
            momentum=FLAGS.momentum, lr_decay=FLAGS.lr_decay, clipnorm=FLAGS.clipnorm,
            checkpoint_steps=FLAGS.checkpoint_steps,
            init_category_from=FLAGS.init_category_from, strategy=FLAGS.strategy, tpu=FLAGS.tpu,
            seed=FLAGS.seed, verbose=FLAGS.verbose),
        baseline=BaselineConfig(
            patch_size=FLAGS.patch_size, positives_per_object=FLAGS.positives_per_object,
            negatives_per_image=FLAGS.negatives_per_image, min_size=FLAGS.window_min_size,
            max_size=FLAGS.window_max_size, step=FLAGS.window_step, nms_iou=FLAGS.nms_iou),
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    try:
        if config.kind == "baseline":
            from decompnet_tf.engine.baseline import run_baseline_training

            run_baseline_training(config)
        else:
            from decompnet_tf.engine.loop import run_training

            run_training(config)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from None


if __name__ == "__main__":
    app.run(main)
