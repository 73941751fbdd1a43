"""Sample flashQ's acceptor and shard processes with py-spy while a scenario is measured, and
reduce the stacks to the functions that dominate (`run.py --profile`).

py-spy records only busy samples (not threads parked in epoll), at `RATE_HZ`; the reduction
gives, per process, the share of busy samples spent in each function itself (self) and under
it (inclusive), so "where does the acceptor's CPU go" is one table.
"""

from __future__ import annotations

import collections
import contextlib
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from systems import PEERS

PY_SPY = PEERS / "tools" / "bin" / "py-spy"
RATE_HZ = 200
TOP = 25
# Leaf frames that mean "waiting", not working: the event loop in epoll_wait, an idle thread
# of trio's thread cache. py-spy cannot always tell them from running (no --idle needed).
IDLE_LEAVES = (
    "EpollIOManager.get_events (",
    "WorkerThread._work (",
    "EpollIOManager._epoll_wait (",
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


class Recorder:
    """py-spy record on several processes; `stop()` ends them and returns the raw files."""

    def __init__(self, pids: dict[int, str], out_dir: Path, tag: str) -> None:
        self.out_dir = out_dir
        self.procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        out_dir.mkdir(parents=True, exist_ok=True)
        for pid, role in pids.items():
            path = out_dir / f"{tag}-{role.replace('/', '-').replace(' ', '')}.raw"
            argv = [
                str(PY_SPY), "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw",
                "--output", str(path), "--nonblocking",
            ]  # fmt: skip
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append((role, path, proc))

    def stop(self) -> dict[str, Path]:
        out = {}
        for role, path, proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if path.exists():
                out[role] = path
        return out


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


def reduce_stacks(path: Path) -> dict[str, Any]:
    """Self and inclusive shares of busy samples per function, from py-spy's collapsed stacks."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        if not frames:
            continue
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            incl_counts[name] += count
    return {
        "samples": total,
        "idle_samples": idle,
        "self": [(name, n / total) for name, n in self_counts.most_common(TOP)] if total else [],
        "inclusive": [(name, n / total) for name, n in incl_counts.most_common(TOP * 2)]
        if total
        else [],
    }


def markdown(profiles: dict[str, dict[str, dict[str, Any]]], seconds: dict[str, float]) -> str:
    """{scenario: {role: reduced}} as one Markdown page."""
    lines = [
        "# flashQ profile (py-spy)",
        "",
        f"Sampled at {RATE_HZ} Hz during the measured section of each scenario. Samples parked in",
        "epoll or in an idle worker thread are left out; `busy` is the share of one core the",
        "process spent elsewhere (Python, or a syscall such as send): samples / (rate x seconds).",
        "Shares below are of those busy samples. `BusyPoll.run` is the loop polling awake",
        "after a write instead of sleeping (flashq/busypoll.py): busy, but waiting.",
        "",
    ]
    for scenario, roles in profiles.items():
        wall = seconds.get(scenario, 0.0)
        lines += [f"## {scenario}", ""]
        for role, data in sorted(roles.items()):
            busy = data["samples"] / (RATE_HZ * wall) if wall else 0.0
            lines += [f"### {role}: {data['samples']} samples, busy ≈ {busy:.0%}", "", "self:", ""]
            lines += [f"- {share:5.1%}  {name}" for name, share in data["self"][:15]]
            lines += ["", "inclusive:", ""]
            lines += [f"- {share:5.1%}  {name}" for name, share in data["inclusive"][:30]]
            lines.append("")
    return "\n".join(lines) + "\n"
