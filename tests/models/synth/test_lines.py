"""Synthetic line crops: the dot-matrix print effect."""

from __future__ import annotations

import random

import cv2
import numpy as np

from models.synth.lines import dot_matrix


def test_dot_matrix_print_keeps_the_glyphs_place_in_separate_dots():
    ink = np.zeros((40, 120), np.float32)
    ink[10:30, 10:14] = 1.0  # a thin vertical stroke
    ink[18:21, 30:110] = 1.0  # a thin horizontal stroke
    dots = dot_matrix(ink, 28, random.Random(3))
    assert dots.shape == ink.shape and dots.min() >= 0.0 and dots.max() <= 1.0
    near = cv2.dilate(ink, np.ones((9, 9), np.uint8))
    assert dots[near == 0].max() == 0.0  # no dot far from the ink
    assert dots[10:30, 6:18].sum() > 0 and dots[14:25, 30:110].sum() > 0  # both strokes print
    count, _ = cv2.connectedComponents((dots > 0.9).astype(np.uint8))
    assert count - 1 >= 8  # the long stroke is a row of dots, not one bar
