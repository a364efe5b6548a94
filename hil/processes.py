"""Starting and stopping the virtual devices' processes, by PID, with bounded waits."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess

STOP_TIMEOUT = 5.0


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM the process by its PID, SIGKILL if it lingers; close its stdout pipe."""
    if proc is None:
        return
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def readiness_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints, or a note that none came within ``timeout``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return f"(nothing within {timeout:.0f} s)"
    return proc.stdout.readline().strip()
