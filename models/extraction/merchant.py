"""The merchant's name from the receipt's header block."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.extraction.layout import Line, Page
from models.extraction.normalize import fold

_LEGAL = re.compile(
    r" (?:SDN BHD|SDN BND|SDN BHO|S B|SB|BHD|BERHAD|ENTERPRISE|ENTERPRISES|TRADING|TRADING CO|"
    r"LTD|LIMITED|LLC|INC|CORP|CORPORATION|GMBH|AG|KG|SARL|SAS|SA|SRL|SPA|BV|NV|PLC|PTY|PTE|"
    r"CO|COMPANY|RESTORAN|RESTAURANT|RESTAURANTS|KEDAI|PERNIAGAAN|SYARIKAT|MART|HARDWARE|"
    r"STATIONERY|BAKERIES|CAFE|MINI MARKET|SUPERMARKET|PHARMACY|FARMASI|HOTEL|STORE|SHOP)(?= )"
)
_SUFFIX = re.compile(
    r" (?:SDN BHD|SDN BND|S B|SB|BHD|BERHAD|ENTERPRISE|TRADING|LTD|LLC|INC|GMBH|PTE|PLC)(?= )"
)
# A legal name, then its registration number and whatever follows: 'X SDN BHD (123456-A) ...'.
_NAME_THEN_REG = re.compile(
    r"^(.*?\b(?:SDN\.?\s*BHD|S/B|SB|BHD|BERHAD|LTD|LLC|INC|GMBH|PTE|PLC)\.?)"
    r"\s*[\(\[]?\s*\d{4,}[\s-]*[A-Z]?\b.*$"
)
_LEGAL_START = re.compile(
    r"^ (?:RESTAURANT|RESTORAN|STATIONERY|TRADING|HARDWARE|ENTERPRISE|SDN BHD|CAFE) "
)
_CONTINUATION = re.compile(r"^ (?:CO|SDN|BHD|BERHAD|S B|ENTERPRISE|TRADING|M|LTD|INC|GMBH|&|AND) ")
_NOT_NAME = re.compile(
    r" (?:TAX INVOICE|INVOICE|RECEIPT|RESIT|WELCOME|SELAMAT|THANK|TEL|FAX|PHONE|GST|VAT|REG|"
    r"CO REG|COMPANY NO|ROC|DATE|CASHIER|TABLE|ORDER|BILL|COPY|MEMBER|SIMPLIFIED|OFFICIAL|"
    r"HTTP|WWW|EMAIL|E MAIL|CASH SALE|CASH BILL|QUOTATION|TQ|VISIT|SHOPPING WITH|POWERED BY)(?= )"
)
_WEB = re.compile(r"\w\.(?:COM|NET|ORG|CO|MY|DE|FR|UK)\b", re.IGNORECASE)
_ADDRESS_WORDS = re.compile(
    r" (?:JALAN|JLN|LOT|NO|TAMAN|TMN|LORONG|JL|BLOCK|BLK|FLOOR|FLR|LEVEL|STREET|ST|ROAD|RD|AVE|"
    r"AVENUE|BLVD|STRASSE|STR|RUE|CALLE|VIA|SUITE|UNIT|KAWASAN|PERSIARAN|SEKSYEN|SECTION|"
    r"BANDAR|KAMPUNG|KG|SELANGOR|KUALA LUMPUR|JOHOR|MALAYSIA|DARUL EHSAN|PLAZA|MALL|BUILDING)(?= )"
)
_REG_ONLY = re.compile(
    r"^\W*(?:(?:CO|BR|ROC|REG|COMPANY)[.\s-]*(?:REG|NO)?[.\s]*:?\s*)?\(?\s*[A-Z]{0,3}[\d\s]{4,}"
    r"\s*-?\s*[A-Z]?\s*\)?\W*$"
)
_TRAILING_REG = re.compile(
    r"\s*[\(\[]?\s*(?:CO\.?\s*(?:REG|NO)\.?\s*:?\s*)?\d{3,}[\s-]*[A-Z]?\s*[\)\]]?\s*$"
)
_OWNED_BY = re.compile(
    r"^\s*(?:DIMILIKI(?: OLEH)?|OWNED BY|OWN BY|OPERATED BY)\s*:?\s*", re.IGNORECASE
)
_SUFFIX_MISREAD = re.compile(r"(SDN\.?\s*)B(?:ND|HO|H0|N0)\b")
_LEADING_JUNK = re.compile(r"^\s*#?\d{4,}\s+(?=[A-Z])")
_PHONE_ONLY = re.compile(r"^[\d\s()+\-/.,]{7,}$")
_CONTACT = re.compile(r"@|\b(?:H/P|T|F|P)\s?:\s?\+?\d|\bTEL\b|\bFAX\b", re.IGNORECASE)
_DATEISH = re.compile(r"\d{1,4}\s*[/\-.]\s*\d{1,2}\s*[/\-.]\s*\d{2,4}|\d{1,2}:\d{2}")


#: Added to the score of the name-like line just above the address.
ABOVE_ADDRESS_BONUS = 1.0


@dataclass(frozen=True, slots=True)
class Found:
    value: str
    lines: list[int]
    confidence: float


def _letters_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 0.0


def clean_name(text: str) -> str:
    """The name without a trailing registration number or an 'owned by' prefix."""
    text = _OWNED_BY.sub("", text)
    text = _SUFFIX_MISREAD.sub(r"\1BHD", text)  # OCR: 'SDN BND', 'SDN BHO'
    text = _NAME_THEN_REG.sub(r"\1", text)
    text = _LEADING_JUNK.sub("", text)
    stripped = _TRAILING_REG.sub("", text).strip()
    return stripped or text.strip()


def _name_score(line: Line, index: int) -> float:
    text = fold(line.text)
    if _REG_ONLY.match(line.text.upper()) or _PHONE_ONLY.match(line.text.strip()):
        return -5.0
    if _DATEISH.search(line.text) or len(line.text.strip()) < 3:
        return -3.0
    score = 0.0
    if _LEGAL.search(fold(clean_name(line.text))):
        score += 3.0
    if _NOT_NAME.search(text) or _WEB.search(line.text):
        score -= 3.0
    if line.text.strip().startswith("("):
        score -= 2.0  # a branch or shop code in brackets qualifies the name above it
    if _ADDRESS_WORDS.search(text):
        score -= 1.5
    score += 2.0 * _letters_share(line.text) - 1.0
    score += min(line.rel_height, 2.0) - 1.0
    score -= 0.35 * index
    return score


def header_lines(page: Page) -> list[Line]:
    """The lines of the receipt's top part, where the name and address are printed."""
    top = [ln for ln in page.lines if ln.rel_y < 0.45]
    return (top if len(top) >= 8 else list(page.lines[:8]))[:14]


def _split_legal_name(text: str, prev: Line) -> bool:
    """'PASAR RAYA MEGA MAJU' / '(SEMENYIH) SDN BHD', 'GHEE HIANG' / 'GH DISTRIBUTOR SDN BHD'."""
    if _OWNED_BY.match(text) or not _SUFFIX.search(fold(text)):
        return False
    if re.search(r"\d", prev.text) or _LEGAL.search(fold(prev.text)):
        return False
    body = fold(_SUFFIX.split(fold(text))[0]).split()
    prev_words = fold(prev.text).split()
    if text.lstrip().startswith("(") or not body:
        return True
    initials = "".join(w[0] for w in prev_words)
    if len(body[0]) > 1 and body[0] == initials:
        return True
    return len(body) == 1 and body[0] in prev_words


def find_merchant(page: Page, address_start: int | None = None) -> tuple[Found | None, int]:
    """The merchant's name and the reading-order index in the header where it ends.

    `address_start` is the header index of the address's first line, when one was found: the
    name is usually printed just above it.
    """
    header = header_lines(page)
    if not header:
        return None, -1
    scored = [(_name_score(ln, i), i) for i, ln in enumerate(header[:10])]
    if address_start is not None:
        above = [
            (s, i)
            for s, i in scored
            if i < address_start and s > -1.0 and not header[i].text.lstrip().startswith("(")
        ]
        if above:
            s, i = above[-1]
            scored[i] = (s + ABOVE_ADDRESS_BONUS, i)
    best_score, best = max(scored)
    if best_score < -2.0:
        return None, -1
    start = best
    # A name wrapped backward: 'POPULAR BOOK' / 'CO. (M) SDN BHD'.
    text = clean_name(header[best].text)
    while start > 0:
        joined = clean_name(header[start].text) if start == best else text
        opens = joined.count("(") - joined.count(")")
        starts_legal = bool(_LEGAL_START.match(fold(joined)))
        split = start == best and _split_legal_name(header[start].text, header[start - 1])
        if not (_CONTINUATION.match(fold(joined)) or opens < 0 or starts_legal or split):
            break
        if header[start].y0 - header[start - 1].y1 > 0.8 * header[start].height:
            break
        prev = header[start - 1]
        if _name_score(prev, 0) < -1.0:
            break
        start -= 1
        text = f"{clean_name(prev.text)} {text}"
    end = best
    # ... or wrapped forward: 'AIK HUAT HARDWARE' / 'ENTERPRISE (SETIA' / 'ALAM) SDN BHD'.
    while end + 1 < len(header) and end - start < 3:
        nxt = header[end + 1]
        gap = nxt.y0 - header[end].y1
        if gap > 0.8 * header[end].height or _name_score(nxt, 0) < -1.0:
            break
        opens = text.count("(") - text.count(")")
        nxt_folded = fold(clean_name(nxt.text))
        wraps = opens > 0 or text.rstrip().endswith(("&", "-", ","))
        wraps = wraps or bool(_CONTINUATION.match(nxt_folded))
        wraps = wraps or (bool(_SUFFIX.search(nxt_folded)) and not _SUFFIX.search(fold(text)))
        if not wraps:
            break
        end += 1
        text = f"{text} {clean_name(nxt.text)}"
    margin = best_score - max((s for s, i in scored if i != best), default=-5.0)
    confidence = max(0.05, min(0.97, 0.5 + 0.12 * best_score + 0.1 * min(margin, 2.0)))
    ids = [ln.id for ln in header[start : end + 1]]
    return Found(text.strip(" ,.:;-") or text, ids, round(confidence, 3)), end


def name_score(line: Line, index: int) -> float:
    """How much the line reads as the merchant's name at header position `index` (rule score)."""
    return _name_score(line, index)


def has_legal_form(text: str) -> bool:
    """A company form or trade word ('SDN BHD', 'LTD', 'GMBH', 'RESTAURANT') in the text."""
    return bool(_LEGAL.search(fold(clean_name(text))))


def is_not_name(text: str) -> bool:
    """Words that mark a header line as something other than a name (invoice, phone, web)."""
    return bool(_NOT_NAME.search(fold(text)) or _WEB.search(text))


def is_owned_by(text: str) -> bool:
    return bool(_OWNED_BY.match(text))
