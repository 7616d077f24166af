"""The LiteRT receipt finder: the trained corner model behind the `ReceiptFinder` protocol.

Loads ``finder`` from a model folder (sha256 checked against its manifest), runs it on the frame
resized to its input (`models.litert.corners`), and answers None when its presence score is
below the threshold, so an empty countertop never gets a quad. Corners come back clockwise from
the top-left in the frame's pixels; a quad covering most of the frame is reported as a flat
scan (the paper fills the picture), as the contract in `models.document.finder` asks.

The model places corners on a 4-pixel grid of its 192x256 input, to 1-3 % of the receipt's
diagonal: too coarse for a narrow receipt's IoU. Unless `refine=False`, the decoded quad is
snapped onto the paper's edges in the full frame (`models.document.refine`), which keeps the
model's quad wherever it finds no clear edge. Paper that the model sees outside that receipt is
reported as other receipts (`Detection.others`, `models.litert.corners.other_quads`).

The corner model learnt from countertop photos only. A flatbed scan (white paper on a white
bed, no countertop) is outside what it saw: on 60 SROIE train scans its quads cut text off 41
pages. So the classical finder also looks (`scan_check`, `models.document.finder.ContourFinder`,
about 25 ms a frame), and when it calls the frame a flat scan (paper with print in rows, or a
paper outline filling it, as 618 of the 626 SROIE scans) while the model's outline leaves
`scan_print_share` or more of the frame's print outside it (`print_outside`), the flat-scan
verdict wins: a receipt's print is on the receipt. The contour finder alone calls 5 in 100
generated countertop photos flat; there the model's outline holds all the print and stands.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from models.document.finder import ContourFinder, Detection, print_outside
from models.document.geometry import order_corners, quad_area
from models.document.refine import RefineSettings, refine_quad
from models.litert.corners import INPUT_SIZE, PAPER, decode_heatmaps, other_quads, prepare_frame
from models.litert.runtime import load_model

logger = logging.getLogger(__name__)


class LiteRTFinder:
    """`ReceiptFinder` running the int8 finder model; see the module docstring."""

    name = "litert"

    def __init__(
        self,
        folder: Path,
        *,
        model_name: str = "finder",
        num_threads: int = 1,
        presence_threshold: float = 0.5,
        flat_area: float = 0.85,
        xnnpack: bool = True,
        refine: bool = True,
        refine_settings: RefineSettings | None = None,
        scan_check: bool = True,
        scan_print_share: float = 0.01,
    ) -> None:
        self._model = load_model(folder, model_name, num_threads=num_threads, xnnpack=xnnpack)
        entry = self._model.entry
        self.version = entry.version if entry else "unknown"
        self._input_size = (
            (int(entry.input["width"]), int(entry.input["height"]))
            if entry and {"width", "height"} <= entry.input.keys()
            else INPUT_SIZE
        )
        self._threshold = presence_threshold
        self._flat_area = flat_area
        self._refine = refine
        self._refine_settings = refine_settings or RefineSettings()
        self._scan_check = ContourFinder() if scan_check else None
        self._scan_print_share = scan_print_share

    def find(self, image: np.ndarray) -> Detection | None:
        """The receipt's outline in a BGR uint8 frame, or None when the model sees none."""
        classic = self._scan_check.find(image) if self._scan_check is not None else None
        scan = classic if classic is not None and classic.flat_scan else None
        height, width = image.shape[:2]
        rgb = (
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            if image.ndim == 3
            else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        )
        outputs = self._model.run(prepare_frame(rgb, self._input_size)[None])
        by_rank = sorted(outputs, key=lambda o: o.ndim)
        presence, maps = float(by_rank[0].reshape(-1)[0]), by_rank[-1][0]
        if presence < self._threshold:
            logger.debug("finder: no receipt (presence %.2f)", presence)
            return scan
        coarse = order_corners(decode_heatmaps(maps, (width, height)))
        others = (
            tuple(other_quads(maps[..., PAPER], coarse, (width, height)))
            if maps.shape[-1] > PAPER  # a model with a paper map
            else ()
        )
        quad = coarse
        if self._refine:
            quad = order_corners(refine_quad(image, coarse, self._refine_settings))
        if scan is not None and print_outside(image, quad) >= self._scan_print_share:
            logger.debug("finder: a flat scan; the model's outline left print outside")
            return scan
        flat = quad_area(quad) >= self._flat_area * width * height
        return Detection(quad=quad, score=presence, flat_scan=flat, others=others)
