"""DecompTrainer: a keras.Model wrapping DecompNet with the paper's losses in `train_step`.

One trainer per training stage (Appendix B): 1 the category network, 2 the instance network and
box regressor, 3 everything. The matching (`matching.match`) runs once per batch, per replica.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from decompnet_tf import losses
from decompnet_tf.config import (
    CATEGORY_SOURCES,
    MATCHING_SOLVERS,
    InferenceConfig,
    LossConfig,
)
from decompnet_tf.keras_compat import BuildWithoutBatch, in_multi_worker_mode
from decompnet_tf.matching import match
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.ops.centers import center_heatmap
from decompnet_tf.postprocess import emitted

XLA_NEEDS_GRAPH = (
    "XLA (--jit_compile, or a TPU) cannot compile the scipy matching solver, which runs on the "
    "host through tf.numpy_function: use --matching_solver=graph (or --matching_solver=auto), "
    "the same optimum in TensorFlow ops.")


def resolve_solver(solver: str, jit_compile: bool, strategy: str) -> str:
    """The matching solver a run uses: "auto" is "graph" under XLA (asked for, or a TPU), else
    "scipy" (the fastest on CPUs, benchmarks/); "scipy" under XLA is refused."""
    compiled = jit_compile or strategy == "tpu"
    if solver == "auto":
        return "graph" if compiled else "scipy"
    if solver == "scipy" and compiled:
        raise ValueError(XLA_NEEDS_GRAPH)
    if solver not in MATCHING_SOLVERS:
        raise ValueError(f"matching_solver must be one of {('auto', *MATCHING_SOLVERS)}, got "
                         f"{solver!r}")
    return solver


def stage_terms(stage: int, stop_head: bool, loss_config: LossConfig,
                center_head: bool = False) -> tuple[str, ...]:
    """The `losses` names of the terms a stage computes and the trainer tracks."""
    category = (losses.CATEGORY,) + ((losses.CENTER,) if center_head else ())
    if stage == 1:
        return category
    return ((losses.INSTANCE_MATCHED, losses.INSTANCE_SUM, losses.BOX)
            + ((losses.STOP,) if stop_head else ())
            + ((losses.INSTANCE_DICE,) if loss_config.dice_weight > 0 else ())
            + ((losses.BOX_GIOU,) if loss_config.giou_weight > 0 else ())
            + (category if stage == 3 else ()))


def merge_categories(x):
    """[B, C, ...] -> [B*C, ...]: each (image, category) pair one row of the batch."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


class DecompTrainer(BuildWithoutBatch, keras.Model):
    """Computes the loss terms of one stage and applies them with the stage's optimizer.

    Data: (images [B, H, W, ch], targets) from `data.pipeline.make_dataset`. Logs every term,
    "loss" (the weighted total) and, from stage 2, "count_accuracy" at `stop_threshold`.

    Args:
      category_source: "network" (the paper) or "truth": what stage 2 decomposes.
      solver: "scipy" (host) or "graph" (XLA / TPU), see `resolve_solver`.
    """

    def __init__(self, net: DecompNet, stage: int, loss_config: LossConfig,
                 category_source: str = "network", solver: str = "scipy",
                 stop_threshold: float = InferenceConfig.stop_threshold, **kwargs):
        super().__init__(**kwargs)
        if stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3, got {stage}")
        if category_source not in CATEGORY_SOURCES:
            raise ValueError(f"category_source must be one of {CATEGORY_SOURCES}, got "
                             f"{category_source!r}")
        if category_source == "truth" and stage != 2:
            raise ValueError("only stage 2 can decompose the true category maps "
                             "(category_source='truth'): stage 3 trains end to end on the "
                             "category network's")
        self.net = net
        self.stage = stage
        self.loss_config = loss_config
        self.category_source = category_source
        self.solver = solver
        self.stop_threshold = stop_threshold
        # lambda and gamma change after the first epoch (LossWeightSchedule callback).
        self.lam = tf.Variable(loss_config.lam, trainable=False, dtype=tf.float32, name="lam")
        self.gamma = tf.Variable(loss_config.gamma, trainable=False, dtype=tf.float32,
                                 name="gamma")
        net.category_net.trainable = stage in (1, 3)
        if hasattr(net.category_net, "backbone"):
            # Appendix A: the pretrained VGG16 is fine-tuned "all the way down to the first
            # convolutional layer" only in the final end-to-end stage.
            net.category_net.backbone.trainable = stage == 3
        net.cell.trainable = stage in (2, 3)
        net.box_regressor.trainable = stage in (2, 3)
        if net.stop_head:  # Stage 1 has no stop loss: its optimizer must not hold the head.
            net.objectness.trainable = stage in (2, 3)
        self.terms = stage_terms(stage, net.stop_head, loss_config,
                                 getattr(net.category_net, "center_head", False))
        names = ["loss", *self.terms] + (["count_accuracy"] if stage >= 2 else [])
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.built = True  # Its only weights are the (built) network's and lam/gamma.

    def compile(self, optimizer, jit_compile: bool = False, **kwargs):
        """keras.Model.compile with XLA off unless asked for (Keras's "auto" picks it on a GPU,
        where the scipy solver cannot run)."""
        if jit_compile and self.stage >= 2 and self.solver == "scipy":
            raise ValueError(XLA_NEEDS_GRAPH)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, images, training=None):
        return self.net(images, training=training)

    def compute_terms(self, images, targets, training):
        """({name: scalar loss term} of `self.terms`, the network's outputs)."""
        cfg = self.loss_config
        self.net.check_images(images)
        cat = self.net.category_net(images, training=training and self.stage != 2)
        cat_maps = cat["category_maps"]
        if self.stage == 1:
            return self._category_term(cat, targets), cat
        truth = self.category_source == "truth"
        source = targets["category_target"] if truth else cat_maps
        centers = None
        if self.net.config.instance_centers:
            centers = (center_heatmap(targets["boxes"], targets["valid"], cat_maps.shape[1:3])
                       if truth else cat["center_maps"])
        out = self.net.decompose(source, training=training, images=images, center_maps=centers)
        pred = merge_categories(out["instance_maps"])  # [B*C, T, h, w]
        gt, valid, boxes = (merge_categories(targets[k]) for k in ("masks", "valid", "boxes"))
        tpu = isinstance(self.distribute_strategy, tf.distribute.TPUStrategy)
        free = cfg.unmatched_steps == "free"
        # The matching minimises the matched term's own distance, floor included.
        p_matched, p_sum = losses.instance_floors(cfg.paper_lambda_gamma, cfg.instance_p,
                                                  self.lam, self.gamma)
        assignment = match(pred, gt, valid, p_matched, cfg.instance_loss, cfg.matching,
                           boxes, self.solver, tf.float32 if tpu else tf.float64, free)
        terms = {**losses.instance_losses(pred, gt, assignment, p_matched, cfg.instance_loss,
                                          cfg.size_weighting, p_sum, cfg.unmatched_steps),
                 **losses.box_loss(merge_categories(out["boxes_xywh"]), boxes, assignment,
                                   cfg.box_loss, losses.BOX_GIOU in self.terms)}
        if losses.INSTANCE_DICE in self.terms:
            terms.update(losses.dice_loss(pred, gt, assignment))
        if losses.STOP in self.terms:
            terms.update(losses.stop_loss(merge_categories(out["objectness"]), assignment))
        if losses.CATEGORY in self.terms:
            terms.update(self._category_term(cat, targets))
        return terms, {"category_maps": cat_maps, **out}

    def _category_term(self, cat, targets):
        """The category term of `cat` (CategoryNet's outputs), and the centre term if it has
        centre maps."""
        cfg, cat_maps = self.loss_config, cat["category_maps"]
        terms = {}
        if losses.CENTER in self.terms:
            target = center_heatmap(targets["boxes"], targets["valid"], cat_maps.shape[1:3])
            terms.update(losses.center_loss(cat["center_maps"], target))
        scale = None
        if cfg.category_size_weighting:
            masks = targets["masks"]  # [B, C, M, h', w']: at the instance maps' size.
            if masks.shape[-2:] != cat_maps.shape[1:3]:
                b, c, m, h, w = tf.unstack(tf.shape(masks))
                flat = tf.reshape(masks, tf.stack([b * c * m, h, w, 1]))
                flat = tf.image.resize(flat, cat_maps.shape[1:3], method="bilinear")
                masks = tf.reshape(flat, tf.concat([[b, c, m], tf.shape(flat)[1:3]], 0))
            scale = losses.object_size_scale(masks, targets["valid"])
        terms.update(losses.category_loss(cat_maps, targets["category_target"], cfg.category_p,
                                          scale))
        return terms

    def _update(self, terms, total, outputs, targets):
        self.trackers["loss"].update_state(total)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        if "count_accuracy" in self.trackers:
            counts = tf.reduce_sum(tf.cast(emitted(outputs, self.stop_threshold), tf.int32), -1)
            correct = tf.cast(tf.equal(counts, targets["num_objects"]), tf.float32)
            self.trackers["count_accuracy"].update_state(tf.reduce_mean(correct))
        logs = {name: t.result() for name, t in self.trackers.items()}
        if in_multi_worker_mode(tf.distribute.get_strategy()):
            # Keras 3 averages each logged value across workers along its axis 0, which a
            # scalar has not (tensorflow/tensorflow#72388).
            logs = {name: tf.reshape(v, [1]) for name, v in logs.items()}
        return logs

    def total_loss(self, terms):
        """The weighted sum, with this stage's lambda and gamma (`losses.weighted_total`)."""
        cfg = self.loss_config
        return losses.weighted_total(terms, self.lam, self.gamma, cfg.eta, cfg.stop_weight,
                                     cfg.dice_weight, cfg.giou_weight, cfg.paper_lambda_gamma,
                                     cfg.center_weight)

    def train_step(self, data):
        images, targets = data
        with tf.GradientTape() as tape:
            terms, outputs = self.compute_terms(images, targets, training=True)
            total = self.total_loss(terms)
            # Keras sums gradients across replicas: scale each replica's loss accordingly.
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self._update(terms, total, outputs, targets)

    def test_step(self, data):
        images, targets = data
        terms, outputs = self.compute_terms(images, targets, training=False)
        total = self.total_loss(terms)
        return self._update(terms, total, outputs, targets)

