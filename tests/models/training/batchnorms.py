"""Test helper (imports TensorFlow): batch norms with non-trivial statistics, so that folding
them into convolutions, as a .tflite export does, changes the weights a warm start reads."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def randomize_batch_norms(model: tf.keras.Model, seed: int = 0) -> None:
    """Give every batch norm of `model` random scales, shifts and moving statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.3, n).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 0.2, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.05, 0.5, n).astype(np.float32))
