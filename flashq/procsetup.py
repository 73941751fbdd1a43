"""Process setup shared by every flashQ process: logging, `ps` title, parent-death signal."""

from __future__ import annotations

import ctypes
import logging
import signal
import sys

_PR_SET_PDEATHSIG = 1


def setup_logging(role: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s [{role}] %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def set_title(title: str) -> None:
    """Show a readable role in `ps` (e.g. `flashq: shard 1/2`)."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a dependency; titles are cosmetic
        return
    setproctitle.setproctitle(title)


def become_child(role: str, level: str) -> None:
    """Set up a supervised child process.

    SIGINT is ignored: a terminal's Ctrl-C reaches the whole process group, and the
    supervisor must be the one to stop children, in order. SIGTERM is requested if the
    supervisor dies (even by SIGKILL), so no orphan keeps the ports or data files.
    """
    setup_logging(role, level)
    set_title(f"flashq: {role}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
