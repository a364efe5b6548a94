"""The statement's lines for the matcher, read here or by reading processes.

Reading and converting a million-line statement and loading a million journal rows are
each seconds of Python; they overlap when forked processes read the file and send its
lines over pipes as column blocks (``model.LineBlock``: pickling a block of columns costs a
fraction of pickling an object per line). Several readers share the work by units of
lines and the units are put back in file order here. A thread per pipe drains it as it
fills (keeping the bytes, unpickled only when the matcher takes them), so a reader never
waits for the journal. An error a reader meets (a wrong encoding at line N...) arrives as
its one-line message and is raised here as the same kind of error.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import queue
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from app.errors import AppError, InputError
from app.recon.model import LineBlock, StatementLine, SummaryFigures, Unparseable
from app.recon.profile import Profile
from app.recon.statement import UNIT_END, StatementError, open_statement

log = logging.getLogger(__name__)

#: Reading processes sharing a big statement: each reads the whole file (splitting lines
#: is the cheap part) and converts every n-th unit of 1,024 lines. One core stays for the
#: journal and the matching: a 2-core box has one reader (two would only add the
#: duplicated splitting to a machine already busy), a 4-core box two.
READERS = max(1, min(2, (os.cpu_count() or 2) - 1))
_SEND_EVERY = 8         # units per message: about 8,000 lines in blocks
_LAST = b"\x00"         # after the pickle of the last message (a pickle ends with '.')


class StatementFeed:
    """``items()`` yields the statement's lines (blocks and single ones) in file order;
    then ``summary`` holds the statement's own totals. Use it as a context manager: the
    reading process is stopped on the way out, whatever happened."""

    def __init__(self, path: Path, profile: Profile, *, parallel: bool,
                 readers: int = READERS) -> None:
        self.summary: SummaryFigures | None = None
        self._path, self._profile = path, profile
        self._reader = None if parallel else open_statement(path, profile)
        self._processes: list[Any] = []
        self._queues: list[queue.SimpleQueue] = []
        if parallel:
            self._start(readers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=10)

    def items(self) -> Iterator[StatementLine | Unparseable | LineBlock]:
        if self._reader is not None:
            yield from self._reader.items()
            self.summary = self._reader.summary
            return
        # Unit u of the file comes from reader u % READERS; each sends its units in order.
        waiting: list[deque] = [deque() for _ in self._queues]
        total: int | None = None
        unit = 0
        while total is None or unit < total:
            mine = unit % len(self._queues)
            while not waiting[mine]:
                kind, payload = pickle.loads(self._queues[mine].get())
                if kind == "units":
                    waiting[mine].extend(payload)
                elif kind == "end":
                    self.summary, total = payload
                    if unit >= total:
                        return
                    if not waiting[mine]:
                        raise InputError(f"{self._path}: the statement could not be read:"
                                         " its readers disagree")
                elif kind == "input":
                    raise StatementError(payload)
                else:
                    raise InputError(f"{self._path}: the statement could not be read: "
                                     f"{payload}")
            number, lines = waiting[mine].popleft()
            if number != unit:
                raise InputError(f"{self._path}: the statement could not be read: unit"
                                 f" {number} came for {unit}")
            yield from lines
            unit += 1

    # -- the reading processes and the threads draining their pipes -----------------------

    def _start(self, readers: int) -> None:
        context = multiprocessing.get_context("fork")
        for share in range(readers):
            receiving, sending = context.Pipe(duplex=False)
            process = context.Process(target=_read, name=f"posterm-statement-reader-{share}",
                                      args=(self._path, self._profile, (share, readers),
                                            sending), daemon=True)
            process.start()
            sending.close()
            self._processes.append(process)
            self._queues.append(queue.SimpleQueue())
            threading.Thread(target=self._drain, args=(receiving, self._queues[-1]),
                             daemon=True, name=f"statement-pipe-{share}").start()

    @staticmethod
    def _drain(receiving: Any, into: queue.SimpleQueue) -> None:
        try:
            while True:
                message = receiving.recv_bytes()
                into.put(message)
                if message[-1:] == _LAST:
                    return
        except (EOFError, OSError):
            into.put(pickle.dumps(("lost", "the reading process stopped unexpectedly")))
        finally:
            receiving.close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a million lists and tuples of text and numbers
    (no cycles among them) would set it off thousands of times for nothing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _send(sending: Any, kind: str, payload: Any, *, last: bool = False) -> None:
    """One message: pickled here, kept as bytes by the receiving thread (a few hundred MB
    of objects for a million lines would otherwise wait in memory while the journal loads)
    and unpickled when the matcher takes it; the last message ends with a marker byte."""
    sending.send_bytes(pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
                       + (_LAST if last else b""))


def _read(path: Path, profile: Profile, share: tuple[int, int], sending: Any) -> None:
    """A reading process: its share of the statement's units, in messages of a few, then
    the summary and the number of units (every reader reads the whole file and follows
    its state; each converts only its own units)."""
    gc.disable()                      # a short-lived process making no reference cycles
    try:
        reader = open_statement(path, profile)
        reader.share = share
        mine, every = share
        unit = 0
        lines: list[Any] = []
        batch: list[tuple[int, list[Any]]] = []
        for item in reader.items():
            if item is not UNIT_END:
                lines.append(item)
                continue
            if unit % every == mine:
                batch.append((unit, lines))
                if len(batch) >= _SEND_EVERY:
                    _send(sending, "units", batch)
                    batch = []
            lines = []
            unit += 1
        if batch:
            _send(sending, "units", batch)
        _send(sending, "end", (reader.summary, unit), last=True)
    except AppError as exc:
        _send(sending, "input", str(exc), last=True)
    except Exception as exc:  # reported in the parent as one line; details in the log
        log.exception("statement reader failed")
        _send(sending, "lost", f"{type(exc).__name__}: {exc}", last=True)
    finally:
        sending.close()
