"""Countertops and the camera: backgrounds, a curled receipt in perspective, light and lens."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from models.synth.paper import smooth_noise

BACKGROUNDS = ("wood", "stone", "tray", "cloth", "plain")


def _muted(rng: random.Random, saturation: float = 0.45) -> np.ndarray:
    """A household colour: a grey level pulled part of the way towards a random hue."""
    grey = rng.uniform(0.12, 0.85)
    hue = np.array([rng.random() for _ in range(3)], np.float32)
    return np.asarray(np.clip(grey + (hue - hue.mean()) * saturation, 0, 1), np.float32)


def background(
    kind: str, h: int, w: int, rng: random.Random, np_rng: np.random.Generator
) -> np.ndarray:
    """A procedural countertop, RGB float in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        angle = rng.uniform(0, math.pi)
        u = xx * math.cos(angle) + yy * math.sin(angle)
        warp = smooth_noise(np_rng, h, w, rng.randint(80, 300)) * rng.uniform(20, 80)
        rings = 0.5 + 0.5 * np.sin((u + warp) / rng.uniform(4, 14))
        grain = smooth_noise(np_rng, h, w, 6)
        t = 0.6 * rings + 0.4 * grain
        dark = np.array(
            [rng.uniform(0.2, 0.45), rng.uniform(0.1, 0.28), rng.uniform(0.03, 0.12)], np.float32
        )
        light = dark + np.array([0.25, 0.18, 0.1], np.float32) * rng.uniform(0.6, 1.4)
        img = dark + (light - dark) * t[..., None]
    elif kind == "stone":
        t = 0.5 * smooth_noise(np_rng, h, w, rng.randint(30, 120)) + 0.5 * np_rng.random(
            (h, w), dtype=np.float32
        )
        base = np.array([rng.uniform(0.2, 0.85)] * 3, np.float32) + np.array(
            [rng.uniform(-0.05, 0.05) for _ in range(3)], np.float32
        )
        img = base * (0.75 + 0.4 * t[..., None])
        veins = np.abs(smooth_noise(np_rng, h, w, rng.randint(60, 200)) - 0.5) < 0.01
        img[veins] *= rng.uniform(0.6, 1.4)
    elif kind == "tray":
        colour = _muted(rng)
        cx, cy = w / 2, h / 2
        rim = np.maximum(np.abs(xx - cx) / (w / 2), np.abs(yy - cy) / (h / 2))
        img = colour * (1 - 0.35 * np.clip((rim - 0.8) / 0.2, 0, 1))[..., None]
        img = img * (0.95 + 0.05 * smooth_noise(np_rng, h, w, 4))[..., None]
    elif kind == "cloth":
        a = _muted(rng, 0.6)
        b = np.array([0.95, 0.95, 0.92], np.float32) if rng.random() < 0.7 else _muted(rng, 0.3)
        size = rng.uniform(20, 90)
        angle = rng.uniform(-0.4, 0.4)
        u = xx * math.cos(angle) + yy * math.sin(angle)
        v = -xx * math.sin(angle) + yy * math.cos(angle)
        cu, cv_ = (np.floor(u / size) % 2), (np.floor(v / size) % 2)
        t = 0.5 * cu + 0.5 * cv_  # gingham: stripes cross, the crossing is darkest
        img = b + (a - b) * t[..., None]
        img = img * (0.92 + 0.08 * np.sin(xx * 1.3)[..., None] * np.sin(yy * 1.3)[..., None])
    else:
        colour = _muted(rng, 0.3)
        img = colour * (0.9 + 0.1 * smooth_noise(np_rng, h, w, rng.randint(8, 80)))[..., None]
    return np.asarray(np.clip(img, 0, 1), np.float32)


@dataclass(frozen=True)
class Curl:
    """A bowed sheet: y shifts by ay * bow(x), then x shifts by ax * bow(y)."""

    ay: float
    ax: float
    w: int
    h: int
    pad: int

    def bow_x(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.ay * np.sin(np.pi * np.clip(x, 0, self.w) / self.w), np.float32)

    def bow_y(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.ax * np.sin(np.pi * np.clip(y - self.pad, 0, self.h) / self.h), np.float32
        )

    def forward(self, pts: np.ndarray) -> np.ndarray:
        """Points on the flat paper to points on the curled canvas (exact)."""
        x, y = pts[:, 0], pts[:, 1]
        y1 = y + self.pad + self.bow_x(x)
        x1 = x + self.pad + self.bow_y(y1)
        return np.stack([x1, y1], axis=1)

    def apply(self, img: np.ndarray) -> np.ndarray:
        """Warp a flat paper image (H x W x C) onto the curled canvas."""
        ch, cw = self.h + 2 * self.pad, self.w + 2 * self.pad
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        x1 = xx - self.pad - self.bow_y(yy)
        y1 = yy - self.pad - self.bow_x(x1)
        return cv2.remap(
            img, x1, y1, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )


def place_quad(
    rng: random.Random,
    *,
    pw: int,
    ph: int,
    fw: int,
    fh: int,
    fill: tuple[float, float],
    margin: int = 6,
) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a pw x ph sheet: rotated, in perspective, inside the frame."""
    for attempt in range(50):
        angle = math.radians(max(-30.0, min(30.0, rng.gauss(0, 9))))
        scale = rng.uniform(*fill) * min(fw, fh) / max(pw, ph) * (0.97**attempt)
        hw, hh = pw * scale / 2, ph * scale / 2
        local = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]], np.float32)
        jitter = rng.uniform(0.0, 0.12)
        local += (
            np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)], np.float32)
            * jitter
            * min(hw, hh)
        )
        rot = np.array(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32
        )
        quad = local @ rot.T
        span = quad.max(0) - quad.min(0)
        if span[0] > fw - 2 * margin or span[1] > fh - 2 * margin:
            continue
        cx = rng.uniform(margin - quad[:, 0].min(), fw - margin - quad[:, 0].max())
        cy = rng.uniform(margin - quad[:, 1].min(), fh - margin - quad[:, 1].max())
        return np.asarray(quad + np.array([cx, cy], np.float32), np.float32)
    s = 0.5 * min(fw / pw, fh / ph)
    x0, y0 = (fw - pw * s) / 2, (fh - ph * s) / 2
    return np.array(
        [[x0, y0], [x0 + pw * s, y0], [x0 + pw * s, y0 + ph * s], [x0, y0 + ph * s]], np.float32
    )


def composite(
    frame: np.ndarray, sheet: np.ndarray, homography: np.ndarray, rng: random.Random
) -> np.ndarray:
    """Lay an RGBA float sheet onto the frame through a homography, with a soft drop shadow."""
    fh, fw = frame.shape[:2]
    warped = cv2.warpPerspective(
        sheet, homography, (fw, fh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0)
    )
    alpha = warped[..., 3:4]
    if rng.random() < 0.7:
        k = 2 * rng.randint(3, 12) + 1
        shift = np.array([[1, 0, rng.uniform(-8, 8)], [0, 1, rng.uniform(0, 10)]], np.float32)
        drop = cv2.warpAffine(cv2.GaussianBlur(alpha[..., 0], (k, k), 0), shift, (fw, fh))
        frame = frame * (1 - rng.uniform(0.15, 0.45) * drop[..., None])
    return np.asarray(frame * (1 - alpha) + warped[..., :3] * alpha, np.float32)


def cast_shadow(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """A partial shadow (a hand, a phone, the scanner's arm) with a soft edge."""
    h, w = img.shape[:2]
    mask: np.ndarray = np.zeros((h, w), np.float32)
    n = rng.randint(3, 6)
    cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
    r = rng.uniform(0.3, 0.9) * max(w, h)
    pts = [
        (cx + r * math.cos(a) * rng.uniform(0.5, 1), cy + r * math.sin(a) * rng.uniform(0.5, 1))
        for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    ]
    cv2.fillPoly(mask, [np.array(pts, np.int32)], 1.0)
    k = 2 * rng.randint(5, 40) + 1
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    return np.asarray(img * (1 - rng.uniform(0.25, 0.6) * mask[..., None]), np.float32)


def camera(img: np.ndarray, rng: random.Random, np_rng: np.random.Generator) -> np.ndarray:
    """Light, lens and sensor: uneven light, white balance, exposure, blur, noise, JPEG -> RGB."""
    h, w = img.shape[:2]
    light = 0.75 + 0.5 * smooth_noise(np_rng, h, w, max(h, w) // 2)
    img = img * light[..., None]
    img = img * np.array([rng.uniform(0.85, 1.15), 1.0, rng.uniform(0.8, 1.15)], np.float32)
    img = np.clip(img * rng.uniform(0.7, 1.35), 0, 1) ** rng.uniform(0.7, 1.4)
    r = rng.random()
    if r < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.8))
    elif r < 0.5:
        k = rng.randint(3, 9)
        kernel: np.ndarray = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    img = img + np_rng.normal(0, rng.uniform(0.0, 0.04), img.shape).astype(np.float32)
    out: np.ndarray = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.8:
        ok, buf = cv2.imencode(
            ".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, rng.randint(35, 95)]
        )
        if ok:
            out = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))[..., ::-1].copy()
    return out
