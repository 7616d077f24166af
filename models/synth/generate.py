"""Synthetic receipts, empty countertops and line crops, each a pure function of its seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

from models.synth.content import Content, make_content
from models.synth.labels import FieldsLabel, LineLabel, Quad, SceneLabel
from models.synth.paper import apply_paper
from models.synth.render import Flat, render_flat
from models.synth.scene import (
    BACKGROUNDS,
    Curl,
    background,
    camera,
    cast_shadow,
    composite,
    place_quad,
)

DEFAULT_SIZE = (960, 1280)  # width, height of the photo


@dataclass
class Sample:
    """A photo (RGB uint8), the flat receipt it shows (RGB uint8, or None) and its label."""

    image: np.ndarray
    paper: np.ndarray | None
    label: SceneLabel


def _rngs(seed: int, salt: int) -> tuple[random.Random, np.random.Generator]:
    return random.Random(seed * 7919 + salt), np.random.default_rng([seed, salt])


def _quad(pts: np.ndarray) -> Quad:
    p = [(round(float(x), 2), round(float(y), 2)) for x, y in pts]
    return (p[0], p[1], p[2], p[3])


@dataclass
class _Sheet:
    content: Content
    flat: Flat
    paper: np.ndarray  # flat RGB float, what a perfect rectification shows
    curled: np.ndarray  # RGBA float on the curled canvas
    curl: Curl


def _sheet(rng: random.Random, np_rng: np.random.Generator) -> _Sheet:
    content = make_content(rng)
    flat = render_flat(content, rng)
    paper = apply_paper(flat.ink, rng, np_rng)
    h, w = paper.shape[:2]
    bow = rng.choice((0.0, 0.0, rng.uniform(-0.06, 0.06)))
    curl = Curl(
        ay=bow * w,
        ax=rng.choice((0.0, rng.uniform(-0.02, 0.02))) * h,
        w=w,
        h=h,
        pad=int(max(abs(bow * w), 0.02 * h)) + 2,
    )
    rgba = np.dstack([paper, np.ones((h, w), np.float32)])
    if bow:  # light falls differently on the bowed sheet
        xs = np.arange(w, dtype=np.float32)
        rgba[..., :3] *= (1 - 0.12 * np.sign(bow) * np.cos(np.pi * xs / w))[None, :, None]
    return _Sheet(content, flat, paper, curl.apply(rgba), curl)


def generate_receipt(seed: int, size: tuple[int, int] = DEFAULT_SIZE) -> Sample:
    """A photo of one receipt (sometimes beside another, smaller one) on a countertop."""
    rng, np_rng = _rngs(seed, 1)
    fw, fh = size
    kind = rng.choice(BACKGROUNDS)
    frame = background(kind, fh, fw, rng, np_rng)
    others: list[Quad] = []
    if rng.random() < 0.12:  # a second, smaller receipt, under the main one
        o_sheet = _sheet(rng, np_rng).curled
        oh, ow = o_sheet.shape[:2]
        oq = place_quad(rng, pw=ow, ph=oh, fw=fw, fh=fh, fill=(0.3, 0.5), margin=-200)
        src = np.array([[0, 0], [ow, 0], [ow, oh], [0, oh]], np.float32)
        frame = composite(frame, o_sheet, cv2.getPerspectiveTransform(src, oq), rng)
        others.append(_quad(oq))
    main = _sheet(rng, np_rng)
    sheet, curl, flat, content = main.curled, main.curl, main.flat, main.content
    ch, cw = sheet.shape[:2]
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    dst = place_quad(rng, pw=cw, ph=ch, fw=fw, fh=fh, fill=(0.55, 0.98))
    hom = cv2.getPerspectiveTransform(src, dst)
    frame = composite(frame, sheet, hom, rng)
    if rng.random() < 0.4:
        frame = cast_shadow(frame, rng)
    image = camera(frame, rng, np_rng)

    def to_photo(pts: np.ndarray) -> np.ndarray:
        curled = curl.forward(pts.astype(np.float32))
        return np.asarray(cv2.perspectiveTransform(curled[None], hom)[0], np.float32)

    ph, pw = flat.ink.shape
    corners = to_photo(np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float32))
    corners = np.clip(corners, 0, [fw - 1, fh - 1])
    lines = []
    for pl in flat.lines:
        x0, y0, x1, y1 = pl.box
        box = np.clip(
            to_photo(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)),
            0,
            [fw - 1, fh - 1],
        )
        lines.append(
            LineLabel(
                text=pl.text,
                role=pl.role,
                row=pl.row,
                box=_quad(box),
                paper_box=(round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)),
            )
        )
    paper_img = (np.clip(main.paper, 0, 1) * 255 + 0.5).astype(np.uint8)
    label = SceneLabel(
        kind="receipt",
        seed=seed,
        width=fw,
        height=fh,
        background=kind,
        corners=_quad(corners),
        others=others,
        paper_size=(pw, ph),
        locale=content.locale,
        font=flat.font,
        lines=lines,
        fields=FieldsLabel.model_validate(content.fields),
    )
    return Sample(image=image, paper=paper_img, label=label)


def generate_empty(seed: int, size: tuple[int, int] = DEFAULT_SIZE) -> Sample:
    """A countertop with no receipt: sometimes a card, coins or a pen on it, and a shadow."""
    rng, np_rng = _rngs(seed, 2)
    fw, fh = size
    kind = rng.choice(BACKGROUNDS)
    frame = background(kind, fh, fw, rng, np_rng)
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        colour = tuple(rng.random() for _ in range(3))
        if rng.random() < 0.5:  # a coin
            cv2.circle(
                frame,
                (rng.randrange(fw), rng.randrange(fh)),
                rng.randint(12, 40),
                colour,
                -1,
                cv2.LINE_AA,
            )
        else:  # a card or a phone
            w, h = rng.randint(80, 300), rng.randint(50, 200)
            rect = ((rng.uniform(0, fw), rng.uniform(0, fh)), (w, h), rng.uniform(0, 180))
            cv2.fillPoly(frame, [cv2.boxPoints(rect).astype(np.int32)], colour, cv2.LINE_AA)
    if rng.random() < 0.5:
        frame = cast_shadow(frame, rng)
    image = camera(frame, rng, np_rng)
    label = SceneLabel(kind="empty", seed=seed, width=fw, height=fh, background=kind, corners=None)
    return Sample(image=image, paper=None, label=label)


def generate_scan(seed: int, size: tuple[int, int] = DEFAULT_SIZE) -> Sample:
    """A flatbed scan of a receipt, or a picture cropped to it: the flat paper on a white bed,
    turned at most 3 degrees, with 0 to 40 % of its size as margins (none a third of the time:
    the paper fills the picture), squeezed to `size` as a finder squeezes any picture to its
    input. No countertop: this is what `receipts scan` sees from a watched folder of scans
    (SROIE's receipts are such scans), and what the corner model must not cut.

    Only the label's corners and kind are filled (no text lines): the finder needs no more.
    """
    rng, np_rng = _rngs(seed, 3)
    main = _sheet(rng, np_rng)
    # The paper at about the picture's resolution (the scene effects cost per pixel).
    fw, fh = size
    shrink = min(1.0, fh / main.paper.shape[0])
    paper = cv2.resize(main.paper, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    ph, pw = paper.shape[:2]
    tight = rng.random() < 1 / 3
    mx = 0.0 if tight else rng.uniform(0.0, 0.4) * pw
    my = 0.0 if tight else rng.uniform(0.0, 0.3) * ph
    cw, ch = round(pw + 2 * mx), round(ph + 2 * my)
    bed = np.ones((ch, cw, 3), np.float32) * rng.uniform(0.85, 1.0)
    bed *= np.array([rng.uniform(0.96, 1.0) for _ in range(3)], np.float32)
    angle = 0.0 if tight else rng.uniform(-3.0, 3.0)
    rot = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, 1.0)
    rot[:, 2] += rot[:, :2] @ np.array([(cw - pw) / 2, (ch - ph) / 2])  # paper centred first
    hom = np.vstack([rot, [0.0, 0.0, 1.0]]).astype(np.float32)
    rgba = np.dstack([paper, np.ones((ph, pw), np.float32)])
    canvas = composite(bed, rgba, hom, rng)
    image = camera(canvas, rng, np_rng)
    image = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA)
    src = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float32)
    corners = cv2.perspectiveTransform(src[None], hom)[0] * np.array([fw / cw, fh / ch])
    corners = np.clip(corners, 0, [fw - 1, fh - 1])
    label = SceneLabel(
        kind="scan",
        seed=seed,
        width=fw,
        height=fh,
        background="scanner bed",
        corners=_quad(corners),
        paper_size=(pw, ph),
        locale=main.content.locale,
        font=main.flat.font,
    )
    return Sample(image=image, paper=None, label=label)
