"""Device interfaces and the device-URL registry; no I/O of its own and no imports of ours.

- :mod:`hal.interfaces` — the ABCs the app codes against (CardReader, PinPad, Printer...)
- :mod:`hal.errors` — the exceptions every driver translates its library's errors into
- :mod:`hal.registry` — device URLs to devices (``open_device``, ``open_devices``)
- :mod:`hal.document` — printable documents; :mod:`hal.testcards` — the test-card catalogue
"""
