"""Paper effects on a flat receipt: thermal fading, head streaks, creases, crumples, stains."""

from __future__ import annotations

import random

import cv2
import numpy as np


def smooth_noise(np_rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] with features about `cell` pixels wide."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    grid = np_rng.random((gh, gw), dtype=np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def paper_colour(rng: random.Random) -> np.ndarray:
    """White-ish paper: bright, slightly warm, cool or grey."""
    base = rng.uniform(0.86, 1.0)
    tint = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.02, 0.02), rng.uniform(-0.06, 0.02)])
    return np.clip(base + tint, 0, 1).astype(np.float32)


def ink_colour(rng: random.Random) -> np.ndarray:
    """Near-black ink; thermal paper sometimes prints blue-black or purple."""
    if rng.random() < 0.2:
        return np.array(
            [rng.uniform(0.15, 0.3), rng.uniform(0.05, 0.2), rng.uniform(0.3, 0.45)], np.float32
        )
    g = rng.uniform(0.0, 0.25)
    return np.array([g, g, g + rng.uniform(0, 0.05)], np.float32)


def apply_paper(ink: np.ndarray, rng: random.Random, np_rng: np.random.Generator) -> np.ndarray:
    """Turn ink coverage into an RGB float image of aged, handled paper."""
    h, w = ink.shape
    ink = ink.copy()
    if rng.random() < 0.6:  # thermal fading, uneven over the sheet
        fade = smooth_noise(np_rng, h, w, rng.randint(60, 300))
        low = rng.uniform(0.4, 0.9)
        ink *= low + (1 - low) * fade
    if rng.random() < 0.3:  # print-head streaks: columns printing lighter
        cols = np.ones(w, np.float32)
        for _ in range(rng.randint(1, 6)):
            x = rng.randrange(w)
            cols[x : x + rng.randint(1, 6)] = rng.uniform(0.2, 0.7)
        ink *= cols[None, :]
    if rng.random() < 0.3:
        k = rng.choice((3, 5))
        ink = cv2.GaussianBlur(ink, (k, k), rng.uniform(0.3, 1.0))
    paper = paper_colour(rng)
    colour = ink_colour(rng)
    img = paper[None, None, :] * (1 - ink[..., None]) + colour[None, None, :] * ink[..., None]
    shade = np.ones((h, w), np.float32)
    shade -= 0.04 * np_rng.random((h, w), dtype=np.float32)  # fibre texture
    if rng.random() < 0.6:  # crumples: soft folds of light and shade
        crumple = smooth_noise(np_rng, h, w, rng.randint(20, 80)) - 0.5
        shade += rng.uniform(0.05, 0.25) * crumple
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):  # creases: sharp fold lines
        shade *= _crease(rng, h, w)
    img *= shade[..., None]
    for _ in range(rng.choice((0, 0, 0, 1, 2))):  # stains: coffee, grease
        img = _stain(img, rng)
    return np.asarray(np.clip(img, 0.0, 1.0), np.float32)


def _crease(rng: random.Random, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.7:  # folded across, like a receipt in a wallet
        y0 = rng.uniform(0.1, 0.9) * h
        slope = rng.uniform(-0.15, 0.15)
        d = (yy - y0 - slope * (xx - w / 2)) / np.sqrt(1 + slope * slope)
    else:
        x0 = rng.uniform(0.2, 0.8) * w
        slope = rng.uniform(-0.1, 0.1)
        d = (xx - x0 - slope * (yy - h / 2)) / np.sqrt(1 + slope * slope)
    width = rng.uniform(1.0, 4.0)
    strength = rng.uniform(0.05, 0.2)
    return np.asarray(
        1
        - strength * np.exp(-((d / width) ** 2))
        + 0.5 * strength * np.exp(-(((d - 3 * width) / (3 * width)) ** 2)),
        np.float32,
    )


def _stain(img: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    centre = (rng.randrange(w), rng.randrange(h))
    axes = (rng.randint(10, max(11, w // 3)), rng.randint(10, max(11, w // 3)))
    cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    k = 2 * rng.randint(3, 15) + 1
    mask = cv2.GaussianBlur(mask, (k, k), 0) * rng.uniform(0.1, 0.4)
    tint = (
        np.array([0.75, 0.6, 0.4], np.float32)
        if rng.random() < 0.7
        else np.array([0.9, 0.9, 0.85], np.float32)
    )
    return np.asarray(img * (1 - mask[..., None] * (1 - tint[None, None, :])), np.float32)
