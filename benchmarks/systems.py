"""What is measured: the systems (how to run each one's driver) and the scenarios (sizes)."""

from __future__ import annotations

from pathlib import Path

import attrs

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
PROJECT_PYTHON = HERE.parent / ".venv" / "bin" / "python"
REDIS_URL = "redis://127.0.0.1:6379/{db}"


@attrs.frozen
class System:
    """One row of the tables: a queue system and the command that runs its driver."""

    key: str
    label: str
    command: tuple[str, ...]
    setup: str | None = None  # target of setup_peers.sh
    redis_db: int | None = None  # its own Redis database, flushed by its driver only
    variant: str = ""

    def argv(self, scenario: str, jobs: int, flashq_port: int, extra: tuple[str, ...]) -> list[str]:
        url = (
            f"127.0.0.1:{flashq_port}"
            if self.redis_db is None
            else REDIS_URL.format(db=self.redis_db)
        )
        argv = [*self.command, "--scenario", scenario, "--jobs", str(jobs), "--url", url, *extra]
        return [*argv, "--variant", self.variant] if self.variant else argv


def _py(env: str, script: str) -> tuple[str, ...]:
    return (str(PEERS / env / "bin" / "python"), str(HERE / "peers" / script))


# Redis databases 8-15: away from the low numbers other tools default to.
SYSTEMS: dict[str, System] = {
    s.key: s
    for s in (
        System("flashq", "flashQ", (str(PROJECT_PYTHON), str(HERE / "flashq_driver.py"))),
        System(
            "flashq-raw",
            "flashQ raw protocol",
            (str(PROJECT_PYTHON), str(HERE / "flashq_driver.py")),
            variant="raw",
        ),
        System("bullmq", "BullMQ", ("node", str(HERE / "peers" / "bullmq.js")), "node", 8),
        System("celery", "Celery", _py("celery", "celery_peer.py"), "celery", 9),
        System("rq", "RQ", _py("rq", "rq_peer.py"), "rq", 10),
        System("arq", "arq", _py("arq", "arq_peer.py"), "arq", 11),
        System("dramatiq", "dramatiq", _py("dramatiq", "dramatiq_peer.py"), "dramatiq", 12),
        System("saq", "saq", _py("saq", "saq_peer.py"), "saq", 13),
        System("taskiq", "taskiq", _py("taskiq", "taskiq_peer.py"), "taskiq", 14),
        System("redis", "raw Redis (ceiling)", _py("tools", "redis_raw.py"), "tools", 15),
    )
}
FULL_SYSTEMS = tuple(SYSTEMS)
QUICK_SYSTEMS = ("flashq", "flashq-raw", "bullmq", "redis")


@attrs.frozen
class Scenario:
    key: str
    title: str
    kind: str  # "throughput" (jobs/s, higher is better) or "latency" (ms, lower is better)


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("single", "single push, one at a time", "throughput"),
        Scenario("pipelined", "pipelined push, 1,000 in flight", "throughput"),
        Scenario("bulk", "bulk push, batches of 1,000", "throughput"),
        Scenario("process", "processing no-op jobs, concurrency 10", "throughput"),
        Scenario("latency", "push -> handler start at 500 jobs/s", "latency"),
        Scenario("large_push", "10 KB jobs, bulk push", "throughput"),
        Scenario("large_process", "10 KB jobs, processing", "throughput"),
    )
}

FULL_JOBS = {
    "single": 10_000,
    "pipelined": 100_000,
    "bulk": 100_000,
    "process": 50_000,
    "latency": 5_000,  # 10 s at 500 jobs/s
    "large_push": 20_000,  # 200 MB of payload per run
    "large_process": 20_000,
}
QUICK_JOBS = {
    "single": 2_000,
    "pipelined": 20_000,
    "bulk": 20_000,
    "process": 10_000,
    "latency": 1_000,
    "large_push": 2_000,
    "large_process": 2_000,
}
FULL_MEMORY_JOBS = 1_000_000
QUICK_MEMORY_JOBS = 100_000
