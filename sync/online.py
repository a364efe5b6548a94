"""The online path: sign-on, financial requests and reversals, journaled around every send.

Every request follows the same order (DESIGN.md, "A sale, end to end"): any armed reversal
goes first; the PENDING row with its reversal armed is committed before the request
leaves; the reply is trusted only after its MAC verifies; the outcome is committed before
anything else happens. A process that dies anywhere leaves a row that the next run
finishes by reversing it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage.journal import Journal, NewTransaction, Reversal, TransactionRecord
from storage.pan import mask_pan
from sync import codec, crypto, message
from sync.errors import (
    HostTimeout,
    HostUnreachable,
    KeyCheckError,
    MacError,
    MessageError,
    SyncError,
)
from sync.faults import fault_point
from sync.link import HostLink, LinkConfig
from sync.message import TerminalIds
from sync.responses import rule
from sync.txntypes import REVERSAL_MTI, TxnType, from_key

log = logging.getLogger(__name__)

KEY_TMK = "tmk"
KEY_PIK = "pik_under_tmk"     # kept as delivered: the PIN pad decrypts it with its own master key
KEY_MAK = "mak"
META_PIK_KCV = "pik_kcv"
META_SIGNON_REQUIRED = "signon_required"
META_SIGNED_ON = "signed_on_utc"
#: Request fields kept (non-sensitive) so a queued advice is sent again as it was.
ORIGINAL_FIELDS = ("37", "38", "61")
#: Types whose approval voids their original.
VOIDING = frozenset({TxnType.VOID, TxnType.PREAUTH_VOID, TxnType.COMPLETION_VOID})
REVERSAL_DONE_CODES = ("00", "25")   # 25: the host never saw the original, nothing to undo
META_HOST_REQUEST = "host_request"

#: The reply header's "processing request" (low nibble of its third byte), as UnionPay
#: hosts use it: what the host asks the terminal to do next.
HOST_REQUESTS = {1: "download terminal parameters", 2: "upload terminal status",
                 3: "sign on again", 4: "update CA public keys",
                 5: "download IC card parameters", 6: "TMS parameter download"}
SIGN_ON_AGAIN = 3


@dataclass(frozen=True)
class CardForHost:
    """What the card gave the terminal for one request; held in memory only."""

    pan: str
    expiry: str | None
    entry_mode: str
    card_org: str
    track2: str | None = None
    track3: str | None = None
    card_seq: str | None = None
    icc_data: str | None = None        # field 55, hex
    f60_extension: str | None = None   # 60.4 onwards (e.g. "52": a fallback swipe)


@dataclass(frozen=True)
class OnlineResult:
    """A financial request's outcome, as journaled."""

    record: TransactionRecord
    reply: dict[str, str]
    reversed_now: bool = False

    @property
    def approved(self) -> bool:
        return self.record.state == "APPROVED"


@dataclass(frozen=True)
class OriginalRef:
    """The transaction a void, refund or completion refers to (fields 37, 38 and 61)."""

    txn_id: int | None = None        # in this journal, when it is there
    rrn: str | None = None
    auth_code: str | None = None
    batch: int | None = None
    stan: int | None = None
    date: str | None = None          # MMDD

    @classmethod
    def of(cls, record: TransactionRecord) -> OriginalRef:
        return cls(record.id, record.rrn, record.auth_code, record.batch, record.stan,
                   record.created_local[5:7] + record.created_local[8:10])

    def fields(self, txn: TxnType) -> dict[str, object]:
        f61 = f"{self.batch or 0:06d}{self.stan or 0:06d}"
        if txn in (TxnType.REFUND, TxnType.COMPLETION):
            f61 += self.date or "0000"
        return {"37": self.rrn, "38": self.auth_code, "61": f61}


@dataclass(frozen=True)
class BalanceResult:
    response_code: str
    balance: int | None           # fen, negative when the account is overdrawn
    reply: dict[str, str]


@dataclass
class SessionConfig:
    ids: TerminalIds
    link: LinkConfig
    operator: str = "01"
    mac_algorithm: str = "ecb"
    currency: str = "156"
    reversal_tries: int = 3
    reversal_backoff: float = 2.0
    #: Called with the transaction and the reason when a reversal is given up on.
    on_reversal_failed: Callable[[TransactionRecord, str], None] | None = None


class HostSession:
    """The terminal's conversation with the host over one link, journaled in ``journal``."""

    def __init__(self, journal: Journal, config: SessionConfig) -> None:
        self.journal = journal
        self.config = config
        self.link = HostLink(config.link)

    def close(self) -> None:
        self.link.close()

    # -- keys -----------------------------------------------------------------------------
    def _mak(self) -> bytes:
        mak = self.journal.get_key(KEY_MAK)
        if mak is None:
            raise SyncError("no MAC key: sign on first")
        return mak

    def needs_sign_on(self) -> bool:
        return (self.journal.get_key(KEY_MAK) is None
                or self.journal.get_meta(META_SIGNON_REQUIRED) == "1")

    def _accept(self, request: dict[str, str]):
        want_mti = codec.reply_mti(request["t"])

        def accept(reply: dict[str, str]) -> bool:
            return (reply.get("t") == want_mti and reply.get("11") == request["11"]
                    and reply.get("41") == request["41"])
        return accept

    def _verified(self, raw: bytes) -> dict[str, str]:
        message.verify_mac(raw, self.config.mac_algorithm, self._mak())
        return codec.decode(raw)

    def _exchange(self, raw: bytes, request: dict[str, str], *,
                  on_sent: Callable[[], None] | None = None) -> bytes:
        """One request/reply over the link, honouring what the reply's header asks for."""
        reply = self.link.exchange(raw, self._accept(request), on_sent=on_sent)
        header = self.link.last_header
        if header is not None and len(header) >= 3:
            wanted = header[2] & 0x0F
            if wanted == SIGN_ON_AGAIN:
                self.journal.set_meta(META_SIGNON_REQUIRED, "1")
            if wanted in HOST_REQUESTS:
                log.info("host asks the terminal to %s", HOST_REQUESTS[wanted])
                self.journal.set_meta(META_HOST_REQUEST, HOST_REQUESTS[wanted])
        return reply

    # -- sign-on --------------------------------------------------------------------------
    def sign_on(self) -> dict[str, str]:
        """0800/0810: download PIK and MAK under the TMK, check both, adopt the host's batch."""
        self.flush_reversals()
        tmk = self.journal.get_key(KEY_TMK)
        if tmk is None:
            raise SyncError("no terminal master key: provision the terminal (posterm init)")
        stan = self.journal.next_stan()
        request = message.build(TxnType.SIGN_ON, self.config.ids, stan=stan,
                                batch=self.journal.current_batch(),
                                fields={"63": f"{self.config.operator:<3}"[:3]})
        raw = self._exchange(message.encode_with_mac(request, self.config.mac_algorithm, None),
                             request)
        reply = codec.decode(raw)
        code = reply.get("39", "")
        if code != "00":
            raise SyncError(f"sign-on refused: {code} {rule(code).en}")
        keys = bytes.fromhex(reply.get("62", ""))
        if len(keys) < 40:
            raise MessageError(f"sign-on reply carries {len(keys)} key bytes, expected 40")
        pik_enc, pik_kcv, mak_enc, mak_kcv = keys[:16], keys[16:20], keys[20:36], keys[36:40]
        crypto.unwrap_working_key(tmk, pik_enc, pik_kcv, "PIN key")
        mak = crypto.unwrap_working_key(tmk, mak_enc, mak_kcv, "MAC key")
        batch = int(reply.get("60", "00000001")[2:8] or 1)
        self.journal.put_key(KEY_PIK, pik_enc, kcv=pik_kcv.hex().upper())
        self.journal.set_meta(META_PIK_KCV, pik_kcv.hex().upper())
        self.journal.put_key(KEY_MAK, mak, kcv=mak_kcv.hex().upper())
        if batch:
            self.journal.set_batch(batch)
        self.journal.set_meta(META_SIGNON_REQUIRED, "0")
        self.journal.set_meta(META_SIGNED_ON, reply.get("13", "") + reply.get("12", ""))
        self.journal.audit("terminal.sign_on", actor=self.config.operator,
                           detail={"batch": batch, "stan": stan})
        return reply

    def ensure_signed_on(self) -> None:
        if self.needs_sign_on():
            self.sign_on()

    def echo(self) -> dict[str, str]:
        """0820/0830 echo test: is the host there (armed reversals go first)."""
        self.flush_reversals()
        request = message.build(TxnType.ECHO, self.config.ids, stan=self.journal.next_stan(),
                                batch=self.journal.current_batch())
        raw = self._exchange(message.encode_with_mac(request, self.config.mac_algorithm,
                                                     self._mak()), request)
        return self._verified(raw)

    def request(self, txn: TxnType, fields: dict[str, object] | None = None, *,
                stan: int | None = None, batch: int | None = None,
                network_code: str | None = None) -> dict[str, str]:
        """One administrative request of the table (settlement, upload, sign-off): built,
        MACed, sent, and its reply trusted only after its MAC verifies (a failed MAC asks
        for a new sign-on). Nothing is journaled here: the caller saves its own step."""
        request = message.build(txn, self.config.ids,
                                stan=stan if stan is not None else self.journal.next_stan(),
                                batch=batch if batch is not None else self.journal.current_batch(),
                                fields=fields)
        if network_code is not None:
            request["60"] = request["60"][:8] + network_code
        raw = self._exchange(message.encode_with_mac(request, self.config.mac_algorithm,
                                                     self._mak()), request,
                             on_sent=lambda: fault_point(f"{txn.key}_sent"))
        try:
            return self._verified(raw)
        except MacError:
            self.journal.set_meta(META_SIGNON_REQUIRED, "1")
            raise MacError(f"the host's reply to the {txn.spec.label_en.lower()} failed its "
                           "MAC check; sign on again") from None

    def refuse_while_settling(self) -> None:
        """No money moves while the open batch is being settled (its totals are frozen)."""
        active = self.journal.settlements.active()
        if active is not None:
            raise SyncError(f"batch {active.batch:06d} is being settled: finish the "
                            "settlement first (posterm settle)")

    def sign_off(self) -> dict[str, str]:
        """0820/002 sign-off (签退): refused while the batch holds unsettled transactions."""
        self.flush_reversals()
        self.refuse_while_settling()
        batch = self.journal.current_batch()
        unsettled = self.journal.settlements.counted(batch)
        if unsettled:
            raise SyncError(f"sign-off refused: batch {batch:06d} has {len(unsettled)} "
                            "unsettled transaction(s): settle first (posterm settle)")
        reply = self.request(TxnType.SIGN_OFF, {"63": f"{self.config.operator:<3}"[:3]})
        code = reply.get("39", "")
        if code != "00":
            raise SyncError(f"sign-off refused by the host: {code} {rule(code).en}")
        self.journal.set_meta(META_SIGNON_REQUIRED, "1")
        self.journal.audit("terminal.sign_off", actor=self.config.operator,
                           detail={"batch": batch})
        return reply

    # -- reversals ------------------------------------------------------------------------
    def flush_reversals(self) -> int:
        """Send every armed reversal, oldest first; returns how many the host took.

        Each is tried up to ``reversal_tries`` times in all (across runs: the journal counts
        the attempts), waiting ``reversal_backoff`` seconds, doubled each time, in between.
        One that still fails is marked FAILED and handed to ``on_reversal_failed`` (the app
        prints the "handle manually" slip), and the queue goes on. HostUnreachable (nothing
        was sent) stops the flush with the reversal still armed.
        """
        done = 0
        for rev in self.journal.pending_reversals():
            done += self._send_reversal(rev)
        return done

    def _send_reversal(self, rev: Reversal) -> bool:
        record = self.journal.get(rev.txn_id)
        pan, expiry = self.journal.card_for(rev.txn_id)
        original = from_key(record.txn_type)
        fields: dict[str, object] = {
            "2": pan, "4": f"{record.amount:012d}", "14": expiry, "22": record.entry_mode,
            "23": record.card_seq, "39": rev.reason, "49": record.currency,
        }
        request = message.build(original, self.config.ids, stan=record.stan,
                                batch=record.batch, fields=fields)
        request["t"] = REVERSAL_MTI[original.spec.mti]
        raw_request = message.encode_with_mac(request, self.config.mac_algorithm, self._mak())
        tries = max(1, self.config.reversal_tries)
        problem = "no attempt left"
        for attempt in range(rev.attempts, tries):
            if attempt > rev.attempts:
                time.sleep(self.config.reversal_backoff * 2 ** (attempt - rev.attempts - 1))
            self.link.connect()             # HostUnreachable: nothing sent, nothing counted
            self.journal.reversal_attempted(rev.id)
            try:
                reply = self._verified(self._exchange(raw_request, request))
            except HostTimeout as exc:
                problem = str(exc)
                continue
            except MacError as exc:
                self.journal.set_meta(META_SIGNON_REQUIRED, "1")
                problem = str(exc)
                continue
            code = reply.get("39", "")
            if code in REVERSAL_DONE_CODES:
                self.journal.reversal_done(rev.id, code)
                log.info("reversal of STAN %06d (%s) done: %s", record.stan,
                         record.pan_masked, code)
                return True
            problem = f"host answered {code} {rule(code).en}"
        self.journal.reversal_failed(rev.id)
        log.error("reversal of STAN %06d (%s) failed after %d tries (%s): handle manually",
                  record.stan, record.pan_masked, tries, problem)
        if self.config.on_reversal_failed is not None:
            self.config.on_reversal_failed(self.journal.get(rev.txn_id), problem)
        return False

    def _reverse_now(self, txn_id: int) -> str:
        """Try the armed reversal at once; says how the transaction was left, for the cashier."""
        try:
            self.flush_reversals()
        except SyncError as exc:
            log.warning("reversal left armed for the next message: %s", exc)
        record = self.journal.get(txn_id)
        if record.state == "REVERSED":
            return "the transaction was reversed"
        if record.reversal_state == "FAILED":
            return "the reversal failed: handle it manually"
        return "the transaction will be reversed before the next one"

    # -- financial requests ---------------------------------------------------------------
    def _card_fields(self, card: CardForHost, amount: int | None,
                     pin_block: bytes | None) -> dict[str, object]:
        fields: dict[str, object] = {
            "2": card.pan, "4": None if amount is None else f"{amount:012d}", "14": card.expiry,
            "22": card.entry_mode, "23": card.card_seq, "35": card.track2, "36": card.track3,
            "55": card.icc_data, "49": self.config.currency, "63": f"{card.card_org:<3}"[:3],
        }
        if pin_block is not None:
            fields.update({"26": "12", "52": pin_block.hex().upper(), "53": "2600000000000000"})
        return fields

    def authorize(self, txn: TxnType, card: CardForHost, amount: int, *,
                  pin_block: bytes | None = None, extra: dict | None = None,
                  original: OriginalRef | None = None) -> OnlineResult:
        """Journal, send and complete one financial request of any type in the table.

        Reversible types keep a reversal armed until the reply is committed; a
        non-reversible one (a refund, 0220) whose reply does not come is queued and sent
        again as a repeat until the host answers (store and forward). A journal that
        cannot take a write (a full disk) refuses it before anything is sent.
        """
        self.journal.check_writable()
        self.flush_reversals()
        self.refuse_while_settling()
        self.ensure_signed_on()
        self.flush_advices()
        stan = self.journal.next_stan()
        batch = self.journal.current_batch()
        fields = self._card_fields(card, amount, pin_block)
        fields.update(original.fields(txn) if original is not None else {})
        request = message.build(txn, self.config.ids, stan=stan, batch=batch, fields=fields)
        if card.f60_extension:
            request["60"] += card.f60_extension
        raw_request = message.encode_with_mac(request, self.config.mac_algorithm, self._mak())
        self.link.connect()
        kept = {k: request[k] for k in ORIGINAL_FIELDS if k in request}
        txn_id = self.journal.begin(NewTransaction(
            txn_type=txn.key, amount=amount, currency=self.config.currency, stan=stan,
            batch=batch, terminal_id=self.config.ids.terminal_id,
            merchant_id=self.config.ids.merchant_id, operator=self.config.operator,
            pan=card.pan, expiry=card.expiry, card_org=card.card_org,
            entry_mode=card.entry_mode, card_seq=card.card_seq,
            pin_entered=pin_block is not None, reversible=txn.spec.reversible,
            extra={**(extra or {}), **({"request": kept} if kept else {})},
            original_id=original.txn_id if original is not None else None))
        fault_point("before_send")
        try:
            raw = self._exchange(raw_request, request,
                                 on_sent=lambda: fault_point("after_send"))
        except HostUnreachable as exc:
            self.journal.fail_unsent(txn_id, str(exc))
            raise
        except HostTimeout as exc:
            if txn.spec.reversible:
                raise HostTimeout(f"{exc}; {self._reverse_now(txn_id)}") from None
            self.journal.queue_advice(txn_id)
            raise HostTimeout(f"{exc}; it is queued and will be sent again until the host "
                              "answers") from None
        try:
            reply = self._verified(raw)
        except MacError:
            self.journal.set_meta(META_SIGNON_REQUIRED, "1")
            if not txn.spec.reversible:
                self.journal.queue_advice(txn_id)
                raise MacError("the host's reply failed its MAC check; the message is queued "
                               "to be sent again; sign on again") from None
            self.journal.set_reversal_reason(txn_id, "A0")
            raise MacError("the host's reply failed its MAC check; "
                           f"{self._reverse_now(txn_id)}; sign on again") from None
        fault_point("after_reply")
        record = self._complete(txn_id, txn, reply)
        log.info("%s STAN %06d %s amount %d -> %s", txn.key, stan, mask_pan(card.pan), amount,
                 record.response_code)
        return OnlineResult(record, reply)

    def _complete(self, txn_id: int, txn: TxnType, reply: dict[str, str]) -> TransactionRecord:
        code = reply.get("39", "")
        if rule(code).action == "signon":
            self.journal.set_meta(META_SIGNON_REQUIRED, "1")
        return self.journal.complete(
            txn_id, approved=code == "00", response_code=code, rrn=reply.get("37"),
            auth_code=reply.get("38"), settlement_date=reply.get("15"),
            voids=txn in VOIDING)

    def approve_offline(self, card: CardForHost, amount: int, *,
                        extra: dict | None = None) -> TransactionRecord:
        """An offline sale (below the floor limit, the card agreeing): approved here with a
        terminal auth code, journaled with its advice queued in one commit; the host hears
        of it before the next online message (or ``posterm queue flush``)."""
        self.refuse_while_settling()
        stan = self.journal.next_stan()
        auth_code = f"Y1{stan % 10000:04d}"
        txn_id = self.journal.record_offline(NewTransaction(
            txn_type=TxnType.OFFLINE_SALE.key, amount=amount, currency=self.config.currency,
            stan=stan, batch=self.journal.current_batch(),
            terminal_id=self.config.ids.terminal_id, merchant_id=self.config.ids.merchant_id,
            operator=self.config.operator, pan=card.pan, expiry=card.expiry,
            card_org=card.card_org, entry_mode=card.entry_mode, card_seq=card.card_seq,
            pin_entered=False, reversible=False, extra=extra), auth_code=auth_code)
        return self.journal.get(txn_id)

    # -- store and forward ----------------------------------------------------------------
    def flush_advices(self) -> int:
        """Send every queued advice in order (offline sales; refunds whose answer did not
        come), a repeat (MTI xx21) after the first try; returns how many the host took.
        HostUnreachable or HostTimeout stops the flush with the rest still queued."""
        done = 0
        for advice in self.journal.pending_advices():
            record = self.journal.get(advice.txn_id)
            txn = from_key(record.txn_type)
            pan, expiry = self.journal.card_for(record.id)
            fields: dict[str, object] = {
                "2": pan, "4": f"{record.amount:012d}", "14": expiry,
                "22": record.entry_mode, "23": record.card_seq, "49": record.currency,
                "63": f"{record.card_org:<3}"[:3], **record.extra.get("request", {})}
            if txn is TxnType.OFFLINE_SALE:
                fields["38"] = record.auth_code
            request = message.build(txn, self.config.ids, stan=record.stan,
                                    batch=record.batch, fields=fields)
            self.link.connect()
            if self.journal.advice_attempted(advice.id) > 1:
                request["t"] = request["t"][:3] + "1"          # ISO 8583 repeat
            raw = self._exchange(message.encode_with_mac(request, self.config.mac_algorithm,
                                                         self._mak()), request)
            reply = self._verified(raw)
            code = reply.get("39", "")
            if record.state == "PENDING":
                self._complete(record.id, txn, reply)
            self.journal.advice_done(advice.id, code, rrn=reply.get("37"),
                                     sent=code in ("00", "94"))
            done += 1
        return done

    # -- inquiries ------------------------------------------------------------------------
    def inquire_balance(self, card: CardForHost, pin_block: bytes) -> BalanceResult:
        """Balance inquiry (余额查询, 0200/310000): no money moves, so nothing to journal or
        reverse; the inquiry is audited with the masked card."""
        self.flush_reversals()
        self.ensure_signed_on()
        request = message.build(TxnType.BALANCE, self.config.ids,
                                stan=self.journal.next_stan(),
                                batch=self.journal.current_batch(),
                                fields=self._card_fields(card, None, pin_block))
        raw = self._exchange(message.encode_with_mac(request, self.config.mac_algorithm,
                                                     self._mak()), request)
        reply = self._verified(raw)
        code = reply.get("39", "")
        if rule(code).action == "signon":
            self.journal.set_meta(META_SIGNON_REQUIRED, "1")
        balance = parse_balance(reply.get("54", "")) if code == "00" else None
        self.journal.audit("inquiry.balance", actor=self.config.operator,
                           detail={"pan": mask_pan(card.pan), "response_code": code})
        return BalanceResult(code, balance, reply)


def parse_balance(field54: str) -> int | None:
    """Field 54 (account type 2, amount type 2, currency 3, C/D, amount 12) -> signed fen."""
    if len(field54) < 20 or field54[7] not in "CD" or not field54[8:20].isdigit():
        return None
    amount = int(field54[8:20])
    return amount if field54[7] == "C" else -amount


__all__ = ["BalanceResult", "CardForHost", "HostSession", "KeyCheckError", "OnlineResult",
           "OriginalRef", "SessionConfig"]
