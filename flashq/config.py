"""One frozen settings object for the whole server, with its loaders.

Defaults live here and only here. Precedence: CLI flags > environment > defaults. Child
processes get the settings as JSON in an environment variable (readable, keeps tokens out
of argv) and rebuild the same object with `Settings.from_json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from flashq.errors import ValidationError

StorageKind = Literal["embedded", "memory"]
FsyncPolicy = Literal["never", "always"]

ENV_SETTINGS = "FLASHQ_SETTINGS_JSON"


def _default_procs() -> int:
    return max(1, min(32, os.cpu_count() or 1))


@attrs.frozen
class Settings:
    host: str = "0.0.0.0"
    tcp_port: int = 6789
    #: Unix socket path for the command protocol, in addition to TCP; None = off.
    unix_socket: str | None = None
    http: bool = False
    http_port: int = 6790
    auth_tokens: tuple[str, ...] = ()
    storage: StorageKind = "embedded"
    data_dir: str = "./flashq-data"
    fsync: FsyncPolicy = "never"
    shard_procs: int = attrs.field(factory=_default_procs)
    #: Directory for the internal Unix sockets; the supervisor makes a private one if None.
    run_dir: str | None = None
    log_level: str = "INFO"
    #: Upper bound on the restart backoff of a crashed child.
    restart_backoff_max_s: float = 5.0
    #: How long a graceful shutdown waits for in-flight requests before cancelling them.
    shutdown_grace_s: float = 5.0
    #: HTTP CORS origins, comma-separated; "*" (the default) allows any origin.
    cors_allow_origin: str = "*"
    #: How often /ws/dashboard pushes a snapshot.
    dashboard_interval_ms: int = 3000
    #: How long the acceptor and shard processes keep polling after a write before they
    #: sleep (flashq/busypoll.py); 0 = sleep at once, for hosts where idle CPU matters more.
    #: 200 µs took sequential PUSH from 2.7k to 4.2k/s here; 500 µs added nothing.
    busy_poll_us: int = 200
    #: Test-only: let webhooks target loopback/private addresses (SSRF rules off).
    webhook_allow_private: bool = False

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.shard_procs <= 32:
            raise ValidationError("shard_procs must be between 1 and 32")
        if self.storage not in ("embedded", "memory"):
            raise ValidationError(f"unknown storage backend: {self.storage!r}")
        if self.fsync not in ("never", "always"):
            raise ValidationError(f"unknown fsync policy: {self.fsync!r}")
        if not 0 <= self.busy_poll_us <= 100_000:
            raise ValidationError("busy_poll_us must be between 0 and 100000")
        for port in (self.tcp_port, self.http_port):
            if not 0 <= port <= 65535:
                raise ValidationError(f"invalid port: {port}")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Environment names of PROTOCOL.md §1.1, then explicit overrides (CLI flags)."""
        values: dict[str, Any] = {}
        if "TCP_PORT" in env:
            values["tcp_port"] = int(env["TCP_PORT"])
        if "HTTP_PORT" in env:
            values["http_port"] = int(env["HTTP_PORT"])
        if env.get("HTTP"):
            values["http"] = env["HTTP"] not in ("0", "false", "no")
        if "AUTH_TOKENS" in env:
            values["auth_tokens"] = parse_tokens(env["AUTH_TOKENS"])
        if env.get("DATA_PATH"):
            values["data_dir"] = env["DATA_PATH"]
        if "UNIX_SOCKET" in env:
            # Upstream binds a fixed path whatever the value; we take a path when given one.
            value = env["UNIX_SOCKET"]
            values["unix_socket"] = value if value.startswith("/") else "/tmp/flashq.sock"
        if env.get("FLASHQ_STORAGE"):
            values["storage"] = env["FLASHQ_STORAGE"]
        if env.get("FLASHQ_FSYNC"):
            values["fsync"] = env["FLASHQ_FSYNC"]
        if env.get("FLASHQ_SHARD_PROCS"):
            values["shard_procs"] = int(env["FLASHQ_SHARD_PROCS"])
        if env.get("FLASHQ_BUSY_POLL_US"):
            values["busy_poll_us"] = int(env["FLASHQ_BUSY_POLL_US"])
        if env.get("CORS_ALLOW_ORIGIN"):
            values["cors_allow_origin"] = env["CORS_ALLOW_ORIGIN"]
        if env.get("DASHBOARD_INTERVAL_MS"):
            values["dashboard_interval_ms"] = int(env["DASHBOARD_INTERVAL_MS"])
        if env.get("FLASHQ_WEBHOOK_ALLOW_PRIVATE"):
            values["webhook_allow_private"] = env["FLASHQ_WEBHOOK_ALLOW_PRIVATE"] == "1"
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        raw = json.loads(text)
        unknown = set(raw) - {a.name for a in attrs.fields(cls)}
        if unknown:
            raise ValidationError(f"unknown settings keys: {sorted(unknown)}")
        raw["auth_tokens"] = tuple(raw.get("auth_tokens", ()))
        return cls(**raw)

    def shard_socket(self, index: int) -> str:
        assert self.run_dir is not None
        return os.path.join(self.run_dir, f"shard-{index}.sock")

    def acceptor_socket(self) -> str:
        """Where the acceptor listens for shard processes' cross-shard messages."""
        assert self.run_dir is not None
        return os.path.join(self.run_dir, "acceptor.sock")


def parse_tokens(value: str) -> tuple[str, ...]:
    """Comma-separated; empty entries dropped; trimmed (upstream forgets to trim)."""
    return tuple(t.strip() for t in value.split(",") if t.strip())
