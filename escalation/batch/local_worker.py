"""What a local worker process does first as it starts (a Dask preload, listed before the replay
code): it ignores Ctrl-C.

Ctrl-C at a terminal reaches the whole process group, workers included. Only the process that
started the cluster should act on it, by shutting the cluster down; a worker that acted on it
would die with a traceback of its own. The worker is started with SIGINT blocked (see
`run._ctrl_c_held`), which covers its start-up; here it ignores SIGINT for the rest of its life
and unblocks it, so that it runs with an ordinary signal mask.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    """Dask calls this in the worker process, in its main thread, before the worker takes a task."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
