"""Receipt field extraction: OCR lines to a structured, checked receipt (`extract_fields`).

Candidates with evidence, then the arithmetically consistent choice, calibrated confidences and
review reasons; see README.md beside this file for the design and the figures.
"""

from models.extraction.extract import REVIEW_THRESHOLD, Extraction, extract_fields

__all__ = ["REVIEW_THRESHOLD", "Extraction", "extract_fields"]
