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
    """Why a worker process ended, as a predicate: "crashed (signal 8): SIGFPE"."""
    process.join(5)
    code = process.exitcode
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = ", killed: out of memory?" if -code == signal.SIGKILL else ""
        return f"crashed (signal {-code}): {name}{why}"
    return f"exited the process (exit code {code})"


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (0 where the platform cannot say)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def default_memory_limit_mb() -> float:
    """Three quarters of the machine's memory: a worker past it is stopped before the
    machine starts to swap or its out-of-memory killer picks a victim."""
    try:
        return 0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return 8192.0


def call_isolated(fn: Callable[..., Any], *args: Any, timeout: float | None = 600.0,
                  memory_limit_mb: float | None = None, what: str = "the worker") -> Any:
    """``fn(*args)`` in a spawned worker process, watched; its result, or a ``BackendError``.

    A native crash, a run past ``timeout`` seconds or a resident memory past
    ``memory_limit_mb`` (default :func:`default_memory_limit_mb`) costs the worker, which is
    killed, and becomes an error that names the cause; the caller goes on. ``fn`` must be a
    module-level function and its arguments and result picklable.
    """
    from modelport.errors import BackendError

    limit = memory_limit_mb or default_memory_limit_mb()
    process, conn = spawn(_call, fn, args)
    start = time.monotonic()
    try:
        while not conn.poll(0.05):
            if not process.is_alive() and not conn.poll(0):
                raise BackendError(f"{what} {death(process)}")
            if timeout is not None and time.monotonic() - start > timeout:
                raise BackendError(f"{what} timed out after {timeout:g} s (--timeout)")
            if (used := rss_mb(process.pid)) > limit:
                raise BackendError(f"{what} used {used:.0f} MB, over the {limit:.0f} MB "
                                   f"limit (--memory-limit)")
        try:
            ok, value = conn.recv()
        except (EOFError, OSError):
            raise BackendError(f"{what} {death(process)}") from None
        if not ok:
            raise value
        return value
    finally:
        conn.close()
        if process.is_alive():
            process.kill()
        process.join(5)


def _call(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    from modelport.errors import BackendError, ModelportError, one_line

    try:
        result: tuple[bool, Any] = (True, fn(*args))
    except ModelportError as exc:
        result = (False, exc)
    except Exception as exc:  # the parent reports it as this worker's failure
        result = (False, BackendError(f"{type(exc).__name__}: {one_line(exc)}"))
    conn.send(result)
