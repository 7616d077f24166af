"""The receipt in the photo: find its outline, rectify it, and judge the image's quality."""

from models.document.finder import ContourFinder, Detection, ReceiptFinder
from models.document.quality import QualityThresholds, assess_quality
from models.document.rectify import rectify

__all__ = [
    "ContourFinder",
    "Detection",
    "QualityThresholds",
    "ReceiptFinder",
    "assess_quality",
    "rectify",
]
