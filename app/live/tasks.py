"""Small helpers for the per-worker services of the live path (fan-out, access watcher): one per event loop."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One instance of a service per running event loop (Daphne runs one loop per process; tests one per test)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self._instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._instances.get(loop)
        if found is None:
            found = self._instances[loop] = self.factory()
        return found

    def instances(self) -> list[T]:
        """Every loop's instance (safe from another thread: the metrics server's, config/metrics.py)."""
        return list(self._instances.values())

    def current(self) -> T | None:
        """The running loop's instance, if it has one."""
        return self._instances.get(asyncio.get_running_loop())


async def cancel_all(tasks: Iterable[asyncio.Task | None]) -> None:
    """Cancel the tasks and wait for them to end, whatever they raise."""
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
