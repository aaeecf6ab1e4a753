"""Stopping the background tasks that parts of the server run on its event loop."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel each task and wait until it has stopped (``None``: nothing to stop). An error
    other than the cancellation itself, which a task ended with, is raised."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
