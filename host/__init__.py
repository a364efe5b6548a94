"""posterm-host: the acquirer host simulator that laptops, tests and HIL benches talk to.

It speaks the same ISO 8583 dialect as the terminal (``sync``'s spec, codec, framing and
MAC modules) and keeps its own ledger; it never imports the terminal's journal.
"""
