"""The cashier app (收银界面): a Textual front end over the same functions as the CLI.

``posterm`` without a command (or ``posterm ui``) runs it. This package imports nothing
heavy at module level: the sign-on screen is drawn first, and the journal, the devices,
the host link and the flows are loaded behind it (docs/ui.md).
"""

from __future__ import annotations

from pathlib import Path


def run_app(data_dir: Path, *, verbose: bool = False) -> int:
    """Run the cashier app on ``data_dir`` until the cashier quits; the exit code."""
    from app.ui.app import PostermApp
    app = PostermApp(data_dir, verbose=verbose)
    code = app.run()
    return code if isinstance(code, int) else 0
