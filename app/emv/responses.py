"""Parsers of the card's answers: FCI, directory records, GET PROCESSING OPTIONS (formats 1
and 2), READ RECORD and GENERATE AC (formats 1 and 2).

Each takes the response data (status word removed) and returns a small frozen object; a
malformed answer raises :class:`TlvError` and nothing else, whatever the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.emv import tlv
from app.emv.errors import TlvError
from app.emv.tlv import Tlv


def _text(raw: bytes | None) -> str | None:
    """An ans/an value for display: printable ASCII only, trailing blanks dropped."""
    if raw is None:
        return None
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in raw.decode("latin-1"))
    return text.rstrip() or None


def _priority(raw: bytes | None) -> int | None:
    return raw[0] if raw else None


@dataclass(frozen=True)
class DirectoryEntry:
    """One ``61`` entry of a PSE directory record or of the PPSE's FCI (Book 1 12.2.3)."""

    aid: str | None                   # 4F, hex (an ADF)
    label: str | None                 # 50
    preferred_name: str | None        # 9F12
    priority: int | None              # 87, the whole byte
    ddf_name: str | None = None       # 9D: a further directory to read
    kernel_id: str | None = None      # 9F2A (contactless)


def _entry(entry: Tlv) -> DirectoryEntry:
    kids = list(entry.children)
    aid, ddf = tlv.value(kids, "4F"), tlv.value(kids, "9D")
    kernel = tlv.value(kids, "9F2A")
    return DirectoryEntry(
        aid=aid.hex().upper() if aid else None, label=_text(tlv.value(kids, "50")),
        preferred_name=_text(tlv.value(kids, "9F12")), priority=_priority(tlv.value(kids, "87")),
        ddf_name=ddf.hex().upper() if ddf else None,
        kernel_id=kernel.hex().upper() if kernel else None)


@dataclass(frozen=True)
class Fci:
    """A SELECT answer: the FCI template ``6F`` (Book 1 11.3.4, Book 3 Table 45)."""

    df_name: str                      # 84, hex
    label: str | None                 # 50
    preferred_name: str | None        # 9F12
    priority: int | None              # 87
    pdol: bytes | None                # 9F38
    sfi: int | None                   # 88: the directory file of a PSE
    language: str | None              # 5F2D
    issuer_code_table: int | None     # 9F11
    entries: tuple[DirectoryEntry, ...]   # 61 entries (PPSE, or a PSE that lists them)
    objects: tuple[Tlv, ...]


def parse_fci(data: bytes) -> Fci:
    """The FCI of a SELECT; :class:`TlvError` unless it is a 6F template with a DF name."""
    objects = tlv.parse(data)
    if not objects or objects[0].tag != "6F":
        raise TlvError("card's SELECT answer is not an FCI template (6F)")
    fci = list(objects[0].children)
    df_name = tlv.value(fci, "84")
    if not df_name:
        raise TlvError("card's FCI has no DF name (84)")
    sfi = tlv.value(fci, "88")
    if sfi is not None and (len(sfi) != 1 or not 1 <= sfi[0] <= 30):
        raise TlvError("card's FCI has a bad directory SFI (88)")
    table = tlv.value(fci, "9F11")
    return Fci(
        df_name=df_name.hex().upper(), label=_text(tlv.value(fci, "50")),
        preferred_name=_text(tlv.value(fci, "9F12")), priority=_priority(tlv.value(fci, "87")),
        pdol=tlv.value(fci, "9F38"), sfi=sfi[0] if sfi else None,
        language=_text(tlv.value(fci, "5F2D")),
        issuer_code_table=int(table.hex()) if table and table.hex().isdigit() else None,
        entries=tuple(_entry(e) for e in tlv.find_all(fci, "61")), objects=tuple(objects))


def parse_directory_record(data: bytes) -> list[DirectoryEntry]:
    """The entries of one PSE directory record: a ``70`` template of ``61`` entries."""
    objects = tlv.parse(data)
    if not objects or objects[0].tag != "70":
        raise TlvError("card's directory record is not a record template (70)")
    return [_entry(e) for e in objects[0].children if e.tag == "61"]


@dataclass(frozen=True)
class AflEntry:
    """One 4-byte AFL entry (Book 3 10.2): records first..last of an SFI, the first
    ``oda_records`` of them signed for offline data authentication."""

    sfi: int
    first: int
    last: int
    oda_records: int


def parse_afl(afl: bytes) -> list[AflEntry]:
    """The AFL's entries; a malformed one is a card data error (Book 3 10.2)."""
    if len(afl) % 4:
        raise TlvError("card's AFL is not a multiple of 4 bytes")
    entries = []
    for i in range(0, len(afl), 4):
        sfi, first, last, oda = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        if afl[i] & 0x07 or not 1 <= sfi <= 30 or first == 0 or last < first \
                or oda > last - first + 1:
            raise TlvError("card's AFL has a bad entry")
        entries.append(AflEntry(sfi, first, last, oda))
    return entries


@dataclass(frozen=True)
class GpoResponse:
    """GET PROCESSING OPTIONS' answer: AIP and AFL, and whatever else a format 2 answer
    carries (a contactless card's cryptogram, ATC, IAD, track 2, CTQ...)."""

    aip: bytes
    afl: tuple[AflEntry, ...]
    format: int
    objects: tuple[Tlv, ...] = ()


def parse_gpo(data: bytes) -> GpoResponse:
    """Format 1 (``80``: AIP then AFL) or format 2 (``77`` with ``82`` and ``94``)."""
    objects = tlv.parse(data)
    if not objects:
        raise TlvError("card's GET PROCESSING OPTIONS answer is empty")
    top = objects[0]
    if top.tag == "80":
        if len(top.value) < 2:
            raise TlvError("card's GET PROCESSING OPTIONS answer is too short")
        return GpoResponse(top.value[:2], tuple(parse_afl(top.value[2:])), 1)
    if top.tag == "77":
        kids = list(top.children)
        aip = tlv.value(kids, "82")
        if aip is None or len(aip) != 2:
            raise TlvError("card's GET PROCESSING OPTIONS answer has no AIP (82)")
        # A contactless card may leave the AFL out when it has nothing more to read.
        afl = tlv.value(kids, "94") or b""
        return GpoResponse(aip, tuple(parse_afl(afl)), 2, tuple(kids))
    raise TlvError("card's GET PROCESSING OPTIONS answer is neither format 1 nor 2")


def parse_record(data: bytes, sfi: int) -> list[Tlv]:
    """A READ RECORD answer. Records of SFI 1-10 must be ``70`` templates (Book 3 10.2)."""
    objects = tlv.parse(data)
    if sfi <= 10 and (len(objects) != 1 or objects[0].tag != "70"):
        raise TlvError("card's record is not a record template (70)")
    return objects


#: Cryptogram types in the CID's top two bits (Book 3 Table 14).
AAC, TC, ARQC = "AAC", "TC", "ARQC"
_CID_TYPES = {0x00: AAC, 0x40: TC, 0x80: ARQC}


@dataclass(frozen=True)
class AcResponse:
    """A GENERATE AC answer (or a contactless GPO's cryptogram)."""

    cid: int                 # 9F27
    atc: bytes               # 9F36
    ac: bytes                # 9F26
    iad: bytes | None        # 9F10
    format: int
    objects: tuple[Tlv, ...] = ()

    @property
    def kind(self) -> str:
        """AAC, TC or ARQC; the RFU value 11 counts as AAC (a card that says no)."""
        return _CID_TYPES.get(self.cid & 0xC0, AAC)


def ac_from_objects(objects: list[Tlv], fmt: int, *, default_cid: int | None = None) -> AcResponse:
    """An AcResponse from format 2 objects; ``default_cid`` when 9F27 is absent (qVSDC)."""
    cid, atc, ac = tlv.value(objects, "9F27"), tlv.value(objects, "9F36"), tlv.value(objects, "9F26")
    if cid is None and default_cid is not None:
        cid = bytes([default_cid])
    if cid is None or len(cid) != 1:
        raise TlvError("card's cryptogram comes without its CID (9F27)")
    if atc is None or len(atc) != 2:
        raise TlvError("card's cryptogram comes without its ATC (9F36)")
    if ac is None or len(ac) != 8:
        raise TlvError("card's cryptogram (9F26) is missing or not 8 bytes")
    return AcResponse(cid[0], atc, ac, tlv.value(objects, "9F10"), fmt, tuple(objects))


def parse_generate_ac(data: bytes) -> AcResponse:
    """Format 1 (``80``: CID, ATC, AC, IAD) or format 2 (``77`` template), Book 3 6.5.5.4."""
    objects = tlv.parse(data)
    if not objects:
        raise TlvError("card's GENERATE AC answer is empty")
    top = objects[0]
    if top.tag == "80":
        v = top.value
        if len(v) < 11:
            raise TlvError("card's GENERATE AC answer is too short")
        return AcResponse(v[0], v[1:3], v[3:11], v[11:] or None, 1)
    if top.tag == "77":
        return ac_from_objects(list(top.children), 2)
    raise TlvError("card's GENERATE AC answer is neither format 1 nor 2")
