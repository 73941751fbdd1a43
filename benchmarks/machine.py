"""The machine and software a run measured: results mean nothing without them."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from systems import HERE, PEERS, PROJECT_PYTHON

# Distribution names whose versions are recorded, per peer environment.
PEER_PACKAGES = {
    "celery": ("celery", "kombu", "redis", "hiredis"),
    "rq": ("rq", "redis", "hiredis"),
    "arq": ("arq", "redis", "hiredis"),
    "dramatiq": ("dramatiq", "redis", "hiredis"),
    "saq": ("saq", "redis", "hiredis"),
    "taskiq": ("taskiq", "taskiq-redis", "redis", "hiredis"),
    "tools": ("redis", "hiredis", "matplotlib"),
}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _ram_gib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def redis_version(host: str = "127.0.0.1", port: int = 6379) -> str:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(b"INFO server\r\n")
        data = b""
        while b"redis_version" not in data or not data.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1]
    return "unreachable"


def _run(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    return ""


def _package_versions(env: str, names: tuple[str, ...]) -> dict[str, str]:
    python = PEERS / env / "bin" / "python"
    if not python.exists():
        return {}
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    with contextlib.suppress(ValueError):
        return dict(json.loads(_run([str(python), "-c", code, *names]) or "{}"))
    return {}


def _node_package(name: str) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(
            json.loads((HERE / "node_modules" / name / "package.json").read_text())["version"]
        )
    return ""


def describe() -> dict[str, Any]:
    """CPU, cores, RAM, kernel, Python, Redis, Node and every peer's package versions."""
    versions: dict[str, Any] = {
        env: _package_versions(env, names) for env, names in PEER_PACKAGES.items()
    }
    versions["node"] = {"bullmq": _node_package("bullmq"), "ioredis": _node_package("ioredis")}
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": _run([str(PROJECT_PYTHON), "-c", "import sys; print(sys.version.split()[0])"]),
        "redis": redis_version(),
        "node": _run(["node", "--version"]),
        "flashq_commit": _run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"]),
        "flashq_dirty": bool(_run(["git", "-C", str(HERE.parent), "status", "--porcelain"])),
        "load_average": os.getloadavg(),
        "versions": versions,
    }


def one_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"Linux {machine['kernel']}, Python {machine['python']}, Redis {machine['redis']}, "
        f"Node {machine['node']}"
    )
