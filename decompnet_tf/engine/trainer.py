"""DecompTrainer: a keras.Model wrapping DecompNet with the paper's losses in `train_step`.

One trainer per training stage (Appendix B): stage 1 trains the category network alone, stage 2
the instance network and box regressor with the category network frozen, stage 3 everything.
The bipartite matching runs once per batch on the host (`matching.match`, through
`tf.numpy_function`); under `tf.distribute` each replica matches its own part of the batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from decompnet_tf import losses
from decompnet_tf.config import LossConfig
from decompnet_tf.matching import match
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.postprocess import stop_signal


def fold(x):
    """[B, C, ...] -> [B*C, ...]: categories folded into the batch."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


class DecompTrainer(keras.Model):
    """Computes the loss terms of one stage and applies them with the stage's optimizer.

    Data: (images [B, H, W, 1], targets) from `decompnet_tf.data.decomp_mnist.make_dataset`.
    Logged metrics: every loss term, "loss" (the weighted total), and for stages >= 2
    "count_accuracy" (stop signal >= 0.5 counted against the truth; a cheap training signal).
    """

    def __init__(self, net: DecompNet, stage: int, loss_config: LossConfig, **kwargs):
        super().__init__(**kwargs)
        if stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3, got {stage}")
        self.net = net
        self.stage = stage
        self.loss_config = loss_config
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
        names = ["loss", losses.CATEGORY] if stage == 1 else (
            ["loss", losses.INSTANCE_MATCHED, losses.INSTANCE_SUM, losses.BOX, "count_accuracy"]
            + ([losses.STOP] if net.stop_head else [])
            + ([losses.CATEGORY] if stage == 3 else []))
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.built = True  # Its only weights are the (built) network's and lam/gamma.

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, images, training=None):
        return self.net(images, training=training)

    def compute_terms(self, images, targets, training):
        """Loss terms {name: scalar} of this stage, plus the network outputs."""
        cfg = self.loss_config
        self.net.check_images(images)
        cat = self.net.category_net(images, training=training and self.stage != 2)
        cat_maps = cat["category_maps"]
        if self.stage == 1:
            return losses.category_loss(cat_maps, targets["category_target"], cfg.category_p), cat
        out = self.net.decompose(cat_maps, training=training)
        pred = fold(out["instance_maps"])  # [B*C, T, h, w]
        gt, valid = fold(targets["masks"]), fold(targets["valid"])
        assignment = match(pred, gt, valid, cfg.instance_p, cfg.instance_loss)
        terms = {**losses.instance_losses(pred, gt, assignment, cfg.instance_p,
                                          cfg.instance_loss, cfg.size_weighting),
                 **losses.box_loss(fold(out["boxes_xywh"]), fold(targets["boxes"]),
                                   assignment)}
        if "objectness" in out:
            terms.update(losses.stop_loss(fold(out["objectness"]), assignment))
        if self.stage == 3:
            terms.update(losses.category_loss(cat_maps, targets["category_target"],
                                              cfg.category_p))
        return terms, {"category_maps": cat_maps, **out}

    def _update(self, terms, total, outputs, targets):
        self.trackers["loss"].update_state(total)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        if "count_accuracy" in self.trackers:
            emitted = tf.reduce_sum(tf.cast(stop_signal(outputs) >= 0.5, tf.int32), axis=-1)
            correct = tf.cast(tf.equal(emitted, targets["num_objects"]), tf.float32)
            self.trackers["count_accuracy"].update_state(tf.reduce_mean(correct))
        return {name: t.result() for name, t in self.trackers.items()}

    def train_step(self, data):
        images, targets = data
        with tf.GradientTape() as tape:
            terms, outputs = self.compute_terms(images, targets, training=True)
            total = losses.weighted_total(terms, self.lam, self.gamma, self.loss_config.eta,
                                       self.loss_config.stop_weight)
            # Keras sums gradients across replicas: scale each replica's loss accordingly.
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self._update(terms, total, outputs, targets)

    def test_step(self, data):
        images, targets = data
        terms, outputs = self.compute_terms(images, targets, training=False)
        total = losses.weighted_total(terms, self.lam, self.gamma, self.loss_config.eta,
                                       self.loss_config.stop_weight)
        return self._update(terms, total, outputs, targets)

