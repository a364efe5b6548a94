"""Named fault points for the crash-consistency harness.

``POSTERM_FAULT_POINT=NAME`` makes the process kill itself (SIGKILL: no clean-up, no
flush, like a power cut) when it reaches that point; the harness then restarts it and
checks that nothing was lost or doubled. Unset, a fault point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "POSTERM_FAULT_POINT"
#: before_send: journaled, nothing sent; after_send: sent, no reply read; after_reply: the
#: reply is in, not yet committed; after_commit: committed, the slip not yet printed.
#: The settlement's points: settle_<step> is reached after the step is committed and
#: before its message goes out; <type>_sent (e.g. settlement_sent, batch_upload_sent) after
#: an administrative request left and before its reply is read.
POINTS = ("before_send", "after_send", "after_reply", "after_commit")
SETTLEMENT_POINTS = ("settle_started", "settle_flushed", "settle_totals", "settlement_sent",
                     "settle_uploading", "batch_upload_sent", "settle_upload_end",
                     "upload_end_sent", "settle_host_done")


def fault_point(name: str) -> None:
    """Die here, at once, when the harness armed this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
