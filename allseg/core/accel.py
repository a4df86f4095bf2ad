"""Which device runs the model, and the speed switches that depend on it."""
import os

import keras
import tensorflow as tf


def gpu_names():
    return [g.name for g in tf.config.list_physical_devices("GPU")]


def describe_device():
    gpus = gpu_names()
    if gpus:
        return f"GPU ({', '.join(gpus)})"
    return f"CPU ({os.cpu_count()} cores; no GPU visible)"


def resolve(switch):
    """A config switch (True, False or "auto") as a bool: "auto" means on when a GPU is visible,
    where float16 compute and fused kernels pay; on a CPU they are slower or unsupported."""
    return bool(gpu_names()) if switch == "auto" else bool(switch)


def build_with_policy(build, mixed_precision):
    """Calls build() with the global dtype policy set to mixed_float16 if asked, and puts the
    previous policy back afterwards (layers keep the policy they were built with)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(before)
