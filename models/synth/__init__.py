"""Synthetic receipts: labelled photos, flat receipts and line crops, deterministic by seed."""

from models.synth.generate import Sample, generate_empty, generate_receipt, generate_scan
from models.synth.labels import SceneLabel
from models.synth.lines import generate_line

__all__ = [
    "Sample",
    "SceneLabel",
    "generate_empty",
    "generate_line",
    "generate_receipt",
    "generate_scan",
]
