"""Duplicate receipts: the same paper receipt scanned or uploaded twice is flagged, not counted
twice.

The rule. A receipt R is marked ``duplicate_of`` an earlier receipt O of the same organisation
when all of these hold:

- O is an original (not itself flagged) and came first: (received_at, id) is smaller;
- the merchant, normalised (case, accents, spacing and punctuation ignored), is the same
  and not empty; the printed date is the same and read; the total is the same and read;
- both have an image and their 64-bit difference hashes (`dhash`) differ in at most
  `MAX_DISTANCE` bits: a second photo of the same paper, not another customer's receipt;
- where both receipts have a receipt number or a time read, they agree (two coffees bought the
  same day at the same till print near-identical receipts that differ just there);
- nobody marked R "not a duplicate" (`not_duplicate`; audited, see the dashboard).

Without an image there is no flag: the fields alone cannot tell a second scan from a second
purchase of the same amount on the same day. Images reach the server separately from their
receipts, in either order, so the check runs both when a receipt is admitted
(`server.receipts.intake.admit_receipts`) and when its image is stored (the ingest batch, the
upload job), and it looks at the whole group of receipts sharing that date, so a late image can
flag a later receipt as well as its own. Flags are only ever added here; a person removes one.

Two copies written at the same instant by two ingest workers do not see each other's
uncommitted rows and stay unflagged; the next image or receipt of that date re-checks the group.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import cv2
import numpy as np
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from server.db.models import Receipt, ReceiptImage

logger = logging.getLogger(__name__)

#: Most differing bits of two images' dHash for "the same receipt". Two JPEG encodings or
#: photos of one receipt differ in a few bits; unrelated receipts in about 32 (half).
MAX_DISTANCE = 10


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of a BGR or grey uint8 image, as a signed int64 (for BIGINT).

    The image is shrunk to 9x8 grey pixels; each bit says whether a pixel is brighter than its
    right neighbour. Scaling, recompression and small exposure changes leave it nearly unchanged.
    """
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value - (1 << 64) if value >= 1 << 63 else value


def image_dhash(data: bytes) -> int | None:
    """`dhash` of encoded image bytes (JPEG decoded at 1/8 scale: fast), None if undecodable."""
    buf = np.frombuffer(data, dtype=np.uint8)
    grey = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8) if buf.size else None
    if grey is None or grey.size == 0:
        return None
    return dhash(grey)


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes (signed or not)."""
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


def normalise_merchant(name: str | None) -> str:
    """Letters and digits of a merchant name, case-folded, accents removed: 'Café-Bar ' ->
    'cafebar'."""
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed.casefold() if c.isalnum())


@dataclass(frozen=True)
class _Candidate:
    id: uuid.UUID
    received_at: dt.datetime
    merchant: str
    total: Decimal | None
    dhash: int | None
    number: str | None
    time: str | None
    duplicate_of: uuid.UUID | None
    not_duplicate: bool


def _same_receipt(r: _Candidate, o: _Candidate, max_distance: int) -> bool:
    if not r.merchant or r.merchant != o.merchant:
        return False
    if r.total is None or o.total is None or r.total != o.total:
        return False
    if r.dhash is None or o.dhash is None or hamming(r.dhash, o.dhash) > max_distance:
        return False
    if r.number and o.number and r.number.strip() != o.number.strip():
        return False
    return not (r.time and o.time and r.time != o.time)


def find_duplicates(
    group: Sequence[_Candidate], max_distance: int = MAX_DISTANCE
) -> dict[uuid.UUID, uuid.UUID]:
    """New flags for a group of receipts of one organisation and date: receipt -> original."""
    ordered = sorted(group, key=lambda c: (c.received_at, c.id))
    originals: list[_Candidate] = []
    flags: dict[uuid.UUID, uuid.UUID] = {}
    for c in ordered:
        if c.duplicate_of is not None:
            continue
        match = None
        if not c.not_duplicate:
            match = next((o for o in originals if _same_receipt(c, o, max_distance)), None)
        if match is None:
            originals.append(c)
        else:
            flags[c.id] = match.id
    return flags


def flag_duplicates(
    session: Session, receipt_ids: Iterable[uuid.UUID], max_distance: int = MAX_DISTANCE
) -> dict[uuid.UUID, uuid.UUID]:
    """Check the receipts (and the others of their organisation and date) in the caller's
    transaction; set `duplicate_of` where the rule holds. Returns the flags set."""
    ids = set(receipt_ids)
    if not ids:
        return {}
    keys = session.execute(
        select(Receipt.organization_id, Receipt.receipt_date, Receipt.total)
        .where(
            Receipt.id.in_(ids),
            Receipt.receipt_date.is_not(None),
            Receipt.total.is_not(None),
            Receipt.merchant.is_not(None),
        )
        .distinct()
    ).all()
    totals: dict[tuple[uuid.UUID, dt.date], set[Decimal]] = defaultdict(set)
    for organization_id, date, total in keys:
        if date is not None and total is not None:
            totals[(organization_id, date)].add(total)
    flags: dict[uuid.UUID, uuid.UUID] = {}
    for (organization_id, date), amounts in totals.items():
        group = _group(session, organization_id, date, amounts)
        flags.update(find_duplicates(group, max_distance))
    by_original: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for dup, original in flags.items():
        by_original[original].append(dup)
    for original, dups in by_original.items():
        session.execute(
            update(Receipt)
            .where(Receipt.id.in_(dups), Receipt.duplicate_of.is_(None))
            .values(duplicate_of=original)
        )
        logger.info("receipts %s flagged as duplicates of %s", ", ".join(map(str, dups)), original)
    if flags:
        session.flush()
    return flags


def _group(
    session: Session, organization_id: uuid.UUID, date: dt.date, totals: set[Decimal]
) -> list[_Candidate]:
    """Receipts of the organisation and date that have an image hash (only they can match)."""
    fields = Receipt.document[("receipt", "fields")]
    q = (
        select(
            Receipt.id,
            Receipt.received_at,
            Receipt.merchant,
            Receipt.total,
            ReceiptImage.dhash,
            fields[("receipt_number", "value")].as_string(),
            fields[("time", "value")].as_string(),
            Receipt.duplicate_of,
            Receipt.not_duplicate,
        )
        .join(
            ReceiptImage,
            and_(
                ReceiptImage.receipt_id == Receipt.id,
                ReceiptImage.organization_id == Receipt.organization_id,
            ),
        )
        .where(
            Receipt.organization_id == organization_id,
            Receipt.effective_date == date,  # the index; equal to receipt_date where printed
            Receipt.receipt_date == date,
            ReceiptImage.dhash.is_not(None),
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        # exact NUMERIC comparison; SQLite keeps money as text ("12.5" vs "12.50"): compared
        # as Decimals below instead
        q = q.where(Receipt.total.in_(sorted(totals)))
    rows = session.execute(q)
    return [
        _Candidate(
            id=r[0],
            received_at=r[1],
            merchant=normalise_merchant(r[2]),
            total=r[3],
            dhash=r[4],
            number=r[5],
            time=r[6],
            duplicate_of=r[7],
            not_duplicate=bool(r[8]),
        )
        for r in rows
    ]
