"""Receipt field extraction: OCR lines to a structured, checked receipt (`extract_fields`)."""

from models.extraction.extract import REVIEW_THRESHOLD, Extraction, extract_fields

__all__ = ["REVIEW_THRESHOLD", "Extraction", "extract_fields"]
