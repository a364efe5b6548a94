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


@dataclass(frozen=True)
class OnlineResult:
    """A financial request's outcome, as journaled."""

    record: TransactionRecord
    reply: dict[str, str]
    reversed_now: bool = False

    @property
    def approved(self) -> bool:
        return self.record.state == "APPROVED"


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

    def _exchange(self, raw: bytes, request: dict[str, str]) -> bytes:
        """One request/reply over the link, honouring what the reply's header asks for."""
        reply = self.link.exchange(raw, self._accept(request))
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
    def authorize(self, txn: TxnType, card: CardForHost, amount: int, *,
                  pin_block: bytes | None = None, extra: dict | None = None) -> OnlineResult:
        """Journal, send and complete one financial request (sale for now)."""
        self.flush_reversals()
        self.ensure_signed_on()
        stan = self.journal.next_stan()
        batch = self.journal.current_batch()
        fields: dict[str, object] = {
            "2": card.pan, "4": f"{amount:012d}", "14": card.expiry, "22": card.entry_mode,
            "23": card.card_seq, "35": card.track2, "36": card.track3, "55": card.icc_data,
            "49": self.config.currency, "63": f"{card.card_org:<3}"[:3],
        }
        if pin_block is not None:
            fields.update({"26": "12", "52": pin_block.hex().upper(), "53": "2600000000000000"})
        request = message.build(txn, self.config.ids, stan=stan, batch=batch, fields=fields)
        raw_request = message.encode_with_mac(request, self.config.mac_algorithm, self._mak())
        self.link.connect()
        txn_id = self.journal.begin(NewTransaction(
            txn_type=txn.key, amount=amount, currency=self.config.currency, stan=stan,
            batch=batch, terminal_id=self.config.ids.terminal_id,
            merchant_id=self.config.ids.merchant_id, operator=self.config.operator,
            pan=card.pan, expiry=card.expiry, card_org=card.card_org,
            entry_mode=card.entry_mode, card_seq=card.card_seq,
            pin_entered=pin_block is not None, reversible=txn.spec.reversible, extra=extra))
        try:
            raw = self._exchange(raw_request, request)
        except HostUnreachable as exc:
            self.journal.fail_unsent(txn_id, str(exc))
            raise
        except HostTimeout as exc:
            if not txn.spec.reversible:
                raise
            raise HostTimeout(f"{exc}; {self._reverse_now(txn_id)}") from None
        try:
            reply = self._verified(raw)
        except MacError:
            self.journal.set_reversal_reason(txn_id, "A0")
            self.journal.set_meta(META_SIGNON_REQUIRED, "1")
            raise MacError("the host's reply failed its MAC check; "
                           f"{self._reverse_now(txn_id)}; sign on again") from None
        code = reply.get("39", "")
        if rule(code).action == "signon":
            self.journal.set_meta(META_SIGNON_REQUIRED, "1")
        record = self.journal.complete(
            txn_id, approved=code == "00", response_code=code, rrn=reply.get("37"),
            auth_code=reply.get("38"), settlement_date=reply.get("15"))
        log.info("%s STAN %06d %s amount %d -> %s", txn.key, stan, mask_pan(card.pan), amount,
                 code)
        return OnlineResult(record, reply)


__all__ = ["CardForHost", "HostSession", "KeyCheckError", "OnlineResult", "SessionConfig"]
