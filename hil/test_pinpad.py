"""The PIN pad through the ABECS driver: against the bench's pad or the virtual one on a pty.

On a real bench only what needs neither a scripted customer nor known keys runs (GIN and the
display); the rest is skipped with the reason.
"""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from hal.errors import Cancelled, DeviceUnavailable, InvalidKey, Timeout
from hal.registry import DeviceContext, open_device
from hal.testcards import test_card
from hil.bench import Bench
from hil.pinpad_fixtures import TEST_MASTER_KEY, TEST_SLOT

WORKING_KEY = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")
PAN = "6226090000000048"


def tdes(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """TDES ECB with the cryptography library directly: independent of drivers.pin_block."""
    cipher = Cipher(TripleDES(key + key[:8]), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def clear_iso0_block(pin: str, pan: str) -> bytes:
    pin_field = bytes.fromhex(("0" + format(len(pin), "X") + pin).ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field))


@pytest.fixture
def context(tmp_path):
    return DeviceContext(data_dir=tmp_path)


def signed_on(pad, master: bytes = TEST_MASTER_KEY, slot: int = TEST_SLOT):
    """Load the test working key, encrypted under ``master``, with its check value."""
    kcv = tdes(WORKING_KEY, bytes(8))[:4]
    pad.load_working_key(slot, tdes(master, WORKING_KEY), kcv)
    return pad


def open_pad(url: str, context: DeviceContext):
    return open_device("pinpad", url, context=context)


def in_thread(call, *args):
    """Run ``call`` in a thread; return a function that joins it and returns or raises."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call(*args)
        except BaseException as exc:  # noqa: BLE001  (handed back to the test)
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(timeout: float = 5.0):
        thread.join(timeout)
        assert not thread.is_alive(), "the call did not return"
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome.get("value")

    return result


# --- every bench ------------------------------------------------------------------------


def test_gin_reports_manufacturer_model_and_firmware(pinpad_url, context, bench: Bench):
    with open_pad(pinpad_url, context) as pad:
        info = pad.info()
        pad.display("PLEASE WAIT\nPROCESSING")
    assert info["driver"] == "pinpad_abecs"
    assert info["manufacturer"] and info["model"] and info["firmware"]
    assert info["spec_version"].startswith("2.")
    if bench.virtual:
        assert (info["manufacturer"], info["model"]) == ("POSTERM", "VIRTUAL-PP;1MB")


# --- the virtual pad: a scripted customer and known keys -----------------------------------


def test_cashier_cancel_while_pin_entry_blocks_then_the_pad_answers_the_next_command(
    virtual_pinpad, context
):
    vpp = virtual_pinpad(pin=None)  # nobody types
    with signed_on(open_pad(vpp.url, context)) as pad:
        entry = in_thread(pad.get_pin_block, PAN, TEST_SLOT, 30.0)
        time.sleep(0.2)  # the GPN is with the pad, waiting for the customer
        started = time.monotonic()
        pad.cancel()
        with pytest.raises(Cancelled):
            entry()
        assert time.monotonic() - started < 1.0
        assert pad.info()["model"] == "VIRTUAL-PP;1MB"
        vpp.send("pin 4321")
        assert len(pad.get_pin_block(PAN, TEST_SLOT, 5.0)) == 8
    assert "CAN: GPN aborted" in vpp.log_text()


def test_nobody_typing_times_out_and_the_pad_is_free_again(virtual_pinpad, context):
    vpp = virtual_pinpad(pin=None)
    with signed_on(open_pad(vpp.url, context)) as pad:
        started = time.monotonic()
        with pytest.raises(Timeout, match="No PIN entered in time"):
            pad.get_pin_block(PAN, TEST_SLOT, timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 2.0
        pad.display("TRY AGAIN")


def test_pin_block_decrypts_to_the_typed_pin_for_the_pan(virtual_pinpad, context):
    vpp = virtual_pinpad(pin="123456", master_keys={})
    with open_pad(vpp.url, context) as pad:
        assert not pad.has_master_key(TEST_SLOT)
        pad.load_master_key(TEST_SLOT, TEST_MASTER_KEY)  # provisioning
        assert pad.has_master_key(TEST_SLOT)
        signed_on(pad)
        block = pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)
        vpp.send("type 654321")
        second = pad.get_pin_block("6250940000000019", TEST_SLOT, timeout=5.0)
    assert tdes(WORKING_KEY, block, decrypt=True) == clear_iso0_block("123456", PAN)
    assert tdes(WORKING_KEY, second, decrypt=True) == clear_iso0_block("654321", "6250940000000019")


def test_a_working_key_with_the_wrong_check_value_is_refused(virtual_pinpad, context):
    vpp = virtual_pinpad()
    with open_pad(vpp.url, context) as pad:
        with pytest.raises(InvalidKey, match="check value"):
            pad.load_working_key(TEST_SLOT, tdes(TEST_MASTER_KEY, WORKING_KEY), b"\x00\x11\x22\x33")
        with pytest.raises(InvalidKey, match="sign on"):
            pad.get_pin_block(PAN, TEST_SLOT)  # nothing kept from the refused key
        with pytest.raises(InvalidKey, match="no master key in slot 07"):
            signed_on(pad, slot=7)


def test_customer_pressing_cancel_is_cancelled(virtual_pinpad, context):
    vpp = virtual_pinpad()
    with signed_on(open_pad(vpp.url, context)) as pad:
        vpp.send("cancel")
        with pytest.raises(Cancelled, match="customer cancelled"):
            pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)
        assert len(pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)) == 8  # the next one types


def test_the_pads_own_idle_timer_is_a_timeout(virtual_pinpad, context):
    vpp = virtual_pinpad(pin=None, idle=0.3)
    with signed_on(open_pad(vpp.url, context)) as pad, pytest.raises(Timeout):
        pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)
    assert "GPN: idle timeout" in vpp.log_text()


def test_a_corrupted_byte_on_the_line_is_recovered_by_nak_and_retransmission(
    virtual_pinpad, context
):
    vpp = virtual_pinpad(pin="123456")
    with signed_on(open_pad(vpp.url, context)) as pad:
        vpp.send("corrupt 1")  # the GPN response
        block = pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)
        vpp.send("nak 2")  # and two commands NAKed by the pad
        pad.display("THANK YOU")
    assert tdes(WORKING_KEY, block, decrypt=True) == clear_iso0_block("123456", PAN)
    log = vpp.log_text()
    assert "response GPN000 sent with a corrupted byte" in log
    assert "NAK received: response sent again" in log
    assert log.count("command packet answered NAK") == 2


def test_a_swipe_returns_the_profiles_track_two(virtual_pinpad, context):
    card = test_card("unionpay-credit-swipe")
    vpp = virtual_pinpad(swipe=card.name)
    with open_pad(vpp.url, context) as pad:
        stripe = pad.read_magstripe(timeout=5.0)
    assert stripe.track2 == card.track2()
    assert card.pan not in repr(stripe)


def test_a_swipe_that_never_comes_times_out(virtual_pinpad, context):
    vpp = virtual_pinpad()
    with open_pad(vpp.url, context) as pad, pytest.raises(Timeout, match="No card swiped"):
        pad.read_magstripe(timeout=1.0)
    assert "CEX: idle timeout" in vpp.log_text()


def test_a_pad_without_a_card_swipe_says_so(virtual_pinpad, context):
    vpp = virtual_pinpad(msr=False)
    with open_pad(vpp.url, context) as pad, pytest.raises(DeviceUnavailable, match="no card swipe"):
        pad.read_magstripe(timeout=1.0)


def test_keys_other_than_digits_come_back_by_name(virtual_pinpad, context):
    vpp = virtual_pinpad()
    with open_pad(vpp.url, context) as pad:
        vpp.send("key f2")
        assert pad.wait_key(timeout=5.0) == "f2"
        vpp.send("key cancel")
        with pytest.raises(Cancelled):
            pad.wait_key(timeout=5.0)


def test_a_pad_that_goes_away_is_unavailable_then_found_again_by_the_same_object(
    virtual_pinpad, context
):
    vpp = virtual_pinpad(pin="123456")
    first_pid = vpp.proc.pid
    pad = signed_on(open_pad(vpp.stable_url, context))
    try:
        assert len(pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)) == 8
        vpp.stop()
        with pytest.raises(DeviceUnavailable):
            pad.display("HELLO")
        with pytest.raises(DeviceUnavailable):
            pad.info()  # still gone: a clear error, not a library exception
        vpp.restart()  # a new process on a new pty (the kernel may reuse its number)
        assert vpp.proc.pid != first_pid
        pad.display("BACK AGAIN")
        block = pad.get_pin_block(PAN, TEST_SLOT, timeout=5.0)  # the same object, keys kept
        assert tdes(WORKING_KEY, block, decrypt=True) == clear_iso0_block("123456", PAN)
    finally:
        pad.close()
