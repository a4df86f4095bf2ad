"""Training on more than one GPU or machine with TensorFlow's own tf.distribute strategies."""
import hashlib
import json
import os

import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer  # patched for multi-worker runs

from allseg.core.errors import UserError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def make_strategy(name):
    """The tf.distribute strategy a config's [train] strategy names. Call it before any other
    TensorFlow work: multi_worker must set up its collective ops at program start."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError('[train] strategy = "multi_worker" needs the cluster and this '
                            "machine's place in it in the TF_CONFIG environment variable "
                            "(see the README, section Training on several GPUs or machines)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as exc:
            raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.get_strategy()  # the default: one device, no distribution


def is_chief(strategy):
    """True on the one process that writes models, logs and plots: the only one outside a
    cluster; in one, the "chief" task, or worker 0 when the cluster names no chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return True
    if "chief" in spec:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def weights_fingerprint(model):
    """A short hash of every weight: equal on all replicas and workers of one run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def build_for_cluster(model, strategy, dataset):
    """Works around two Keras 3.15 steps that fail under MultiWorkerMirroredStrategy (private
    Keras hooks, so tests/test_distribute.py checks a real two-worker run):
    - fit builds the model by averaging its first input batch across workers, which fails
      eagerly ("Attempt to convert a value (PerReplica...)"): build from one local batch instead;
    - each step averages the (already synchronised, scalar) metric results across workers along
      axis 0, which a scalar does not have: average them whole instead."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(dataset)))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    _patch_metric_reduction()


def _patch_metric_reduction():
    original = tf_trainer.reduce_per_replica
    if getattr(original, "patched_for_multi_worker", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in (
                "auto", "mean"):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.patched_for_multi_worker = True
    tf_trainer.reduce_per_replica = reduce_per_replica
