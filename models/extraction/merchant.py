"""The merchant's name from the receipt's header block."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace

from models.extraction.address import MIN_SCORE, TAX_NUMBER_LABELS, evidence, only_place
from models.extraction.layout import Line, Page
from models.extraction.normalize import fold, ocr_clean, squash

_LEGAL = re.compile(
    r" (?:SDN BHD|SDN BND|SDN BHO|S B|SB|BHD|BERHAD|ENTERPRISE|ENTERPRISES|TRADING|TRADING CO|"
    r"LTD|LIMITED|LLC|INC|CORP|CORPORATION|GMBH|AG|KG|SARL|SAS|SA|SRL|SPA|BV|NV|PLC|PTY|PTE|"
    r"CO|COMPANY|RESTORAN|RESTAURANT|RESTAURANTS|KEDAI|PERNIAGAAN|SYARIKAT|MART|HARDWARE|"
    r"STATIONERY|BAKERIES|CAFE|MINI MARKET|SUPERMARKET|PHARMACY|FARMASI|HOTEL|STORE|SHOP|"
    r"CASH CARRY|KFT|ZRT|NYRT)(?= )"
)
# Words that describe a kind of shop: a line made of these alone ('BISTRO & CAFE', 'RESTAURANT')
# says what the shop is, not who it is, and the name is printed next to it.
_DESCRIPTOR_TEXT = (
    "SDN BHD S B SB BERHAD ENTERPRISE ENTERPRISES TRADING CO COMPANY LTD RESTORAN RESTAURANT "
    "RESTAURANTS CAFE BISTRO BAR KEDAI PERNIAGAAN SYARIKAT MART HARDWARE STATIONERY BAKERY "
    "BAKERIES MINI MARKET SUPERMARKET HYPERMARKET PHARMACY FARMASI HOTEL STORE STORES SHOP "
    "KOPITIAM CASH CARRY AND THE"
)
_DESCRIPTOR_WORDS = frozenset(_DESCRIPTOR_TEXT.split())
_SUFFIX = re.compile(
    r" (?:SDN BHD|SDN BND|S B|SB|BHD|BERHAD|ENTERPRISE|TRADING|LTD|LLC|INC|GMBH|PTE|PLC)(?= )"
)
# A legal name, then its registration number and whatever follows: 'X SDN BHD (123456-A) ...'.
_NAME_THEN_REG = re.compile(
    r"^(.*?\b(?:SDN\.?\s*BHD|S/B|SB|BHD|BERHAD|LTD|LLC|INC|GMBH|PTE|PLC)\.?)"
    r"\s*[\(\[]?\s*\d{4,}[\s-]*[A-Z]?\b.*$",
    re.IGNORECASE,
)
_LEGAL_START = re.compile(
    r"^ (?:RESTAURANT|RESTORAN|STATIONERY|TRADING|HARDWARE|ENTERPRISE|SDN BHD|CAFE) "
)
_CONTINUATION = re.compile(r"^ (?:CO|SDN|BHD|BERHAD|S B|ENTERPRISE|TRADING|M|LTD|INC|GMBH|&|AND) ")
_NOT_NAME = re.compile(
    r" (?:TAX INVOICE|INVOICE|RECEIPT|RESIT|WELCOME|SELAMAT|THANK|TEL|FAX|PHONE|GST|VAT|REG|"
    r"CO REG|COMPANY NO|ROC|DATE|CASHIER|TABLE|ORDER|BILL|COPY|MEMBER|SIMPLIFIED|OFFICIAL|"
    r"HTTP|WWW|EMAIL|E MAIL|CASH SALE|CASH BILL|QUOTATION|TQ|VISIT|SHOPPING WITH|POWERED BY|"
    rf"POSTED|PAID|ENTERED|RECEIVED|{TAX_NUMBER_LABELS})(?= )"
)
_WEB = re.compile(r"\w\.(?:COM|NET|ORG|CO|MY|DE|FR|UK)\b", re.IGNORECASE)
_ADDRESS_WORDS = re.compile(
    r" (?:JALAN|JLN|LOT|NO|TAMAN|TMN|LORONG|JL|BLOCK|BLK|FLOOR|FLR|LEVEL|STREET|ST|ROAD|RD|AVE|"
    r"AVENUE|BLVD|STRASSE|STR|RUE|CALLE|VIA|SUITE|UNIT|KAWASAN|PERSIARAN|SEKSYEN|SECTION|"
    r"BANDAR|KAMPUNG|KG|SELANGOR|KUALA LUMPUR|JOHOR|DARUL EHSAN|PLAZA|MALL|BUILDING)(?= )"
)
_REG_ONLY = re.compile(
    r"^\W*(?:(?:CO|BR|ROC|REG|COMPANY)[.\s-]*(?:REG|NO)?[.\s]*:?\s*)?\(?\s*[A-Z]{0,3}[\d\s]{4,}"
    r"\s*-?\s*[A-Z]?\s*\)?\W*$"
)
# A trailing registration number: in brackets (its digits maybe split by a space the OCR
# read: '(107 69-P)'), labelled, five digits or more, or with its check letter; a bare short
# number is part of the name ('TRIPLE SIX POINT ENTERPRISE 666').
_TRAILING_REG = re.compile(
    r"\s*(?:[\(\[]\s*(?:CO[.\s-]*(?:REG|NO)\.?\s*:?\s*)?\d{3,}(?:\s\d+)*[\s-]*[A-Z]?\s*[\)\]]?"
    r"|(?:CO[.\s-]*(?:REG|NO)\.?\s*:?\s*)\d{3,}[\s-]*[A-Z]?\s*[\)\]]?"
    r"|\d{5,}[\s-]*[A-Z]?\s*[\)\]]?|\d{3,}\s*-\s*[A-Z]\s*[\)\]]?)\s*$",
    re.IGNORECASE,
)
_REG_IN_BRACKETS = re.compile(r"\(\s*\d{5,}\s*-?\s*[A-Z]\s*\)\W*$", re.IGNORECASE)
# Nothing but a branch in brackets follows a Malaysian legal form in a name; what the OCR reads
# after it is a registration number too misread for `_NAME_THEN_REG` ('SDN BHD BOZTZ5-U') or
# specks glued to its full stop ('SDN. BHD.LLCY').
_JUNK_AFTER_BHD = re.compile(
    r"^(.*\b(?:BHD|BERHAD)\.?)(?:\s+[^\s(\[]*\d\S*|(?<=\.)[A-Z0-9]+)\s*$", re.IGNORECASE
)
_OWNED_BY = re.compile(
    r"^\s*(?:DIMILIKI(?: OLEH)?|OWNED BY|OWN BY|OPERATED BY)\s*:?\s*", re.IGNORECASE
)
# 'SDN BND', 'SDN BHO', 'SDN BHT', 'SDN 8HD', and 'SDN BH' with its last letter cut off by
# the box: 'BH' alone is no word, so after 'SDN' it is the legal form.
_SUFFIX_MISREAD = re.compile(r"(SDN\.?\s*)(?:B(?:ND|HO|H0|N0|HT|H)|8HD)\b", re.IGNORECASE)
# ... and its first word misread before a clean 'BHD': 'SEN BHD', 'S0N BHD' ('SBN' is not
# among them: SROIE train 562 prints it so).
_SDN_MISREAD = re.compile(r"\bS[E0]N(?=\.?\s*BHD\b)", re.IGNORECASE)
# 'C0' for 'CO' (company): a zero for the O of a two-letter word ('POPULAR BOOK C0 (M)').
_CO_MISREAD = re.compile(r"(?<![\w.])([Cc])0(?=\.?(?:\s|$))")
# A name cut after 'SDN' (the box of 'BHD' missed): 'SDN' is never a whole legal form.
_SDN_CUT = re.compile(r"\bSDN\.?\s*$", re.IGNORECASE)
# '(' read as 'C' before a bracketed word whose ')' has no '(': 'CO. C M ) SDN BHD'.
_PAREN_AS_C = re.compile(r"(?<![\w(])[Cc]\s*(\w{1,12})\s*\)")
# '&' read as '8' or 'B' between two words of a name: 'STATIONERY 8 BOOKS'. No name in the
# SROIE train keys has a lone 'B' or '8' between words; 35 have '&'.
_AMPERSAND_MISREAD = re.compile(r"(?<=[A-Za-z]{2}) [8B] (?=[A-Za-z]{2})")
_LEADING_JUNK = re.compile(r"^\s*#?\d{4,}\s+(?=[A-Z])", re.IGNORECASE)
_PHONE_ONLY = re.compile(r"^[\d\s()+\-/.,]{7,}$")
_CITY_STATE = re.compile(r"^[A-Za-z .'-]+,\s*[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?\.?$")
_DATEISH = re.compile(r"\d{1,4}\s*[/\-.]\s*\d{1,2}\s*[/\-.]\s*\d{2,4}|\d{1,2}:\d{2}")


#: Pieces of one row closer than this many line heights are one printed line.
PIECE_GAP = 1.5
#: ... and of font sizes within this ratio (a stamp beside the name is not part of it).
PIECE_SIZE = 1.3
#: The score of a line that cannot be the name (below the least a name is taken at, -2).
NOT_A_NAME = -5.0
#: Added to the score of the name-like line just above the address.
ABOVE_ADDRESS_BONUS = 1.0
#: ... and more when it is printed right on top of the address, as one block with it.
TOUCHING_BONUS = 0.5
#: Added to a name that carries its company registration number, on its line or the next:
#: the registered company is the merchant of record ('X SDN BHD (123456-A)').
REGISTRATION_BONUS = 1.5
_REG_NUMBER = re.compile(
    r"^\W*(?:(?:CO|COMPANY|REG|ROC|BR)\b[\w.\s]*?:?\s*)?\(?\s*\d{4,}\s*-?\s*[A-Z]\b"
)


@dataclass(frozen=True, slots=True)
class Found:
    value: str
    lines: list[int]
    confidence: float


def _letters_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 0.0


def _bhd(m: re.Match[str]) -> str:
    """'BHD' in the case style of the misread it replaces ('Bnd' -> 'Bhd')."""
    misread = m.group(0)[len(m.group(1)) :]
    word = "BHD" if misread.isupper() else "bhd" if misread.islower() else "Bhd"
    return m.group(1) + word


def clean_name(text: str) -> str:
    """The name without a trailing registration number or an 'owned by' prefix."""
    text = _OWNED_BY.sub("", text)
    text = _SUFFIX_MISREAD.sub(_bhd, text)  # OCR: 'SDN BND', 'SDN BHO', 'Sdn Bnd'
    text = _SDN_MISREAD.sub(lambda m: "SDN" if m.group(0).isupper() else "Sdn", text)
    text = _CO_MISREAD.sub(lambda m: m.group(1) + ("O" if m.group(1) == "C" else "o"), text)
    text = _AMPERSAND_MISREAD.sub(" & ", text)
    if text.count(")") > text.count("("):
        text = _PAREN_AS_C.sub(r"(\1)", text, count=1)
    # Numbers are found in the look-alike-corrected text ('(I39386-X)'), which has the same
    # length, and cut from the printed one.
    m = _NAME_THEN_REG.match(ocr_clean(text)) or _JUNK_AFTER_BHD.match(text)
    if m is not None:
        text = text[: m.end(1)]
    m = _LEADING_JUNK.match(ocr_clean(text))
    if m is not None:
        text = text[m.end() :]
    m = _TRAILING_REG.search(ocr_clean(text))
    stripped = (text[: m.start()] if m else text).strip()
    if _SDN_CUT.search(stripped) and len(stripped.split()) > 1:
        stripped += " BHD" if stripped[-3:].isupper() else " Bhd"
    return stripped or text.strip()


#: A line read with less confidence than this is not taken as the name for sitting just above
#: the address: it is most often a logo read as letters ('SC SPEEL.' at 0.52 for a Shell logo,
#: between 'HASHA PETROKIOSK' and the address), and the name is printed above it.
UNSURE_NAME = 0.8


def _name_score(line: Line, index: int) -> float:
    clean = ocr_clean(line.text)
    text = fold(clean)
    if _REG_ONLY.match(clean.upper()) or _PHONE_ONLY.match(clean.strip()):
        return -5.0
    if _DATEISH.search(line.text) or len(line.text.strip()) < 3:
        return -3.0
    if only_place(line.text):
        return -3.0  # 'SELANGOR' below the street, when the name above it was not read
    score = 0.0
    if has_legal_form(line.text):
        score += 3.0
    if _NOT_NAME.search(text) or _WEB.search(line.text):
        score -= 3.0
    if is_descriptor(line.text) and not _SUFFIX.search(text):
        score -= 4.0  # the trade word's bonus back, and then some: 'BISTRO & CAFE'
    if line.text.strip().startswith("("):
        score -= 2.0  # a branch or shop code in brackets qualifies the name above it
    if _ADDRESS_WORDS.search(text):
        score -= 1.5
    if _CITY_STATE.match(line.text.strip().upper()):
        score -= 3.0  # 'Denver, CO 80202' or 'denver, co': a city and its state, not a company
    score += 2.0 * _letters_share(line.text) - 1.0
    score += min(line.rel_height, 2.0) - 1.0
    score -= 0.35 * index
    return score


#: The most lines `header_lines` gives.
HEADER_LINES = 16


def header_lines(page: Page) -> list[Line]:
    """The lines of the receipt's top part, where the name and address are printed.

    Pieces of one printed line that OCR cut at a word space ('SUBANG HEALTHCARE SDN' + 'BHD')
    are joined into one line (keeping the first piece's id). At most `HEADER_LINES`: a logo
    read as a dozen scraps above the name must not push the address's last lines out (SROIE
    train 451; 14 lines cut its address after the street, and 16 changed nothing else on the
    train split, from ground-truth lines or our own OCR).
    """
    top = [ln for ln in page.lines if ln.rel_y < 0.45]
    return _join_pieces(top if len(top) >= 8 else list(page.lines[:8]))[:HEADER_LINES]


def _join_pieces(lines: list[Line]) -> list[Line]:
    out: list[Line] = []
    for ln in lines:
        prev = out[-1] if out else None
        if prev is None or not prev.same_row(ln):
            out.append(ln)
            continue
        left, right = (prev, ln) if prev.x0 <= ln.x0 else (ln, prev)
        similar = max(prev.height, ln.height) <= PIECE_SIZE * min(prev.height, ln.height)
        if not (similar and 0 <= right.x0 - left.x1 < PIECE_GAP * ln.height):
            out.append(ln)
            continue
        out[-1] = replace(
            left,
            text=f"{left.text} {right.text}",
            x1=right.x1,
            y0=min(prev.y0, ln.y0),
            y1=max(prev.y1, ln.y1),
            order=min(prev.order, ln.order),
        )
    return out


def _split_legal_name(text: str, prev: Line) -> bool:
    """'PASAR RAYA MEGA MAJU' / '(SEMENYIH) SDN BHD', 'GHEE HIANG' / 'GH DISTRIBUTOR SDN BHD'."""
    if _OWNED_BY.match(text) or not _SUFFIX.search(fold(text)):
        return False
    if re.search(r"\d", prev.text) or _LEGAL.search(fold(prev.text)):
        return False
    body = fold(_SUFFIX.split(fold(text))[0]).split()
    prev_words = fold(prev.text).split()
    if text.lstrip().startswith("(") or not body or all(len(w) <= 2 for w in body):
        return True  # '(SEMENYIH) SDN BHD', 'CO. (M) SDN BHD': the end of a wrapped name
    initials = "".join(w[0] for w in prev_words)
    if len(body[0]) > 1 and body[0] == initials:
        return True
    return len(body) == 1 and body[0] in prev_words


def _registered(header: list[Line], i: int) -> bool:
    """A legal name with its registration number inline, or a name line above that number."""
    text = ocr_clean(header[i].text).upper()
    if _NAME_THEN_REG.match(text) and has_legal_form(text):
        return True
    if _REG_IN_BRACKETS.search(text) and _letters_share(clean_name(text)) > 0.8:
        return True  # 'BEST DENKI MALAYSIA (308282-A)': a name with its number, no legal form
    below = [ln for ln in header[i + 1 :] if not ln.same_row(header[i])]
    return bool(below) and is_registration(below[0])


def _brand_above(header: list[Line], best: int) -> int:
    """An earlier line that the chosen one only extends with a branch ('DOMINO'S PIZZA' above
    'DOMINO'S PIZZA PERMAS JAYA'): the brand is the name, the longer line the outlet. A
    registered legal name is kept whole."""
    if has_legal_form(header[best].text) or _registered(header, best):
        return best  # 'LAVENDER' above 'LAVENDER CONFECTIONERY & BAKERY S/B': the company
    chosen = squash(clean_name(header[best].text))
    for k in range(best):
        brand = squash(clean_name(header[k].text))
        if len(brand) >= 4 and chosen.startswith(brand) and len(chosen) > len(brand):
            return k
    return best


#: A logo printed one word per line has at least this many lines.
MIN_STACK = 3
_ONE_WORD = re.compile(r"^[A-Za-z][A-Za-z'&-]{0,11}$")


def _touches(upper: Line, lower: Line) -> bool:
    """The lower line follows the upper one with no more than half a line between them."""
    return lower.y0 - upper.y1 < 0.5 * min(upper.height, lower.height)


def _stacked(upper: Line, lower: Line) -> bool:
    """Two one-word lines of a logo: touching (or overlapping) and one above the other."""
    gap = lower.y0 - upper.y1
    overlap = min(upper.x1, lower.x1) - max(upper.x0, lower.x0)
    return gap < 0.5 * min(upper.height, lower.height) and overlap > 0


def _logo_stack(header: list[Line], best: int) -> tuple[int, int, str] | None:
    """A name printed one word per line ('THE' / 'ROTI' / 'MAN' / 'BAKERY'): the first and
    last header index of the stack around `best` and its words joined, if it has MIN_STACK
    lines or more."""
    if not _ONE_WORD.match(header[best].text.strip()):
        return None
    start = end = best
    while start > 0 and _ONE_WORD.match(header[start - 1].text.strip()):
        if not _stacked(header[start - 1], header[start]):
            break
        start -= 1
    while end + 1 < len(header) and _ONE_WORD.match(header[end + 1].text.strip()):
        if not _stacked(header[end], header[end + 1]):
            break
        end += 1
    if end - start + 1 < MIN_STACK:
        return None
    return start, end, " ".join(ln.text.strip() for ln in header[start : end + 1])


_FORM_THEN_REST = re.compile(
    r"^(.*?\b(?:CO|COMPANY|SDN\.?\s*BHD|BHD|BERHAD|LTD|INC|ENTERPRISE|TRADING)\.?)\s+(\S.*)$",
    re.IGNORECASE,
)


def _without_outlet(text: str, below: list[Line]) -> str:
    """The name without the outlet printed after its legal form when the address below
    repeats it ('EIGHT OUNCE COFFEE CO. THE GARDENS MALL' over 'F.K06, ..., THE GARDENS
    MALL,'): at least two words, all of them in the lines below."""
    m = _FORM_THEN_REST.match(text)
    if m is None:
        return text
    tail = [w for w in fold(m.group(2)).split() if len(w) >= 3]
    words = set(fold(" ".join(ln.text for ln in below)).split())
    if len(tail) >= 2 and all(w in words for w in tail):
        return m.group(1)
    return text


def _wrap_backward(header: list[Line], best: int) -> tuple[int, str]:
    """Where the name starting at `best` really starts, and its text so far: a name wrapped
    backward ('POPULAR BOOK' / 'CO. (M) SDN BHD') takes the lines above it."""
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
        # A name whose end clearly continues it ('CO. (M) SDN BHD') may sit a little further.
        if header[start].y0 - header[start - 1].y1 > (1.2 if split else 0.8) * header[start].height:
            break
        prev = header[start - 1]
        if _name_score(prev, 0) < -1.0:
            break
        start -= 1
        text = f"{clean_name(prev.text)} {text}"
    return start, text


def find_merchant(
    page: Page, address_start: int | None = None, address_lines: Collection[int] = ()
) -> tuple[Found | None, int]:
    """The merchant's name and the reading-order index in the header where it ends.

    `address_start` is the header index of the address's first line, when one was found: the
    name is usually printed just above it. A line of the address (`address_lines`, ids) with
    the evidence of a whole address on its own (`address.MIN_SCORE`: two street words, a
    postcode) is not the name: when the name itself was not read (a logo), the best-scoring
    line is otherwise one of the address's ('KAWASAN PERINDUSTRIAN BALAKONG'), and taking it
    breaks the address too (SROIE train end to end: address +1 receipt; GT 5-fold CV
    unchanged, where excluding every address line cost 3 names and 3 addresses).
    """
    header = header_lines(page)
    if not header:
        return None, -1

    def score(line: Line, i: int) -> float:
        if line.id in address_lines and evidence(line) >= MIN_SCORE:
            return NOT_A_NAME
        return _name_score(line, i)

    scored = [(score(ln, i), i) for i, ln in enumerate(header[:10])]
    if address_start is not None:
        above = [
            (s, i)
            for s, i in scored
            if i < address_start
            and s > -1.0
            and not header[i].text.lstrip().startswith("(")
            and header[i].confidence >= UNSURE_NAME  # a logo read as letters names nothing
        ]
        if above:
            s, i = above[-1]
            # ... unless a legal name is printed above it: then it names the branch.
            touching = (
                i + 1 == address_start
                and _touches(header[i], header[address_start])
                and not any(has_legal_form(ln.text) for ln in header[:i])
            )
            scored[i] = (s + ABOVE_ADDRESS_BONUS + TOUCHING_BONUS * touching, i)
    for k, (s, i) in enumerate(scored):
        if s > -1.0 and _registered(header, i):
            scored[k] = (s + REGISTRATION_BONUS, i)
    best_score, best = max(scored)
    best = _brand_above(header, best)
    if best_score < -2.0:
        return None, -1
    stack = _logo_stack(header, best)
    start, text = (stack[0], stack[2]) if stack else _wrap_backward(header, best)
    end = stack[1] if stack else best
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
        wraps = wraps or (
            bool(_SUFFIX.search(nxt_folded))
            and not _SUFFIX.search(fold(text))
            and _split_legal_name(nxt.text, header[end])
        )
        if not wraps:
            break
        end += 1
        text = f"{text} {clean_name(nxt.text)}"
    text = _without_outlet(text, header[end + 1 : end + 5])
    margin = best_score - max((s for s, i in scored if i != best), default=-5.0)
    confidence = max(0.05, min(0.97, 0.5 + 0.12 * best_score + 0.1 * min(margin, 2.0)))
    ids = [ln.id for ln in header[start : end + 1]]
    return Found(text.strip(" ,.:;-") or text, ids, round(confidence, 3)), end


def name_score(line: Line, index: int) -> float:
    """How much the line reads as the merchant's name at header position `index` (rule score)."""
    return _name_score(line, index)


def has_legal_form(text: str) -> bool:
    """A company form or trade word ('SDN BHD', 'LTD', 'GMBH', 'RESTAURANT') in the text."""
    return bool(_LEGAL.search(fold(ocr_clean(clean_name(text)))))


def is_descriptor(text: str) -> bool:
    """Only words for a kind of shop or company form ('BISTRO & CAFE', 'RESTAURANT SDN BHD'):
    what the shop is, not its name."""
    words = fold(ocr_clean(text)).split()
    return bool(words) and all(w in _DESCRIPTOR_WORDS for w in words)


def is_not_name(text: str) -> bool:
    """Words that mark a header line as something other than a name (invoice, phone, web)."""
    return bool(_NOT_NAME.search(fold(text)) or _WEB.search(text))


def is_registration(line: Line) -> bool:
    """A company registration number line: '(1219716-T)', 'REG NO : 91694-X', 'CO NO 123456-A'."""
    return bool(_REG_NUMBER.match(ocr_clean(line.text.strip()).upper()))


def is_owned_by(text: str) -> bool:
    return bool(_OWNED_BY.match(text))
