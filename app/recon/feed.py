"""The statement's lines for the matcher, read here or by a second process.

Reading and converting a million-line statement and loading a million journal rows are
each seconds of Python; on a two-core POS box they overlap when a forked process reads the
file and sends its lines over a pipe as column blocks (``model.LineBlock``: pickling a
block of columns costs a fraction of pickling an object per line). A thread here drains
the pipe as it fills, so the reader never waits for the journal. An error in the reading
process (a wrong encoding at line N...) arrives as its one-line message and is raised here
as the same kind of error.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from app.errors import AppError, InputError
from app.recon.model import LineBlock, StatementLine, SummaryFigures, Unparseable
from app.recon.profile import Profile
from app.recon.statement import StatementError, open_statement

log = logging.getLogger(__name__)

_SEND_EVERY = 16        # items per message: about 16,000 lines in blocks
_LAST = b"\x00"         # after the pickle of the last message (a pickle ends with '.')


class StatementFeed:
    """``items()`` yields the statement's lines (blocks and single ones) in file order;
    then ``summary`` holds the statement's own totals. Use it as a context manager: the
    reading process is stopped on the way out, whatever happened."""

    def __init__(self, path: Path, profile: Profile, *, parallel: bool) -> None:
        self.summary: SummaryFigures | None = None
        self._path, self._profile = path, profile
        self._reader = None if parallel else open_statement(path, profile)
        self._process: Any = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        if parallel:
            self._start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
        if process is not None:
            process.join(timeout=10)

    def items(self) -> Iterator[StatementLine | Unparseable | LineBlock]:
        if self._reader is not None:
            yield from self._reader.items()
            self.summary = self._reader.summary
            return
        while True:
            kind, payload = pickle.loads(self._queue.get())
            if kind == "items":
                yield from payload
            elif kind == "end":
                self.summary = payload
                return
            elif kind == "input":
                raise StatementError(payload)
            else:
                raise InputError(f"{self._path}: the statement could not be read: {payload}")

    # -- the reading process and the thread draining its pipe ------------------------------

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)
        self._process = context.Process(target=_read, name="posterm-statement-reader",
                                        args=(self._path, self._profile, sending),
                                        daemon=True)
        self._process.start()
        sending.close()
        threading.Thread(target=self._drain, args=(receiving,), daemon=True,
                         name="statement-pipe").start()

    def _drain(self, receiving: Any) -> None:
        try:
            while True:
                message = receiving.recv_bytes()
                self._queue.put(message)
                if message[-1:] == _LAST:
                    return
        except (EOFError, OSError):
            self._queue.put(pickle.dumps(("lost", "the reading process stopped unexpectedly")))
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


def _read(path: Path, profile: Profile, sending: Any) -> None:
    """The reading process: the statement's items in messages, then its summary."""
    gc.disable()                      # a short-lived process making no reference cycles
    try:
        reader = open_statement(path, profile)
        batch: list[Any] = []
        for item in reader.items():
            batch.append(item)
            if len(batch) >= _SEND_EVERY:
                _send(sending, "items", batch)
                batch = []
        if batch:
            _send(sending, "items", batch)
        _send(sending, "end", reader.summary, last=True)
    except AppError as exc:
        _send(sending, "input", str(exc), last=True)
    except Exception as exc:  # reported in the parent as one line; details in the log
        log.exception("statement reader failed")
        _send(sending, "lost", f"{type(exc).__name__}: {exc}", last=True)
    finally:
        sending.close()
