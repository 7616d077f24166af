"""The receipt in the photo: find its outline, rectify it, and judge the image's quality."""

from models.document.finder import ContourFinder, Detection, ReceiptFinder
from models.document.quality import QualityThresholds, assess_quality
from models.document.rectify import rectify
from models.document.refine import RefineSettings, refine_quad

__all__ = [
    "ContourFinder",
    "Detection",
    "QualityThresholds",
    "ReceiptFinder",
    "RefineSettings",
    "assess_quality",
    "rectify",
    "refine_quad",
]
