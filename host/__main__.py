"""``python -m host``: the same as the ``posterm-host`` command."""

from host.cli import main

main()
