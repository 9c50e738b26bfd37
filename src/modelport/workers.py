"""Worker processes: spawned without re-running the caller's script, and their deaths told.

Conformance cases and bench runs execute backends in spawned processes, so that a crash, a
hang or a bloated heap costs one worker, not the run. The ``spawn`` start method imports the
parent's ``__main__`` in every child: a user's script that calls ``modelport.bench`` without an
``if __name__ == "__main__":`` guard would run again inside each worker (and try to start
workers of its own there). Workers run only modelport functions, so they are started with the
main module hidden from multiprocessing's preparation data.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

_start_lock = threading.Lock()


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """While a child is being spawned, ``__main__`` names no file or module to re-import."""
    main = sys.modules.get("__main__")
    with _start_lock:
        saved = {name: getattr(main, name) for name in ("__file__", "__spec__")
                 if hasattr(main, name)}
        try:
            for name in saved:
                if name == "__spec__":
                    main.__spec__ = None  # type: ignore[union-attr]
                else:
                    delattr(main, name)
            yield
        finally:
            for name, value in saved.items():
                setattr(main, name, value)


def spawn(target: Callable[..., Any], *args: Any) -> tuple[Any, Connection]:
    """Start ``target(connection, *args)`` in a fresh process; return it and our end of a pipe.

    ``target`` must be a module-level function of an importable module (not ``__main__``).
    """
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_bootstrap, args=(os.getpid(), target, theirs, *args),
                          daemon=True)
    with _main_script_hidden():
        process.start()
    theirs.close()
    return process, ours


def _bootstrap(parent: int, target: Callable[..., Any], *args: Any) -> None:
    """A worker ends when its parent does, however that ended (SIGTERM and SIGKILL too)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    target(*args)


def death(process: Any) -> str:
    """Why a worker process ended, in words: its signal or its exit code."""
    process.join(5)
    code = process.exitcode
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = ", killed: out of memory?" if -code == signal.SIGKILL else ""
        return f"the backend crashed (signal {-code}): {name}{why}"
    return f"the backend exited the process (exit code {code})"
