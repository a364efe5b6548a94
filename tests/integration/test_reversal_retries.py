"""Reversals that the host does not answer: retried with backoff, then handed to people."""

from __future__ import annotations

from pathlib import Path

from conftest import HostSim, posterm, provision, set_config


def _terminal(tmp_path: Path, *host_flags: str) -> tuple[Path, HostSim]:
    host = HostSim(tmp_path / "host", tmp_path / "host.log", *host_flags)
    data = tmp_path / "terminal"
    provision(data, host.address, host.data)
    set_config(data, "host", "response_timeout", 0.5)
    set_config(data, "host", "reversal_backoff", 0.1)
    return data, host


def test_an_unanswered_reversal_is_tried_n_times_then_failed_with_a_slip(tmp_path):
    data, host = _terminal(tmp_path, "--fault", "drop:mti=0400")
    try:
        set_config(data, "host", "reversal_tries", 3)
        sale = posterm(data, "sale", "66.66", "--card", "host-silent", "--json")
        assert sale.returncode == 3, str(sale)
        assert "handle it manually" in sale.json()["error"]
        row = posterm(data, "txns", "--json").json()["transactions"][0]
        assert row["reversal"] == "failed" and row["state"] == "pending"
        ledger = [r for r in host.ledger_rows() if r["mti"] == "0200"]
        assert len(ledger) == 1                     # the host did record (approve) the sale
        log = host.log_path.read_text(encoding="utf-8")
        assert log.count("0400 reversal") == 3, log  # three tries reached the host
        slips = [p.read_text(encoding="utf-8") for p in (data / "receipts").glob("*.txt")]
        slip = next(s for s in slips if "REVERSAL FAILED" in s)
        assert "HANDLE MANUALLY" in slip and "¥66.66" in slip and row["stan"] in slip
        # The next sale is not held up by the failed reversal.
        after = posterm(data, "sale", "1.00", "--card", "visa-chip", "--json")
        assert after.returncode == 0, str(after)
    finally:
        host.stop()


def test_an_armed_reversal_goes_before_the_next_sale_once_the_host_answers(tmp_path):
    data, host = _terminal(tmp_path, "--fault", "drop:mti=0400:count=1")
    try:
        set_config(data, "host", "reversal_tries", 5)
        sale = posterm(data, "sale", "66.66", "--card", "host-silent", "--json")
        assert sale.returncode == 3, str(sale)
        # First reversal reply dropped, the second try (after the backoff) answered.
        row = posterm(data, "txns", "--json").json()["transactions"][0]
        assert (row["state"], row["reversal"]) == ("reversed", "done")
    finally:
        host.stop()
