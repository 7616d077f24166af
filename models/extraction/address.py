"""The merchant's address: the run of header lines with the most address evidence."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from models.extraction.layout import Line, Page
from models.extraction.lexicon import repair_words
from models.extraction.normalize import fold, ocr_clean, strip_accents

# Street and building words in the common Latin-alphabet languages, matched as folded words.
_STREET = re.compile(
    r" (?:JALAN|JLN|JL|LORONG|LRG|TAMAN|TMN|KAWASAN|PERSIARAN|SEKSYEN|BANDAR|KAMPUNG|KG|PUSAT|"
    r"BANGUNAN|WISMA|MENARA|KOMPLEKS|COMPLEKS|LEBUHRAYA|LEBUH|DESA|PERINDUSTRIAN|MEDAN|KWS|SEK|"
    r"BDR|PANGSAPURI|MUKIM|TOWER|APARTMENT|"
    r"LOT|NO|BLOCK|BLK|FLOOR|FLR|LEVEL|LVL|SUITE|STE|UNIT|BUILDING|BLDG|MALL|PLAZA|CENTRE|CENTER|"
    r"COMPLEX|INDUSTRIAL|ESTATE|PARK|SQUARE|SQ|GROUND|BASEMENT|"
    r"STREET|ST|ROAD|RD|AVENUE|AVE|AV|BLVD|BOULEVARD|LANE|LN|DRIVE|DR|HIGHWAY|HWY|WAY|PLACE|PL|"
    r"COURT|CT|TERRACE|CRESCENT|PARKWAY|PKWY|ROUTE|RTE|PO BOX|"
    r"AUTOROUTE|AUTOBAHN|AUTOSTRADA|AUTOPISTA|AUTOESTRADA|"
    r"RUE|CHEMIN|ALLEE|IMPASSE|QUAI|CALLE|AVENIDA|CARRERA|CAMINO|PASEO|CARRER|VIA|VIALE|PIAZZA|"
    r"CORSO|LARGO|RUA|TRAVESSA|PRACA|ULICA|UL|ALEJA|AL|PLAC|OSIEDLE|OS|PLATZ|STRAAT|PLEIN|GRACHT|"
    r"CHOME|KU|UTCA|UT|TER|KORUT|KRT|NAMESTI|NAM|TRIDA|ULICE|NABREZI|"
    r"CADDESI|CAD|SOKAK|SOKAGI|SOK|BULVARI|BLV|MAHALLESI|MAH|"
    r"ADDRESS|ADRESSE|ANSCHRIFT|ALAMAT|DIRECCION|INDIRIZZO|ADRES)(?= )"
)
# Street words written as the end of a compound: 'Hauptstraße', 'Kerkstraat', 'Storgatan'.
_STREET_SUFFIX = re.compile(
    r"[A-Z]{3,}(?:STRASSE|STR|WEG|GASSE|PLATZ|ALLEE|DAMM|STRAAT|LAAN|GRACHT|GATAN|GATE|VEJ|VEIEN|"
    r"GADE|TORV|STRAEDE)"
    r"(?= )"
)
# States, regions and countries: a line naming one is part of an address.
_PLACE = re.compile(
    r" (?:SELANGOR|KUALA LUMPUR|JOHOR|JOHOR BAHRU|PENANG|PULAU PINANG|PERAK|PAHANG|KEDAH|KELANTAN|"
    r"TERENGGANU|MELAKA|MALACCA|NEGERI SEMBILAN|PERLIS|SABAH|SARAWAK|PUTRAJAYA|LABUAN|"
    r"DARUL EHSAN|DARUL TAKZIM|DARUL MAKMUR|DARUL AMAN|DARUL KHUSUS|DARUL RIDZUAN|"
    r"WILAYAH PERSEKUTUAN|"
    r"MALAYSIA|SINGAPORE|INDONESIA|THAILAND|PHILIPPINES|AUSTRALIA|NEW ZEALAND|CANADA|USA|"
    r"UNITED STATES|UNITED KINGDOM|UK|ENGLAND|SCOTLAND|WALES|IRELAND|GERMANY|DEUTSCHLAND|"
    r"FRANCE|SPAIN|ESPANA|ITALY|ITALIA|NETHERLANDS|NEDERLAND|BELGIUM|BELGIQUE|SCHWEIZ|SUISSE|"
    r"OSTERREICH|AUSTRIA|PORTUGAL|SWEDEN|SVERIGE|NORWAY|NORGE|DENMARK|DANMARK|POLSKA|LONDON|"
    r"PARIS|BERLIN|MADRID|ROMA|MILANO|AMSTERDAM|NEW YORK|NY|CA|TX|FL|IL|WA|MA|NSW|VIC|QLD|"
    r"WARSZAWA|KRAKOW|WROCLAW|GDANSK|POZNAN|LODZ|STOCKHOLM|GOTEBORG|MALMO|"
    r"TOKYO|OSAKA|KYOTO|YOKOHAMA|NAGOYA|SAPPORO|FUKUOKA|KOBE|JAPAN|NIPPON|"
    r"BUDAPEST|DEBRECEN|SZEGED|MISKOLC|PECS|GYOR|MAGYARORSZAG|HUNGARY|"
    r"GLASGOW|EDINBURGH|MANCHESTER|BIRMINGHAM|LIVERPOOL|LEEDS|BRISTOL|CARDIFF|BELFAST)(?= )"
)
_US_STATES = (
    r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
    r"NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC)"
)
#: A US state and its ZIP code ('TX 78701'), in upper-case text.
US_STATE_ZIP = re.compile(rf"\b{_US_STATES}\s+\d{{5}}(?:-\d{{4}})?\b")
#: 'Boston, MA' ending its line: a city and its state, the way US addresses end without a ZIP.
US_CITY_STATE = re.compile(rf"[A-Z],\s*{_US_STATES}\s*$", re.MULTILINE)
_POSTCODES = (
    re.compile(r"(?<![\d\-/.:+])\d{5}(?:-\d{4})?(?![\d\-/:])"),  # MY, US, DE, FR, ES, IT
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b"),  # UK
    re.compile(r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b"),  # Canada
    re.compile(r"\b\d{4}\s?[A-Z]{2}\b(?!\w)"),  # Netherlands
    re.compile(r"(?<![\d\-/.:+])\d{4}\s+[A-Z][A-Za-z]{2,}"),  # AT, CH, BE, DK, AU: '8001 Zürich'
    re.compile(r"(?<![\w\-/.:+])\d{2}-\d{3}\s+[A-Z]"),  # Poland: '00-001 Warszawa'
    re.compile(r"(?<![\w\-/.:+])\d{4}-\d{3}\s+[A-Z]"),  # Portugal: '1100-048 Lisboa'
    re.compile(r"(?<![\w\-/.:+])\d{3} \d{2}\s+[A-Z]"),  # CZ, SK, SE, GR: '110 00 Praha'
    re.compile(r"〒\s?\d{3}-\d{4}"),  # Japan
)
_HOUSE_NUMBER = re.compile(
    r"^\s*(?:NO\.?\s*:?\s*)?\d+[A-Z]?(?:[-/]\d+[A-Z]?)*\s*[,&]|^\s*\d+\s+\w"
    r"|^\s*[A-Z]{1,2}\d?\s*-+\s*\d+[A-Z]?(?:\s*-+\s*\d+[A-Z]?)*\s*,"  # units: 'A-16-1,', 'G-19,'
)
# A Japanese block address after the district's name: chome-ban(-go), 'Umeda 3-1', 'Shibuya
# 2-21-1' (a phone's groups are longer, a date has its year).
_BLOCK_NUMBER = re.compile(r"[A-Za-z]{3,}\s+\d{1,2}-\d{1,2}(?:-\d{1,3})?(?![\d\-/.])")
_LEGAL_NAME = re.compile(
    r" (?:SDN BHD|S B|BHD|BERHAD|LTD|LIMITED|LLC|INC|GMBH|PLC|PTE LTD|KFT|ZRT|NYRT)(?= )"
)
#: Labels of tax and company registration numbers, as folded words: a line with one is
#: neither the address nor the shop's name ('ABN: 62 247 8221 A49').
TAX_NUMBER_LABELS = (
    r"UST ID|STEUERNR|SIRET|TVA|MWST|ABN|BTW|NIP|NIF|CIF|IVA|P IVA|ORG NR|KVK|SIREN|ADOSZAM|DIC|"
    r"VKN|CVR|VERGI|GSTIN"
)
_STOP = re.compile(
    r" (?:TEL|TELEPHONE|PHONE|PH|FAX|HP|MOBILE|WHATSAPP|GST|VAT|TAX|INVOICE|RECEIPT|RESIT|REG|"
    r"ROC|COMPANY NO|CO NO|CO REG|EMAIL|E MAIL|WWW|HTTP|DATE|CASHIER|BILL|DOC|"
    r"DOCUMENT|TERMINAL|POS|OPEN|OPENING|SHOPPING HOURS|BUSINESS HOURS|"
    rf"{TAX_NUMBER_LABELS}|"
    r"KVITTERING|KVITTO|BON NR|BELEG|NYUGTA|NYUGTASZAM|UCTENKA|DOKLAD|FATURA|FIS NO|PARAGON|"
    r"CARRY OUT|TABLE|ORDER|CHECK|SERVER|GUEST|CARELINE|HOTLINE|STAFF|PAY BY|"
    r"THANK|THANK YOU|WELCOME|SELAMAT|MEMBER|QTY|PRICE|AMOUNT|ITEM|DESCRIPTION|BR NO|INV)(?= )"
)
_PHONE_ONLY = re.compile(r"^[\d\s()+\-/.,:]{7,}$")
# A European VAT number, whatever its label reads as ('B1 nr: NL614256521801' for 'BTW nr').
_VAT_ID = re.compile(
    r"\b(?:AT|BE|DE|DK|ES|FI|FR|GB|IE|IT|NL|PL|PT|SE)\s?[0-9A-Z]?\d{7,11}(?:B\d{2})?\b"
)
# A trunk- or country-prefixed number with a few letters of OCR debris around it: its 'TEL:'
# read as 'T ' ('T 012-9719498'), a speck read as a letter after it ('03-8051 9514k').
_PHONE_IN_DEBRIS = re.compile(r"^\W*[A-Z]{0,3}\W*(?:\+|\(?0)[\d\s()\-]{7,}\d\W*[A-Z]?\W*$", re.I)
# Contact details: an e-mail address (an '@' between words; a lone one is 'at', 'LOT 5 @ JALAN
# ...', or a misread 'NO.': '@ 0.12,JALAN SS4C/5'), a phone or fax label.
_CONTACT = re.compile(r"\w@\w|\b(?:H/P|T|F|P)\s?:\s?\+?\d|\bTEL\b|\bFAX\b", re.IGNORECASE)
_REG_ONLY = re.compile(r"^\W*(?:[A-Z]{0,3}\W*)?[\d\s]{5,}\s*[-.]?\s*[A-Z]?\W*$")
_REG_IN_BRACKETS = re.compile(r"\(\s*\d{5,}\s*-?\s*[A-Z]\s*\)", re.IGNORECASE)
# A company registration number ending the line after the name's last words ('BAKERY
# 000965911-P'): six digits or more, a hyphen (OCR reads some as a point) and the check letter.
_REG_AT_END = re.compile(r"\b\d{6,}\s*[-.]\s*[A-Z]\W*$", re.IGNORECASE)
# Where contact or tax details start on a line that begins with the address.
_CUT = re.compile(r"\b(?:TEL|TEL NO|PHONE|FAX|H/P|GST|VAT|EMAIL)\b", re.IGNORECASE)
_DATEISH = re.compile(r"\d{1,4}\s*[/\-.]\s*\d{1,2}\s*[/\-.]\s*\d{2,4}\b|\b\d{1,2}:\d{2}\b")
# A price ending the line, with either decimal mark: an item row, not an address line.
_MONEY = re.compile(r"\d[.,]\d{2}\s*$")
_LABEL = re.compile(r"^\s*([^:\d]{0,30}?)\s*:")
_MAX_LINES = 6
_BUILDING = re.compile(r" (?:MALL|PLAZA|CENTRE|CENTER|COMPLEX|SQUARE|PARK|TOWER|WISMA|MENARA)(?= )")
# A branch's number after its name: 'BHPETROL PERMAS JAYA 2' (letters before, nothing after).
_BRANCH_NUMBER = re.compile(r"(?<=[A-Za-z])\s+\d{1,2}$")
_HOUSE_NUMBER_LAST = re.compile(r"[^\W\d_]{3,}\.?\s+\d{1,4}[A-Za-z]?$")
_ROAD_FIRST = re.compile(
    r"^ (?:JALAN|JLN|JL|LORONG|LRG|PERSIARAN|LEBUH|LEBUHRAYA|STREET|ROAD|AVENUE|RUE|CALLE|VIA) "
)
_UNIT_FIRST = re.compile(r"^ (?:NO|LOT|UNIT|BLOCK|BLK|SUITE|LEVEL|FLOOR|G|GF|LG|PT|PTD) ")


@dataclass(frozen=True, slots=True)
class Found:
    value: str
    lines: list[int]
    confidence: float


@functools.lru_cache(maxsize=8192)
def has_postcode(text: str) -> bool:
    """A postcode of a country we know ('81750', 'SW1A 1AA', '00-001 Warszawa', '7621 Pécs')."""
    return any(p.search(_postcode_text(text)) for p in _POSTCODES)


def _postcode_text(text: str) -> str:
    """The text as the postcode patterns read it: no accents, upper case, no outer spaces."""
    return strip_accents(text.strip()).upper()


def _starts_with_town(text: str) -> bool:
    """The line begins with a postcode ('9000 Aalborg') or is a US city and state."""
    text = _postcode_text(text)
    return any(p.match(text) for p in _POSTCODES) or bool(US_CITY_STATE.search(text))


def address_text(line: Line) -> str:
    """The line's text, cut where contact details follow the address ('81750 JOHOR, TEL: ...')."""
    raw = line.text.strip()
    m = _CUT.search(ocr_clean(raw))  # same length as `raw`: 'TFL' stays, 'G5T' is found
    if m is None or m.start() == 0:
        return raw
    head = raw[: m.start()].rstrip(" ,;:-")
    return head if evidence_of(head) >= 1.5 else raw


def printed(run: list[Line]) -> list[Line]:
    """The run's lines without specks read as a single character: a mark in the margin or a
    blot beside the address ('43500' / 'L' / 'SEMENYIH') is never an address line of its own."""
    return [ln for ln in run if sum(c.isalnum() for c in ln.text) > 1] or run


def _phone_only(raw: str, clean: str) -> bool:
    """A phone number alone on its line, also with a few digits misread as letters (it still
    has six real digits: 'O3-41318972'; a code like 'SS2/72' has too few) or a few letters of
    debris around it (`_PHONE_IN_DEBRIS`, with eight digits or more)."""
    if _PHONE_ONLY.match(raw):
        return True
    digits = sum(c.isdigit() for c in raw)
    return (digits >= 6 and bool(_PHONE_ONLY.match(clean))) or (
        digits >= 8 and bool(_PHONE_IN_DEBRIS.match(raw))
    )


def is_stop(page: Page, line: Line) -> bool:
    """A header line that cannot be part of an address: contact, tax, date, amounts, labels."""
    raw = address_text(line)
    text = fold(raw)
    if any(o is not line and _MONEY.search(o.text) for o in page.row_of(line)):
        return True  # an item row: 'ITEM 1234' beside '18.00'
    # Stop words and numbers are recognised through look-alike misreads ('G5T', 'O3-4131').
    clean = ocr_clean(raw)
    if (
        _REG_IN_BRACKETS.search(clean)
        or _REG_AT_END.search(clean)
        or _STOP.search(fold(clean))
        or _phone_only(raw, clean)
        or _CONTACT.search(clean)
        or _LEGAL_NAME.search(fold(clean))
        or _REG_ONLY.match(clean.upper())
        or _VAT_ID.search(clean.upper())
        or _MONEY.search(raw)
        or raw.startswith(":")
    ):
        return True
    if _DATEISH.search(raw) and not (_STREET.search(text) or has_postcode(raw)):
        return True
    label = _LABEL.match(raw)
    if label is None or _STREET.search(fold(label.group(1))):
        return False
    rest = raw[label.end() :]
    return not (_STREET.search(fold(rest)) or has_postcode(rest))


def evidence(line: Line) -> float:
    """How much the line looks like part of an address (0: nothing says so)."""
    return evidence_of(address_text(line))


@functools.lru_cache(maxsize=8192)
def evidence_of(raw: str) -> float:
    """Address evidence in a text: street words, a postcode, a region, a house number (after
    one-edit OCR damage to common words is undone: 'SETANGOR' is 'SELANGOR')."""
    text = fold(repair_words(raw))
    score = 0.0
    streets = len(_STREET.findall(text)) + len(_STREET_SUFFIX.findall(text))
    score += 1.0 * min(streets, 2)
    score += 1.5 * has_postcode(raw)
    score += 1.0 * bool(_PLACE.search(text) or US_CITY_STATE.search(raw.upper()))
    score += 1.0 * bool(_HOUSE_NUMBER.match(raw.upper()) or _BLOCK_NUMBER.search(raw))
    score += 0.3 * ("," in raw)
    return score


def run_evidence(run: list[Line]) -> float:
    """The lines' evidence, plus a region named across a line break ('KUALA' / 'LUMPUR')."""
    score = sum(evidence(ln) for ln in run)
    if len(run) > 1 and not any(_PLACE.search(fold(address_text(ln))) for ln in run):
        score += 1.0 * bool(_PLACE.search(fold(" ".join(address_text(ln) for ln in run))))
    return score


def _plain(line: Line) -> bool:
    """No digit and no address word: a branch or mall name, not an address line."""
    return not re.search(r"\d", line.text) and evidence(line) < 1.0


def _leading_name(line: Line) -> bool:
    """A branch name before the address: no digit, no street word ('IKEA CHERAS'; a compound
    one counts: 'Prinsengracht 93', 'Bahnhofstraße 15'); a short number ending it numbers the
    branch ('BHPETROL PERMAS JAYA 2'), it is not a house number."""
    text = _BRANCH_NUMBER.sub("", line.text.strip())
    return text.startswith("(") or not (re.search(r"\d", text) or street_words(text))


def _words(text: str) -> set[str]:
    return {w for w in fold(text).split() if len(w) >= 3 and not w.isdigit()}


def _branch_title(run: list[Line]) -> bool:
    """The run's first line names the branch, not the street: it does not start with a house
    number or unit, has no comma, and its place words recur in the address below
    ('SUSHI MENTAI PLAZA DANAU' / 'NO.37-1, PLAZA DANAU DESA 2, ...')."""
    first = run[0].text.strip()
    if "," in first or _HOUSE_NUMBER.match(first.upper()) or _UNIT_FIRST.match(fold(first)):
        return False
    if _ROAD_FIRST.match(fold(first)):
        return False  # 'JALAN LOKE YEW BENTONG': a street, however repeated
    rest = set().union(*(_words(ln.text) for ln in run[1:]))
    return len(_words(first) & rest) >= 2


def _street_then_town(run: list[Line]) -> bool:
    """The run is a street and house number, then the line that starts with the postcode or
    is a US city and state ('Algade 45' / '9000 Aalborg', 'Masarykova 84' / '110 00 Praha 1',
    'Broadway 63' / 'Boston, MA'): the way Europe and America write an address, where the
    street's name need not hold a street word. A branch name's number ('BHPETROL PERMAS JAYA
    2') is followed by the street, not by the town."""
    return (
        len(run) > 1
        and bool(_HOUSE_NUMBER_LAST.search(run[0].text.strip()))
        and _starts_with_town(run[1].text)
    )


def _trim(run: list[Line]) -> list[Line]:
    """Drop a branch name before the address and a mall name after its postcode."""
    while (
        len(run) > 1
        and (_leading_name(run[0]) or _branch_title(run))
        and not _street_then_town(run)
    ):
        run = run[1:]
    while (
        len(run) > 1
        and (_plain(run[-1]) or _mall_after_region(run))
        and not run[-1].text.strip().startswith("(")
        and has_postcode(run[-2].text)
        and not run[-2].text.rstrip().endswith(",")
    ):
        run = run[:-1]
    # A full stop closes the address; a bare line after it is the first item ('27" BASIN').
    while len(run) > 1 and run[-2].text.rstrip().endswith(".") and evidence(run[-1]) == 0:
        run = run[:-1]
    return run


def _mall_after_region(run: list[Line]) -> bool:
    """The run's last line names the mall or centre the shop is in ('IOI MALL', 'AMPANG POINT
    CENTRE'), printed after an address already closed by its postcode and region: no digit,
    no comma, a few words, and no street word other than a building's."""
    last = run[-1].text.strip()
    words = fold(last).split()
    if re.search(r"\d|,", last) or not 1 < len(words) <= 4:
        return False
    if not names_place(address_text(run[-2])):
        return False
    return street_words(last) == len(_BUILDING.findall(fold(last))) >= 1


def _runs(page: Page, header: list[Line], skip: set[int]) -> list[list[Line]]:
    runs: list[list[Line]] = []
    current: list[Line] = []
    for line in header:
        if line.id in skip or is_stop(page, line):
            if current:
                runs.append(current)
            current = []
            continue
        if current and line.y0 - current[-1].y1 > 1.5 * max(line.height, current[-1].height):
            runs.append(current)
            current = []
        current.append(line)
    if current:
        runs.append(current)
    return runs


#: A run with this much evidence is an address; the first such run after the name is taken.
MIN_SCORE = 2.0


def find_address(page: Page, header: list[Line], skip: set[int], after: int = -1) -> Found | None:
    """The address: the first run of non-stop header lines after the name that reads as one.

    Runs are split at stop lines (phone, tax, dates, labels) and at the `skip` lines (the name);
    the first run after header index `after` with enough evidence wins, else the first one
    anywhere, else the strongest.
    """
    scored: list[tuple[float, int, list[Line]]] = []
    weak: list[list[Line]] = []
    for found in _runs(page, header, skip):
        run = _trim(found)[:_MAX_LINES]
        if not any(evidence(ln) >= 1.0 for ln in run):
            weak.append(run)
            continue
        scored.append((run_evidence(run), header.index(run[0]), run))
    if not scored:
        # Nothing reads as an address: the lines just after the name, if they have some sign.
        nxt = [r for r in weak if header.index(r[0]) > after and sum(map(evidence, r)) > 0]
        if not nxt or after < 0:
            return None
        run = printed(nxt[0][:3])
        return Found(" ".join(address_text(ln) for ln in run), [ln.id for ln in run], 0.25)
    good = [t for t in scored if t[0] >= MIN_SCORE]
    later = [t for t in good if t[1] > after]
    # A complete address (postcode) above the name beats a weaker run without one below it:
    # below the name come item rows ('JALAN JALAN' is a product), not the shop's street.
    earlier = [t for t in good if t[1] <= after and _has_postcode(t[2])]
    if later and earlier and not _has_postcode(later[0][2]):
        later = earlier[-1:]
    chosen = later[0] if later else good[0] if good else max(scored, key=lambda t: t[0])
    score, _, run = chosen
    run = printed(run)
    value = " ".join(address_text(ln) for ln in run)
    postcode = _has_postcode(run)
    confidence = 0.35 + 0.1 * min(score, 4.0) + 0.15 * postcode
    return Found(value, [ln.id for ln in run], round(min(confidence, 0.95), 3))


def _has_postcode(run: list[Line]) -> bool:
    return any(has_postcode(ln.text) for ln in run)


def street_words(text: str) -> int:
    """How many street or building words the text has ('JALAN', 'STREET', 'Hauptstraße')."""
    folded = fold(text)
    return len(_STREET.findall(folded)) + len(_STREET_SUFFIX.findall(folded))


def names_place(text: str) -> bool:
    """A region, state, country or big city in the text."""
    return bool(_PLACE.search(fold(text)))


def only_place(text: str) -> bool:
    """The text names regions, states, countries or big cities and nothing else ('SELANGOR',
    'KUALA LUMPUR, MALAYSIA'): an address's last line, never a shop's name."""
    folded = fold(text)
    return bool(_PLACE.search(folded)) and not _PLACE.sub(" ", folded).strip()


def starts_with_number(text: str) -> bool:
    """A house number first: '12 High Street', 'NO 5, JALAN ...'."""
    return bool(_HOUSE_NUMBER.match(text.upper()))
