"""Where one training step's time goes, stage by stage: the input pipeline, the category
network, the instance network's T steps, the matching, the losses, the optimizer and the
metrics, beside the whole train_step as the training loop runs it (with and without XLA), and
what the loop adds per step (Keras's fit, validation, checkpoints).

    python benchmarks/step_profile.py --flagfile=configs/mnist_quick.flags

Any train.py flag file works (the benchmark defines the same flags). The parts run on one batch
of the training split (decomp_mnist as `make_dataset` gives it; a random batch of `--objects`
objects per image when the dataset is not built), each compiled with tf.function as the trainer
compiles its step, after `--warmup` untimed calls. Each round times every part in turn and the
median round is reported, so a load change on a shared machine hits the parts alike. Every part
gets its wall time and this process's CPU time (all its threads): on a machine shared with other
work the CPU time is the steadier measure of the work a part does. Parts run alone, so they need
not add up to the whole: TensorFlow overlaps independent ops of one step.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from unittest import mock

from absl import app, flags
from train_bench import (  # benchmarks/: the script's folder is on sys.path
    FLAGS,
    compiled_trainer,
    pooled_targets,
    random_batch,
)

from decompnet_tf.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from decompnet_tf.config_flags import from_flags

flags.DEFINE_integer("rounds", 3, "Rounds of timing (the median round is reported).",
                     lower_bound=1)
flags.DEFINE_integer("pipeline_batches", 50, "Batches drawn per input-pipeline measurement.",
                     lower_bound=1)
flags.DEFINE_integer("objects", 7, "Objects per image of the random batch (no dataset).",
                     lower_bound=0)
flags.DEFINE_bool("bench_xla", True, "Also time the whole step XLA-compiled (graph solver).")
flags.DEFINE_bool("bench_loop", True, "Also time Keras's fit per step, validation and a "
                  "checkpoint.")


def _sync(result):
    """Waits for `result` (any nest of tensors) by reading one of its values."""
    import tensorflow as tf

    leaves = [x for x in tf.nest.flatten(result) if x is not None]
    if leaves:
        float(tf.reshape(leaves[0], [-1])[0])
    return result


def clock() -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds over all its threads)."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float], n: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds per call of `n` calls since `start` (a `clock()`)."""
    return tuple((now - then) / n for now, then in zip(clock(), start))


def medians(samples: list) -> tuple[float, float]:
    """The median wall and the median CPU time of (wall, CPU) samples."""
    return tuple(statistics.median(column) for column in zip(*samples))


def median_times(parts: dict, rounds: int, iters: int, warmup: int) -> dict:
    """{name: (wall, CPU) seconds per call}: the medians over `rounds` of the mean of `iters`
    calls, each part timed in turn within a round, after `warmup` untimed calls of each."""
    for fn in parts.values():
        for _ in range(warmup):
            _sync(fn())
    times = {name: [] for name in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            start = clock()
            for _ in range(iters):
                result = fn()
            _sync(result)
            times[name].append(since(start, iters))
    return {name: medians(t) for name, t in times.items()}


def dataset_ready(data_cfg: DataConfig) -> bool:
    """Whether the run's TFDS dataset is built (this benchmark never builds one)."""
    from decompnet_tf.data.builders import open_builder

    try:
        return open_builder(data_cfg.dataset, data_cfg.data_dir, prepare=False).is_prepared()
    except Exception:  # An unknown name or version: the same answer, not built here.
        return False


def pipeline_rate(data_cfg, net) -> tuple:
    """((wall, CPU) seconds per batch of the training pipeline alone, the pipeline, its first
    batch)."""
    from decompnet_tf.data.pipeline import make_dataset, num_examples

    ds = make_dataset(data_cfg, "train", net.num_classes, net.map_size, training=True,
                      repeat=True, image_size=net.image_size, instance_size=net.instance_size)
    it = iter(ds)
    first = next(it)
    # A whole epoch first, as most of training sees the pipeline: its shuffle buffer and
    # prefetch full, its cache (if any) filled.
    for _ in range(FLAGS.warmup + num_examples(data_cfg, "train") // data_cfg.batch_size):
        next(it)
    samples = []
    for _ in range(FLAGS.rounds):
        start = clock()
        for _ in range(FLAGS.pipeline_batches):
            _sync(next(it)[0])
        samples.append(since(start, FLAGS.pipeline_batches))
    return medians(samples), ds, first


class FixedNet:
    """Stands in for the trainer's DecompNet: returns given outputs, so `compute_terms` runs
    its matching and losses only."""

    def __init__(self, net, category_maps, outputs):
        self.check_images = net.check_images
        self.category_maps, self.outputs = category_maps, outputs

    def category_net(self, images, training=None):
        return {"category_maps": self.category_maps}

    def decompose(self, source, training=None, images=None):
        return self.outputs


@contextlib.contextmanager
def fixed_outputs(trainer, category_maps, outputs, assignment=None):
    """`trainer.compute_terms` on fixed network outputs (and a fixed matching unless None)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(trainer, "net",
                                              FixedNet(trainer.net, category_maps, outputs)))
        if assignment is not None:
            stack.enter_context(mock.patch("decompnet_tf.engine.trainer.match",
                                           lambda *args, **kwargs: assignment))
        yield


def stage_parts(stage, net, trainer, images, targets):
    """({name: a call} of the step's parts, each a tf.function; the repeated batch as a
    dataset)."""
    import tensorflow as tf

    from decompnet_tf import losses
    from decompnet_tf.engine.trainer import merge_categories
    from decompnet_tf.matching import hungarian_assign, instance_cost_matrix, match

    cfg = trainer.loss_config
    category_training = stage != 2  # Frozen in stage 2: compute_terms runs it in inference.
    category_vars = net.category_net.trainable_variables
    parts = {}

    @tf.function
    def category_forward():
        return net.category_net(images, training=category_training)["category_maps"]

    unused = stage == 2 and trainer.category_source == "truth"
    parts["category net forward" + (" (maps unused: truth input)" if unused else "")] = (
        category_forward)
    if category_vars:
        @tf.function
        def category_backward():
            with tf.GradientTape() as tape:
                maps = net.category_net(images, training=True)["category_maps"]
                total = tf.reduce_sum(maps)
            return tape.gradient(total, category_vars)

        parts["category net forward+backward"] = category_backward
    cat_maps = category_forward()
    if stage == 1:
        out = {}
    else:
        source = targets["category_target"] if trainer.category_source == "truth" else cat_maps
        instance_vars = [v for v in trainer.trainable_variables
                         if all(v is not w for w in category_vars)]

        @tf.function
        def instance_forward():
            return net.decompose(source, training=True, images=images)

        @tf.function
        def instance_backward():
            with tf.GradientTape() as tape:
                out = net.decompose(source, training=True, images=images)
                total = sum(tf.reduce_sum(tf.cast(v, tf.float32))  # bf16 under mixed_bfloat16
                            for k, v in out.items() if k != "peaks")
            return tape.gradient(total, instance_vars)

        parts[f"instance net forward ({net.steps} steps)"] = instance_forward
        parts["instance net forward+backward"] = instance_backward
        out = instance_forward()
        pred = merge_categories(out["instance_maps"])
        gt, valid, boxes = (merge_categories(targets[k]) for k in ("masks", "valid", "boxes"))
        p, _ = losses.instance_floors(cfg.paper_lambda_gamma, cfg.instance_p, trainer.lam,
                                      trainer.gamma)
        for dtype in (tf.float64, tf.float32):
            parts[f"matching cost matrix, {dtype.name}"] = tf.function(
                lambda d=dtype: instance_cost_matrix(pred, gt, valid, p, cfg.instance_loss, d))
        if cfg.matching != "ordered":
            cost, stop_cost = (x.numpy() for x in instance_cost_matrix(
                pred, gt, valid, p, cfg.instance_loss))
            num_gt = tf.reduce_sum(valid, 1).numpy()
            parts["scipy assignment alone (host, numpy)"] = lambda: hungarian_assign(
                cost, stop_cost, num_gt, cfg.matching == "first_n")
        free = cfg.unmatched_steps == "free"
        for solver in ("scipy", "graph") if cfg.matching != "ordered" else ("scipy",):
            parts[f"match(), {solver} solver"] = tf.function(
                lambda m=solver: match(pred, gt, valid, p, cfg.instance_loss, cfg.matching,
                                        boxes, m, tf.float64, free))
    assignment = parts["match(), scipy solver"]() if stage > 1 else None

    def loss_function(match_too):
        @tf.function
        def fn():
            with tf.GradientTape() as tape:
                watched = [cat_maps, out]
                tape.watch(watched)
                with fixed_outputs(trainer, cat_maps, out, None if match_too else assignment):
                    terms, _ = trainer.compute_terms(images, targets, training=True)
                total = trainer.total_loss(terms)
            return total, tape.gradient(total, watched)
        return fn

    parts["losses + their gradients"] = loss_function(False)
    if stage > 1:
        parts["matching + losses (compute_terms)"] = loss_function(True)
    grads = [tf.zeros_like(v) for v in trainer.trainable_variables]
    parts["optimizer update"] = tf.function(
        lambda: trainer.optimizer.apply(grads, trainer.trainable_variables))
    with fixed_outputs(trainer, cat_maps, out, assignment):
        terms, outputs = trainer.compute_terms(images, targets, training=True)
    total = trainer.total_loss(terms)
    parts["metrics update (trackers, count accuracy)"] = tf.function(
        lambda: trainer._update(terms, total, outputs, targets))
    ds = tf.data.Dataset.from_tensors((images, targets)).repeat()
    parts[WHOLE] = train_call(trainer, ds)
    return parts, ds


def train_call(trainer, ds):
    """One training step as `fit` takes it: the trainer's train_function on `ds`'s iterator."""
    it = iter(ds)
    return lambda: trainer.train_function(it)


def minus(a: tuple, b: tuple) -> tuple:
    return tuple(x - y for x, y in zip(a, b))


def loop_costs(trainer, ds, train_ds, train_cfg, n_train, batch, validation_steps=10):
    """{name: seconds per training step} of the training loop around train_function: a step of
    `fit` with the loop's callbacks and progress bar (on the repeated batch `ds`, and on the
    training pipeline `train_ds` unless None), with a bare train_function step timed in the
    same rounds; validation (run_training's batches per epoch) and the checkpoint every
    `checkpoint_steps`, spread over the steps."""
    import io

    import keras

    from decompnet_tf.engine.callbacks import Backup, LossWeightSchedule

    class StepClock(keras.callbacks.Callback):
        """The time from each batch's start to the next one's: a whole step of fit."""

        def __init__(self):
            super().__init__()
            self.starts = []

        def on_train_batch_begin(self, batch, logs=None):
            self.starts.append(clock())

    steps = 3 * FLAGS.iters + 1
    every = train_cfg.checkpoint_steps
    costs = {}
    with tempfile.TemporaryDirectory() as tmp:
        def fit(data):
            steps_clock = StepClock()
            # A fresh backup folder: another fit would resume from this one's checkpoint.
            callbacks = [Backup(tempfile.mkdtemp(dir=tmp), save_freq=every or "epoch",
                                delete_checkpoint=False),
                         LossWeightSchedule(0.3, 1.0, 1.0),
                         keras.callbacks.LearningRateScheduler(lambda e: 1e-3 * 0.7**e),
                         keras.callbacks.TensorBoard(os.path.join(tmp, "logs"), update_freq=50),
                         steps_clock]
            with contextlib.redirect_stdout(io.StringIO()):  # The progress bar's work, unseen.
                trainer.fit(data, epochs=1, steps_per_epoch=steps, verbose=train_cfg.verbose,
                            callbacks=callbacks)
            starts = steps_clock.starts
            return [tuple(y - x for x, y in zip(a, b)) for a, b in zip(starts, starts[1:])]

        it = iter(ds)
        fits = {"bare": [], "fit": [], "pipeline": []}
        for _ in range(FLAGS.rounds):
            for _ in range(steps):
                start = clock()
                _sync(trainer.train_function(it))
                fits["bare"].append(since(start))
            fits["fit"] += fit(ds)
            if train_ds is not None:
                fits["pipeline"] += fit(train_ds)
        bare, in_fit = medians(fits["bare"]), medians(fits["fit"])
        costs["fit's own work (the loop's callbacks, progress bar)"] = minus(in_fit, bare)
        if fits["pipeline"]:
            costs["the input pipeline in fit (its batches, not one repeated)"] = minus(
                medians(fits["pipeline"]), in_fit)
        trainer.make_test_function()
        test = median_times({"test": lambda: trainer.test_function(it)}, FLAGS.rounds,
                            FLAGS.iters, FLAGS.warmup)["test"]
        per_epoch = max(1, n_train // batch)
        costs[f"validation ({validation_steps} batches per {per_epoch}-step epoch)"] = tuple(
            t * validation_steps / per_epoch for t in test)
        backup = Backup(os.path.join(tmp, "save"), save_freq=every or "epoch",
                        delete_checkpoint=False)
        backup.set_model(trainer)
        backup._current_epoch, backup._last_batch_seen = 0, 0  # What fit's hooks would set.
        save = median_times({"save": backup._save_model}, FLAGS.rounds, 1, 1)["save"]
        costs[f"checkpoint ({save[0] * 1000:.0f} ms every {every or per_epoch} steps)"] = tuple(
            t / (every or per_epoch) for t in save)
    return costs


WHOLE = "whole train_step (train_function)"


def net_of(model_cfg):
    """A built DecompNet (fresh weights)."""
    from decompnet_tf.models.decompnet import DecompNet

    net = DecompNet(model_cfg)
    net.build()
    return net


def main(argv):
    del argv
    from decompnet_tf.console import cpu_kind, quiet_start

    quiet_start()
    import keras
    import tensorflow as tf

    from decompnet_tf.data.pipeline import num_examples
    from decompnet_tf.engine.optimizers import make_optimizer
    from decompnet_tf.engine.trainer import resolve_solver

    data_cfg, model_cfg = from_flags(DataConfig), from_flags(ModelConfig)
    loss_cfg, train_cfg = from_flags(LossConfig), from_flags(TrainConfig)
    batch = data_cfg.batch_size
    print(f"CPU: {cpu_kind()}; TF {tf.__version__}, batch {batch}, T = "
          f"{model_cfg.steps}, matching {loss_cfg.matching}, {FLAGS.iters} calls x "
          f"{FLAGS.rounds} rounds per part (median round), dtype policy {FLAGS.dtype_policy}")
    keras.utils.set_random_seed(train_cfg.seed)
    keras.mixed_precision.set_global_policy(FLAGS.dtype_policy)
    net = net_of(model_cfg)
    rate, train_ds, n_train = None, None, data_cfg.train_examples or 5000
    if dataset_ready(data_cfg):
        (wall, cpu), train_ds, (images, targets) = pipeline_rate(data_cfg, net)
        rate = 1 / wall
        n_train = num_examples(data_cfg, "train")
        print(f"input pipeline alone ({data_cfg.dataset}, training split): {rate:.1f} "
              f"batches/s ({wall * 1000:.1f} ms per batch, {cpu * 1000:.1f} ms of CPU)")
    else:
        print(f"{data_cfg.dataset} is not built (train.py builds it): no input-pipeline "
              f"figure; the parts run on a random batch of {FLAGS.objects} objects per image")
        images, targets = random_batch(batch, net.map_size, model_cfg.num_classes,
                                       data_cfg.max_per_class, FLAGS.objects)
        images = tf.constant(images)
        targets = pooled_targets(net, {k: tf.constant(v) for k, v in targets.items()})
    for stage in (int(s) for s in FLAGS.bench_stages):
        lr = train_cfg.learning_rates[list(train_cfg.stages).index(stage)] if (
            stage in train_cfg.stages) else 1e-3
        source = train_cfg.category_source if stage == 2 else "network"
        solver = resolve_solver(train_cfg.matching_solver, False, "default")
        trainer = compiled_trainer(net_of(model_cfg), stage, loss_cfg, solver, False, source,
                                   make_optimizer(train_cfg, lr))
        parts, ds = stage_parts(stage, trainer.net, trainer, images, targets)
        rows = median_times(parts, FLAGS.rounds, FLAGS.iters, FLAGS.warmup)
        whole = rows[WHOLE]
        if FLAGS.bench_loop:
            rows.update(loop_costs(trainer, ds, train_ds, train_cfg, n_train, batch))
        if FLAGS.bench_xla:
            xla = compiled_trainer(net_of(model_cfg), stage, loss_cfg,
                                   resolve_solver(train_cfg.matching_solver, True, "default"), True,
                                   source, make_optimizer(train_cfg, lr))
            rows[f"{WHOLE}, XLA ({xla.solver} solver)"] = median_times(
                {"xla": train_call(xla, ds)}, FLAGS.rounds, FLAGS.iters, FLAGS.warmup)["xla"]
        step = whole[0]
        print(f"\nstage {stage} ({solver} solver without XLA; category maps: {source}): "
              f"{step * 1000:.1f} ms per step, {1 / step:.1f} steps/s"
              + (f"; the input pipeline alone gives {rate:.1f} batches/s, {rate * step:.1f}x "
                 f"the step rate ({'input-bound' if rate * step < 1 else 'not input-bound'})"
                 if rate else ""))
        print(f"  {'part':<58} {'wall ms':>8} {'%':>6} {'CPU ms':>8} {'%':>6}")
        for name, (wall, cpu) in rows.items():
            print(f"  {name:<58} {wall * 1000:8.1f} {100 * wall / whole[0]:6.1f} "
                  f"{cpu * 1000:8.1f} {100 * cpu / whole[1]:6.1f}", flush=True)


if __name__ == "__main__":
    app.run(main)
