"""Keras building blocks shared by the detector and the finder (imports TensorFlow)."""

from __future__ import annotations

import tensorflow as tf


def sep_block(x: tf.Tensor, ch: int, stride: int = 1) -> tf.Tensor:
    """Depthwise 3x3 then pointwise 1x1 convolution, each with batch norm and ReLU6."""
    layers = tf.keras.layers
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(ch, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU(6.0)(x)


def encoder(inp: tf.Tensor, channels: tuple[int, ...]) -> list[tf.Tensor]:
    """Stride-2 stem, then two separable blocks per further channel count (the first one
    halving the size): the features at strides 2, 4, 8, ... in order."""
    layers = tf.keras.layers
    x = layers.Conv2D(channels[0], 3, strides=2, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    features = [x]
    for ch in channels[1:]:
        x = sep_block(x, ch, stride=2)
        x = sep_block(x, ch)
        features.append(x)
    return features


def fpn_decoder(skips: list[tf.Tensor], ch: int) -> tf.Tensor:
    """FPN-style top-down path from the last (coarsest) skip to the first: learned 2x
    upsampling (Keras' UpSampling2D can't trace unknown sizes), a 1x1 lateral, a separable
    block."""
    layers = tf.keras.layers
    y = layers.Conv2D(ch, 1, use_bias=False)(skips[-1])
    for skip in reversed(skips[:-1]):
        y = layers.Conv2DTranspose(ch, 2, strides=2, use_bias=False)(y)
        lateral = layers.Conv2D(ch, 1, use_bias=False)(skip)
        y = layers.Add()([y, lateral])
        y = sep_block(y, ch)
    return y
