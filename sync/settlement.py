"""Settlement on the wire: the totals of field 48 and the batch-upload records.

Shared by the terminal (which counts its journal) and the host simulator (which counts its
ledger), so both sides classify a transaction the same way (PROTOCOL.md, "Settlement F48"):

- *debit* is money to the merchant (sale, completion, offline sale), *credit* is money
  back to the card (refund), as the transaction table's ``totals`` column says; voided and
  reversed transactions count in neither;
- *domestic* is a UnionPay card (card organisation ``CUP``), *foreign* every international
  scheme (VIS, MCC, JCB, AMX, ...), the 内卡 / 外卡 split of a UnionPay slip.

Counts are n3 (totals) and n4 (upload end): a batch of more transactions than that carries
its count modulo 1000 (10000); the amounts (n12) still prove the day. The report prints
the true counts. This is the project's choice; UnionPay terminals usually refuse a new
transaction when the batch is full.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from sync.errors import MessageError
from sync.txntypes import TxnType

DOMESTIC_ORGS = frozenset({"CUP"})
AREAS = ("domestic", "foreign")
DIRECTIONS = ("debit", "credit")
TOTALS_DIGITS = 62
#: Batch-upload records per 0320: 2 + 8 x 40 = 322 digits, field 48's maximum.
RECORDS_PER_MESSAGE = 8
RECORD_DIGITS = 40
COUNT_MOD = 1000
UPLOAD_COUNT_MOD = 10000


class Result(Enum):
    """Field 48's result digit, per area, in the host's reply."""

    NONE = "0"          # the request: no result yet
    BALANCED = "1"
    UNBALANCED = "2"
    ERROR = "3"


def area_of(card_org: str | None) -> str:
    """'domestic' for a UnionPay card, 'foreign' for any other scheme."""
    return "domestic" if (card_org or "").strip().upper() in DOMESTIC_ORGS else "foreign"


def direction_of(txn_type: str) -> str | None:
    """'debit', 'credit' or None (not in the totals) for a journal/ledger type name."""
    try:
        return TxnType[txn_type.upper()].spec.totals
    except KeyError:
        return None


@dataclass
class Side:
    """One area's figures: debit and credit, each an amount in fen and a count."""

    debit_amount: int = 0
    debit_count: int = 0
    credit_amount: int = 0
    credit_count: int = 0
    result: Result = Result.NONE

    def add(self, direction: str, amount: int) -> None:
        if direction == "debit":
            self.debit_amount += amount
            self.debit_count += 1
        elif direction == "credit":
            self.credit_amount += amount
            self.credit_count += 1
        else:
            raise ValueError(f"direction must be debit or credit, not {direction!r}")

    def figures(self) -> tuple[int, int, int, int]:
        return (self.debit_amount, self.debit_count, self.credit_amount, self.credit_count)

    def agrees_with(self, other: Side) -> bool:
        """Equal as field 48 carries them (counts modulo 1000)."""
        mine, theirs = self.figures(), other.figures()
        return (mine[0] == theirs[0] and mine[2] == theirs[2]
                and mine[1] % COUNT_MOD == theirs[1] % COUNT_MOD
                and mine[3] % COUNT_MOD == theirs[3] % COUNT_MOD)

    def to_digits(self) -> str:
        for amount in (self.debit_amount, self.credit_amount):
            if not 0 <= amount < 10**12:
                raise MessageError(f"settlement amount {amount} does not fit n12")
        return (f"{self.debit_amount:012d}{self.debit_count % COUNT_MOD:03d}"
                f"{self.credit_amount:012d}{self.credit_count % COUNT_MOD:03d}"
                f"{self.result.value}")

    @classmethod
    def from_digits(cls, digits: str) -> Side:
        return cls(int(digits[0:12]), int(digits[12:15]), int(digits[15:27]),
                   int(digits[27:30]), Result(digits[30]))

    def as_json(self) -> dict[str, int]:
        return {"debit_amount": self.debit_amount, "debit_count": self.debit_count,
                "credit_amount": self.credit_amount, "credit_count": self.credit_count}


@dataclass
class Totals:
    """A batch's settlement totals: domestic and foreign (field 48 of the 0500/0510)."""

    domestic: Side = field(default_factory=Side)
    foreign: Side = field(default_factory=Side)

    @classmethod
    def count(cls, rows: Iterable[tuple[str, str | None, int]]) -> Totals:
        """Totals of (txn_type, card_org, amount) rows that count: the caller passes only
        approved rows that were neither voided nor reversed; types outside the totals are
        skipped."""
        totals = cls()
        for txn_type, card_org, amount in rows:
            direction = direction_of(txn_type)
            if direction is not None:
                totals.side(area_of(card_org)).add(direction, amount)
        return totals

    def side(self, area: str) -> Side:
        if area not in AREAS:
            raise ValueError(f"area must be domestic or foreign, not {area!r}")
        return self.domestic if area == "domestic" else self.foreign

    def to_field48(self) -> str:
        return self.domestic.to_digits() + self.foreign.to_digits()

    @classmethod
    def from_field48(cls, digits: str) -> Totals:
        """Parse 62 digits; MessageError when the field is not that."""
        if len(digits) != TOTALS_DIGITS or not digits.isdigit():
            raise MessageError(f"settlement field 48 must be {TOTALS_DIGITS} digits, "
                               f"got {len(digits)}")
        try:
            return cls(Side.from_digits(digits[:31]), Side.from_digits(digits[31:]))
        except ValueError:
            raise MessageError("settlement field 48 carries an unknown result digit") from None

    def agrees_with(self, other: Totals) -> bool:
        return self.domestic.agrees_with(other.domestic) and self.foreign.agrees_with(other.foreign)

    def with_results(self, other: Totals) -> Totals:
        """These figures with each area's result against ``other`` (the host's answer)."""
        return Totals(*(Side(*mine.figures(),
                             Result.BALANCED if mine.agrees_with(theirs) else Result.UNBALANCED)
                        for mine, theirs in ((self.domestic, other.domestic),
                                             (self.foreign, other.foreign))))

    def outcome(self) -> str:
        """'balanced', 'unbalanced' or 'error' from the result digits (of a reply)."""
        results = {self.domestic.result, self.foreign.result}
        if Result.ERROR in results or Result.NONE in results:
            return "error"
        return "balanced" if results == {Result.BALANCED} else "unbalanced"

    def as_json(self) -> dict[str, dict[str, int]]:
        return {"domestic": self.domestic.as_json(), "foreign": self.foreign.as_json()}


# -- batch upload -------------------------------------------------------------------------

class Kind(Enum):
    """What an uploaded record was: the flag's second digit (project's choice)."""

    SALE = "0"
    COMPLETION = "1"
    OFFLINE_SALE = "2"
    REFUND = "3"

    @property
    def txn_type(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, txn_type: str) -> Kind:
        try:
            return cls[txn_type.upper()]
        except KeyError:
            raise ValueError(f"{txn_type!r} is not uploaded in a batch") from None


@dataclass(frozen=True)
class UploadRecord:
    """One transaction in a batch upload: flag n2, STAN n6, PAN n20 (F-padded), amount n12.

    The flag's first digit is the area (0 domestic, 1 foreign) as PROTOCOL.md names it; its
    second digit is the kind (:class:`Kind`), so the host can re-create a transaction it
    lacks with the right type. Documented in docs/settlement.md.
    """

    area: str
    kind: Kind
    stan: int
    pan: str = field(repr=False)
    amount: int

    def to_digits(self) -> str:
        if not 1 <= len(self.pan) <= 20 or not self.pan.isdigit():
            raise MessageError("an uploaded PAN must be 1 to 20 digits")
        flag = ("0" if self.area == "domestic" else "1") + self.kind.value
        return f"{flag}{self.stan:06d}{self.pan:F<20}{self.amount:012d}"

    @classmethod
    def from_digits(cls, digits: str) -> UploadRecord:
        if len(digits) != RECORD_DIGITS:
            raise MessageError(f"a batch-upload record is {RECORD_DIGITS} digits")
        flag, stan, pan, amount = digits[:2], digits[2:8], digits[8:28], digits[28:40]
        if flag[0] not in "01" or not stan.isdigit() or not amount.isdigit():
            raise MessageError(f"batch-upload record {digits[:8]}... is malformed")
        try:
            kind = Kind(flag[1])
        except ValueError:
            raise MessageError(f"batch-upload record kind {flag[1]!r} is unknown") from None
        pan = pan.upper().rstrip("F")
        if not pan.isdigit():
            raise MessageError("batch-upload record PAN is not digits")
        return cls("domestic" if flag[0] == "0" else "foreign", kind, int(stan), pan,
                   int(amount))


def encode_records(records: list[UploadRecord]) -> str:
    """Field 48 of one batch-upload 0320: record count n2 then the records."""
    if not 1 <= len(records) <= RECORDS_PER_MESSAGE:
        raise ValueError(f"a batch upload carries 1 to {RECORDS_PER_MESSAGE} records")
    return f"{len(records):02d}" + "".join(r.to_digits() for r in records)


def decode_records(digits: str) -> list[UploadRecord]:
    """The records of a batch-upload field 48; MessageError when it is malformed."""
    if len(digits) < 2 or not digits[:2].isdigit():
        raise MessageError("batch-upload field 48 has no record count")
    count = int(digits[:2])
    body = digits[2:]
    if not 1 <= count <= RECORDS_PER_MESSAGE or len(body) != count * RECORD_DIGITS:
        raise MessageError(f"batch-upload field 48 says {count} records but carries "
                           f"{len(body)} digits")
    return [UploadRecord.from_digits(body[i:i + RECORD_DIGITS])
            for i in range(0, len(body), RECORD_DIGITS)]


def chunks(items: list, size: int = RECORDS_PER_MESSAGE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def upload_count(count: int) -> str:
    """Field 48 of the upload-end 0320: the number of records uploaded, n4."""
    return f"{count % UPLOAD_COUNT_MOD:04d}"
