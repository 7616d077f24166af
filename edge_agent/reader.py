"""The seam between the agent and the read pipeline: anything that turns an image into a receipt.

`models.pipeline.Pipeline` satisfies `Reader`; tests of delivery inject a quick one so they do
not depend on OCR speed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from models.receipt import Receipt


class ReadOutcome(Protocol):
    """What reading one image gives: the receipt and the rectified image (BGR) it was read from."""

    @property
    def receipt(self) -> Receipt: ...

    @property
    def rectified(self) -> np.ndarray: ...


class Reader(Protocol):
    """Reads one BGR image. SHALL NOT keep a reference to the image after returning."""

    def read(self, image: np.ndarray) -> ReadOutcome: ...
