"""The host's TCP server: length-prefixed dialect messages in, replies out.

A terminal keeps one connection for many messages. Each request is split into TPDU,
header and ISO message (``sync.frame``), decoded with the shared spec (``sync.codec``),
checked (terminal registered, MAC) and dispatched by the transaction table
(``sync.txntypes.identify``) plus MTI 0400 for reversals; settlement, batch upload and
sign-off go to the settlement desk (``host.settlement``). Replies swap the TPDU, echo
the header and carry the request's MTI + 10. The fault table (``host.faults``) may then
drop, delay, damage, repeat or replace a reply on its way out, or lose what was recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from host import arqc, issuer, settlement
from host.errors import DuplicateTransaction
from host.faults import Effect, FaultTable
from host.ledger import Ledger, TerminalKeys
from host.request import FormatError, amount_of, batch_of, original_of, stan_of
from host.sealing import mask_pan
from sync import codec, crypto, frame, message
from sync.errors import MacError, MessageError
from sync.txntypes import REVERSAL_MTI, TxnType, from_key, identify

logger = logging.getLogger(__name__)

REVERSAL = "0400"
#: Fields a reply copies from its request when present.
ECHOED = ("2", "3", "4", "11", "25", "41", "42", "49", "60")
WORKING_KEY_BYTES = 16
_ORIGINAL_MTIS = tuple(m for m, r in REVERSAL_MTI.items() if r == REVERSAL)

Fields = dict[str, str]


class Host:
    """The acquirer: answers one request at a time from its ledger and issuer."""

    def __init__(self, ledger: Ledger, *, mac_algorithm: str = "ecb",
                 clock: Callable[[], datetime] | None = None,
                 faults: FaultTable | None = None):
        self.ledger = ledger
        self.mac_algorithm = mac_algorithm
        self.faults = faults if faults is not None else FaultTable()
        self._clock = clock or (lambda: datetime.now().astimezone())
        self.desk = settlement.SettlementDesk(ledger, self._clock)
        self._writers: set[asyncio.StreamWriter] = set()

    # -- one message -------------------------------------------------------------------

    def respond(self, body: bytes) -> bytes | None:
        """The reply body (TPDU + header + ISO) to a request body, or None for no reply.

        MessageError when the request is malformed (the caller drops the connection).
        """
        return self._encode(self._process(body))

    def deliver(self, body: bytes) -> tuple[bytes | None, Effect, float]:
        """Like ``respond``, then through the fault table: (reply body or None, what to do
        with it, delay in s). The server sends what this returns."""
        return self._outgoing(self._process(body))

    def _process(self, body: bytes) -> _Exchange:
        """Decode, check, answer and record one request; the reply is not yet encoded."""
        started = time.perf_counter()
        parts = frame.split_body(body)
        request = codec.decode(parts.iso)
        mti = request.get("t", "")
        if len(mti) != 4 or not mti.isdigit() or int(mti[2]) % 2:
            raise MessageError(f"MTI {mti!r} is not a request")
        reply, note = self._answer(parts.iso, request)
        logger.info("%s %s %s stan %s%s -> %s (%.1f ms)", request.get("41", "?"), mti,
                    note, request.get("11", "?"), self._card_note(request),
                    "no reply" if reply is None else reply.fields["39"],
                    (time.perf_counter() - started) * 1000)
        assert parts.tpdu is not None and parts.header is not None
        return _Exchange(request, parts.tpdu, parts.header, reply)

    def _encode(self, exchange: _Exchange, reply: _Reply | None = None) -> bytes | None:
        reply = reply or exchange.reply
        if reply is None:
            return None
        iso = message.encode_with_mac(reply.fields, self.mac_algorithm, reply.mak)
        return frame.swap_tpdu(exchange.tpdu) + exchange.header + iso

    # -- faults --------------------------------------------------------------------------

    def _outgoing(self, exchange: _Exchange) -> tuple[bytes | None, Effect, float]:
        """The reply as the fault table lets it out: (body, what to do with it, delay in s)."""
        self.faults.messages += 1
        reply, request = exchange.reply, exchange.request
        if reply is None:            # nothing to damage: the host does not answer anyway
            return None, Effect(), 0.0
        card = issuer.card_from_fields(request)
        approval = identify(request) in FINANCIAL and reply.fields.get("39") == "00"
        rule = self.faults.pick(request["t"], card.pan if card else None,
                                has_mac=reply.mak is not None, approval=approval)
        if rule is None:
            return self._encode(exchange), Effect(), 0.0
        effect = rule.fault.effect
        logger.warning("fault %s (rule %d %s): %s %s stan %s%s", rule.fault.label, rule.id,
                       rule.text(), request.get("41", "?"), request["t"],
                       request.get("11", "?"), self._card_note(request))
        if effect.shift_stan and "11" in reply.fields:
            stan = (int(reply.fields["11"]) + 1) % 1_000_000
            reply = _Reply({**reply.fields, "11": f"{stan:06d}"}, reply.mak)
        body = self._encode(exchange, reply)
        assert body is not None
        if effect.flip_mac:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if effect.forget:
            self._forget(request)
        return body, effect, rule.delay_ms / 1000 if effect.wait else 0.0

    def _forget(self, request: Fields) -> None:
        """Lose the ledger row of an answered financial request, and what its approval did
        to an original (a void's voided sale is approved again): a write that never was."""
        row = self.ledger.find(request["41"], batch_of(request), stan_of(request),
                               request["t"][:3] + "0")
        if row is None:
            return
        rule = ACTS_ON.get(from_key(row["txn_type"]))
        if rule is not None and row["original_id"] and row["state"] == "approved":
            self._apply(rule, self.ledger.get(row["original_id"]), undo=True)
        self.ledger.forget(row["id"])
        logger.warning("%s: forgot %s stan %06d (fault)", request["41"], row["txn_type"],
                       row["stan"])

    def _answer(self, raw: bytes, request: Fields) -> tuple[_Reply | None, str]:
        txn = identify(request)
        mti = request["t"]
        note = txn.key if txn else ("reversal" if mti == REVERSAL else "unsupported")
        terminal_id = request.get("41")
        terminal = self.ledger.terminal(terminal_id) if terminal_id else None
        keys = self.ledger.keys(terminal_id) if terminal else None
        if terminal is None or keys is None:
            return self._reply(request, "97"), note
        # Sign-on carries no MAC: the terminal has no MAK until the reply.
        macced = mti != "0800" and (txn is None or txn.spec.macced)
        mak = keys.mak if macced else None
        if macced and not self._mac_ok(raw, keys):
            return self._reply(request, "A0", mak=mak), note
        if request.get("42") != terminal["merchant_id"]:
            return self._reply(request, "03", mak=mak), note
        try:
            if txn is TxnType.SIGN_ON:
                return self._sign_on(request, keys, terminal["batch"]), note
            if txn is TxnType.ECHO:
                return self._reply(request, "00", mak=mak), note
            if txn is TxnType.BALANCE:
                return self._balance(request, keys), note
            if txn in FINANCIAL:
                return self._financial(request, keys, txn), note
            if txn in settlement.HANDLERS:
                answer = settlement.HANDLERS[txn](self.desk, request)
                return self._reply(request, answer.code, mak=mak, extra=answer.fields), note
            if mti == REVERSAL:
                return self._reversal(request, keys), note
            return self._reply(request, "40", mak=mak), note
        except FormatError as exc:
            logger.warning("%s: format error: %s", terminal_id, exc)
            return self._reply(request, "30", mak=mak), note
        except Exception:
            logger.exception("%s: cannot answer %s", terminal_id, mti)
            return self._reply(request, "96", mak=mak), note

    def _mac_ok(self, raw: bytes, keys: TerminalKeys) -> bool:
        if keys.mak is None:
            return False
        try:
            message.verify_mac(raw, self.mac_algorithm, keys.mak)
        except (MacError, MessageError):
            return False
        return True

    # -- the requests ------------------------------------------------------------------

    def _sign_on(self, request: Fields, keys: TerminalKeys, batch: int) -> _Reply:
        pik, mak = os.urandom(WORKING_KEY_BYTES), os.urandom(WORKING_KEY_BYTES)
        f62 = b"".join(crypto.encrypt(keys.tmk, k) + crypto.check_value(k) for k in (pik, mak))
        self.ledger.store_working_keys(request["41"], pik, mak)
        return self._reply(request, "00", extra={
            "60": f"{TxnType.SIGN_ON.spec.type_code}{batch:06d}"
                  f"{TxnType.SIGN_ON.spec.network_code}",
            "62": f62.hex().upper()})

    def _financial(self, request: Fields, keys: TerminalKeys, txn: TxnType) -> _Reply | None:
        """Any money-moving request: the table below says what it acts on and who decides."""
        terminal_id = request["41"]
        mti = request["t"][:3] + "0"           # a repeat (xx21) is recorded as its original
        stan, batch = stan_of(request), batch_of(request)
        amount = amount_of(request)
        done = self.ledger.find(terminal_id, batch, stan, mti)
        if done is not None:
            if txn in ADVICES:
                # The terminal did not hear our answer: the same answer again, nothing new.
                return self._reply(request, done["response_code"], mak=keys.mak,
                                   rrn=done["rrn"], auth_code=done["auth_code"])
            return self._reply(request, "94", mak=keys.mak)
        card = issuer.card_from_fields(request)
        rule = ACTS_ON.get(txn)
        original, code = self._original(request, rule, amount) if rule else (None, None)
        check = None
        decision = issuer.Decision(code) if code else None
        if decision is None and txn in ISSUER_DECIDES:
            pin_block = bytes.fromhex(request["52"]) if "52" in request else None
            check = self._check_arqc(request, card)
            decision = issuer.decide(card, amount, pin_block=pin_block, pik=keys.pik,
                                     today=self._clock().date(),
                                     arqc_ok=None if check is None else check.ok)
        if decision is None:                   # acts on an original the host approved
            auth = request.get("38") if txn is TxnType.OFFLINE_SALE else issuer.auth_code()
            decision = issuer.Decision("00", auth)
        now = self._clock()
        rrn = self.ledger.next_rrn()
        try:
            self.ledger.record(
                terminal_id=terminal_id, merchant_id=request["42"], batch=batch, stan=stan,
                mti=mti, txn_type=txn.key, processing_code=request.get("3"),
                amount=amount, currency=request.get("49"), pan=card.pan if card else None,
                entry_mode=request.get("22"), response_code=decision.response_code, rrn=rrn,
                auth_code=decision.auth_code,
                state="approved" if decision.approved else "declined",
                settlement_date=f"{now:%m%d}", moment=now,
                original_id=original["id"] if original else None,
                card_org=request.get("63", "")[:3].strip().upper() or None)
        except DuplicateTransaction:
            return self._reply(request, "94", mak=keys.mak)
        if decision.approved and rule is not None and original is not None:
            self._apply(rule, original, undo=False)
        if decision.silent:
            return None
        extra = None
        if check is not None and check.ok:
            # The issuer authenticates itself to the card: 91 = ARPC + ARC, for approvals
            # and declines alike (the card then answers TC or AAC at its second GEN AC).
            extra = {"55": arqc.issuer_reply_data(check, decision.response_code)}
        return self._reply(request, decision.response_code, mak=keys.mak, rrn=rrn,
                           auth_code=decision.auth_code, extra=extra)

    def _original(self, request: Fields, rule: ActsOn,
                  amount: int) -> tuple[dict[str, Any] | None, str | None]:
        """The transaction a request acts on, and a refusal code when it cannot."""
        refs: dict[str, Any] = {}
        if rule.by == "f61":
            original_batch, original_stan = original_of(request)
            refs = {"batch": original_batch, "stan": original_stan}
            if refs["batch"] != batch_of(request):
                return None, "12"                # a void stays inside its batch
        elif rule.by == "rrn":
            refs = {"rrn": request.get("37")}
        else:
            refs = {"auth_code": request.get("38")}
        original = self.ledger.find_where(request["41"], txn_types=rule.types, **refs)
        if original is None or original["state"] != "approved":
            return original, "25"
        card = issuer.card_from_fields(request)
        if card is not None and original["pan_hash"] not in (None, self.ledger.pan_hash(card.pan)):
            return original, "25"               # another card than the original's
        limit = original["amount"] * rule.max_ratio - self.ledger.refunded(original["id"]) \
            if rule.max_ratio else None
        if rule.same_amount and amount != original["amount"]:
            return original, "13"
        if limit is not None and amount > limit:
            return original, "61" if rule.max_ratio > 1 else "13"
        return original, None

    def _apply(self, rule: ActsOn, original: dict[str, Any], *, undo: bool) -> None:
        """The original's state after an approval acting on it (or after its reversal)."""
        if rule.effect is None:
            return
        before, after = ("approved", rule.effect) if not undo else (rule.effect, "approved")
        self.ledger.set_state(original["id"], after, only_from=before)
        if original["txn_type"] == TxnType.COMPLETION.key and original["original_id"]:
            # Voiding a completion gives its pre-authorisation back, and the other way round.
            preauth = ("completed", "approved") if not undo else ("approved", "completed")
            self.ledger.set_state(original["original_id"], preauth[1], only_from=preauth[0])

    def _balance(self, request: Fields, keys: TerminalKeys) -> _Reply:
        """Balance inquiry: the card's checks and its PIN; the balance in field 54."""
        card = issuer.card_from_fields(request)
        pin_block = bytes.fromhex(request["52"]) if "52" in request else None
        code, balance = issuer.inquire(card, pin_block=pin_block, pik=keys.pik,
                                       today=self._clock().date())
        extra = None
        if balance is not None:
            # 54: account type 10 (default), amount type 02 (available), currency, C, amount.
            extra = {"54": f"1002{request.get('49', '156')}C{balance:012d}"}
        return self._reply(request, code, mak=keys.mak, extra=extra)

    def _check_arqc(self, request: Fields, card: issuer.Card | None) -> arqc.ArqcCheck | None:
        """The chip's cryptogram checked from field 55; None without field 55 or a card.

        A field 55 that is not TLV or lacks 9F26/9F36/9F10/82 is a format error (30).
        """
        if "55" not in request or card is None or card.pan not in issuer.CARDS:
            return None
        try:
            check = arqc.verify_arqc(request["55"], card.pan, request.get("23"))
        except arqc.IccDataError as exc:
            raise FormatError(str(exc)) from None
        if check.ok:
            logger.info("%s: ARQC verified%s", request["41"], self._card_note(request))
        else:
            logger.warning("%s: ARQC failed (%s)%s", request["41"], check.reason,
                           self._card_note(request))
        return check

    def _reversal(self, request: Fields, keys: TerminalKeys) -> _Reply:
        terminal_id = request["41"]
        stan, batch = stan_of(request), batch_of(request)
        original = None
        for mti in _ORIGINAL_MTIS:
            found = self.ledger.find(terminal_id, batch, stan, mti)
            if found and found["processing_code"] == request.get("3", found["processing_code"]):
                original = found
                break
        if original is None:
            return self._reply(request, "25", mak=keys.mak)
        reason = request.get("39", "06")
        if original["state"] == "approved":
            self.ledger.mark_reversed(original["id"], reason)
            rule = ACTS_ON.get(from_key(original["txn_type"]))
            if rule is not None and original["original_id"]:
                self._apply(rule, self.ledger.get(original["original_id"]), undo=True)
        elif original["state"] == "declined":
            self.ledger.note_reversal(original["id"], reason)
        if "4" in request and amount_of(request) != original["amount"]:
            logger.warning("%s: reversal of stan %06d says amount %s, the original was %s",
                           terminal_id, stan, request["4"], original["amount"])
        return self._reply(request, "00", mak=keys.mak, rrn=original["rrn"])

    # -- replies -----------------------------------------------------------------------

    def _reply(self, request: Fields, code: str, *, mak: bytes | None = None,
               rrn: str | None = None, auth_code: str | None = None,
               extra: dict[str, str] | None = None) -> _Reply:
        now = self._clock()
        reply: dict[str, Any] = {"t": codec.reply_mti(request["t"])}
        reply.update({f: request[f] for f in ECHOED if f in request})
        reply.update({"12": f"{now:%H%M%S}", "13": f"{now:%m%d}", "15": f"{now:%m%d}",
                      "37": rrn or self.ledger.next_rrn(), "39": code})
        if code == "00" and auth_code:
            reply["38"] = auth_code
        reply.update(extra or {})
        return _Reply(reply, mak)

    @staticmethod
    def _card_note(request: Fields) -> str:
        card = issuer.card_from_fields(request)
        return f" card {mask_pan(card.pan)}" if card else ""

    # -- the socket ----------------------------------------------------------------------

    async def serve_connection(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        """Answer the messages of one connection until the terminal closes it."""
        peer = writer.get_extra_info("peername")
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readexactly(2)
                    body = await reader.readexactly(int.from_bytes(head, "big"))
                except asyncio.IncompleteReadError:
                    break
                try:
                    reply, effect, delay = self.deliver(body)
                except MessageError as exc:
                    logger.warning("%s: %s; connection dropped",
                                   _peer(peer), exc)
                    break
                except Exception as exc:  # noqa: BLE001 - a damaged ledger: keep serving others
                    logger.error("%s: cannot answer (%s: %s); connection dropped",
                                 _peer(peer), type(exc).__name__, exc)
                    break
                if delay:
                    await asyncio.sleep(delay)
                if effect.close:
                    break
                if reply is not None and effect.copies:
                    writer.write((len(reply).to_bytes(2, "big") + reply) * effect.copies)
                    await writer.drain()
        except (ConnectionError, OSError) as exc:
            logger.info("%s: connection lost: %s", _peer(peer), exc)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def close_connections(self) -> None:
        """Close every open terminal connection (at shutdown: terminals keep theirs open)."""
        for writer in list(self._writers):
            writer.close()

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on host:port (0 = a free port); the caller closes the returned server."""
        return await asyncio.start_server(self.serve_connection, host, port)


@dataclass(frozen=True)
class _Exchange:
    """One processed request: what the reply needs to be framed, and the reply (or None)."""

    request: Fields
    tpdu: bytes
    header: bytes
    reply: _Reply | None


@dataclass(frozen=True)
class ActsOn:
    """What a transaction type acts on and what its approval does to that original."""

    types: tuple[str, ...]            # the original's txn_type
    by: str                           # how it is found: "f61" (batch+STAN), "rrn", "auth"
    effect: str | None                # the original's state after the approval
    same_amount: bool = False         # a void is for the original's whole amount
    max_ratio: float | None = None    # at most this share of the original (less refunds)


#: The transaction table's money-moving rows, seen from the issuer's side.
ACTS_ON = {
    TxnType.VOID: ActsOn(("sale",), "f61", "voided", same_amount=True),
    TxnType.PREAUTH_VOID: ActsOn(("preauth",), "f61", "voided", same_amount=True),
    TxnType.COMPLETION: ActsOn(("preauth",), "auth", "completed", max_ratio=1.15),
    TxnType.COMPLETION_VOID: ActsOn(("completion",), "f61", "voided", same_amount=True),
    TxnType.REFUND: ActsOn(("sale", "completion", "offline_sale"), "rrn", None, max_ratio=1.0),
}
#: Types whose card the issuer checks (PIN, funds, cryptogram).
ISSUER_DECIDES = frozenset({TxnType.SALE, TxnType.PREAUTH})
#: Advices (0220): a repeat gets the first answer again.
ADVICES = frozenset({TxnType.REFUND, TxnType.OFFLINE_SALE})
FINANCIAL = ISSUER_DECIDES | frozenset(ACTS_ON) | ADVICES


@dataclass(frozen=True)
class _Reply:
    """A reply's fields and the MAK to MAC it with (None: sent without field 64)."""

    fields: dict[str, Any]
    mak: bytes | None


def _peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
