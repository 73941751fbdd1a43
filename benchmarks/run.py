"""flashQ side by side with its peers: every scenario, every system, interleaved, repeated.

    .venv/bin/python benchmarks/run.py            # full: 3 rounds, every peer (make bench)
    .venv/bin/python benchmarks/run.py --quick    # 1 round, fewer jobs, flashQ/BullMQ/Redis
    .venv/bin/python benchmarks/run.py --systems flashq,bullmq --scenarios bulk --profile

Runs in the project's environment and never imports a peer: each measurement is a driver
subprocess (benchmarks/flashq_driver.py, benchmarks/peers/*) in that system's own environment,
printing one JSON line. flashQ is `flashq serve` with its defaults in a fresh data directory;
peers use the local Redis, each in its own database. Writes results/latest.{json,md,png}
(quick runs: results/quick.*). See benchmarks/README.md for what each scenario means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import machine
import profiling
import report
from flashq_server import FlashQServer, find_pid, request, role
from systems import (
    FULL_JOBS,
    FULL_MEMORY_JOBS,
    FULL_SYSTEMS,
    HERE,
    PEERS,
    QUICK_JOBS,
    QUICK_MEMORY_JOBS,
    QUICK_SYSTEMS,
    SCENARIOS,
    SYSTEMS,
    System,
)

logger = logging.getLogger("bench")
RESULTS = HERE / "results"
PROFILED_SCENARIOS = ("bulk", "process", "pipelined", "single")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round, fewer jobs, 3 systems (<3 min)"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--systems", help=f"comma-separated, from {','.join(SYSTEMS)}")
    parser.add_argument("--scenarios", help=f"comma-separated, from {','.join(SCENARIOS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every job count")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1M-jobs memory scenario")
    parser.add_argument("--no-setup", action="store_true", help="do not run setup_peers.sh")
    parser.add_argument("--profile", action="store_true", help="py-spy the flashQ server processes")
    parser.add_argument("--out", help="output name under results/ (default latest / quick)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="where to write (default results/)"
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    systems = (
        args.systems.split(",")
        if args.systems
        else list(QUICK_SYSTEMS if args.quick else FULL_SYSTEMS)
    )
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    for name in systems:
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    for name in scenarios:
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    base = QUICK_JOBS if args.quick else FULL_JOBS
    jobs = {k: max(1, int(v * args.scale)) for k, v in base.items()}
    return {
        "mode": "quick" if args.quick else "full",
        "rounds": args.rounds or (1 if args.quick else 3),
        "systems": systems,
        "scenarios": scenarios,
        "jobs": jobs,
        "memory_jobs": None
        if args.no_memory
        else int((QUICK_MEMORY_JOBS if args.quick else FULL_MEMORY_JOBS) * args.scale),
        "run_timeout_s": 240 if args.quick else 1200,
        "shard_procs": f"{os.cpu_count()} shard processes",
    }


def setup(systems: list[str]) -> None:
    targets = sorted({t for s in systems if (t := SYSTEMS[s].setup)} | {"tools"})
    logger.info("setting up peers: %s", " ".join(targets))
    subprocess.run([str(HERE / "setup_peers.sh"), *targets], check=True)


class Runner:
    """Runs driver subprocesses and keeps every raw result."""

    def __init__(
        self, config: dict[str, Any], server: FlashQServer, profile_dir: Path | None
    ) -> None:
        self.config = config
        self.server = server
        self.profile_dir = profile_dir
        self.runs: list[dict[str, Any]] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.profile_seconds: dict[str, float] = {}
        self.redis_pid = find_pid("redis-server")

    def _env(self, system: System) -> dict[str, str]:
        env = dict(os.environ)
        if system.redis_db is None:
            pids = [f"{pid}:{role}" for pid, role in self._server_roles().items()]
        else:
            pids = [f"{self.redis_pid}:redis"] if self.redis_pid else []
        env["BENCH_SERVER_PIDS"] = ",".join(pids)
        return env

    def _server_roles(self) -> dict[str, str]:
        return {str(pid): role(pid) for pid in self.server.pids}

    def run(self, round_no: int, system: System, scenario: str) -> dict[str, Any]:
        jobs = self.config["jobs"][scenario]
        argv = system.argv(
            scenario, jobs, self.server.port, ("--queue", f"bench-{scenario}-{round_no}")
        )
        record: dict[str, Any] = {"round": round_no, "system": system.key, "scenario": scenario}
        profile = (
            self.profile_dir is not None
            and system.key in ("flashq", "flashq-raw")
            and scenario in PROFILED_SCENARIOS
            and round_no == 0
        )
        began = time.perf_counter()
        try:
            stdout, stderr = self._execute(argv, self._env(system), scenario if profile else None)
            line = next((x for x in reversed(stdout.splitlines()) if x.startswith("{")), None)
            if line is None:
                record["error"] = "no result line: " + " | ".join(stderr.strip().splitlines()[-3:])
                record["stderr"] = stderr[-3000:]
            else:
                record["result"] = json.loads(line)
        except subprocess.TimeoutExpired:
            record["error"] = f"timed out after {self.config['run_timeout_s']} s"
        record["wall_s"] = time.perf_counter() - began
        self.runs.append(record)
        logger.info("round %d %-14s %-14s %s", round_no + 1, scenario, system.key, _brief(record))
        return record

    def _execute(
        self, argv: list[str], env: dict[str, str], profile_tag: str | None
    ) -> tuple[str, str]:
        if profile_tag is None:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=self.config["run_timeout_s"]
            )
            return done.stdout, done.stderr
        env["BENCH_ANNOUNCE"] = "1"
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        recorders: list[profiling.Recorder] = []
        err_lines: list[str] = []
        started: list[float] = []

        def watch_stderr() -> None:
            assert proc.stderr is not None
            for text in proc.stderr:
                if text.strip() == "bench:measuring" and not recorders:
                    roles = self._server_roles().items()
                    pids = {int(p): r for p, r in roles if r.startswith(("acceptor", "shard"))}
                    assert self.profile_dir is not None
                    recorders.append(profiling.Recorder(pids, self.profile_dir, profile_tag))
                    started.append(time.perf_counter())
                err_lines.append(text)

        reader = threading.Thread(target=watch_stderr, daemon=True)
        reader.start()
        # Not communicate(): it would read stderr too, racing the watcher for the marker.
        deadline = threading.Timer(self.config["run_timeout_s"], proc.kill)
        deadline.start()
        try:
            assert proc.stdout is not None
            stdout = proc.stdout.read()
            proc.wait()
        finally:
            deadline.cancel()
            if proc.poll() is None:
                proc.kill()
            reader.join(5)
            ended = time.perf_counter()
            for recorder in recorders:
                files = recorder.stop()
                self.profiles[profile_tag] = {
                    r: profiling.reduce_stacks(p) for r, p in files.items()
                }
                self.profile_seconds[profile_tag] = ended - started[0]
        return stdout, "".join(err_lines)


def _brief(record: dict[str, Any]) -> str:
    if "error" in record:
        return "ERROR " + record["error"][:200]
    result = record["result"]
    if "unsupported" in result:
        return "n/a: " + result["unsupported"]
    if "p99_ms" in result:
        return f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
    return f"{result.get('rate', 0):>12,.0f} jobs/s"


def measure_memory(config: dict[str, Any], work: Path) -> dict[str, Any]:
    """RSS of all flashQ processes holding N waiting jobs, then the restart time to serve them."""
    jobs = config["memory_jobs"]
    server = FlashQServer(work / "memory-data", log=work / "memory.log")
    server.start()
    try:
        idle = server.memory()
        argv = SYSTEMS["flashq"].argv("bulk", jobs, server.port, ("--queue", "memory", "--keep"))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if done.returncode or not done.stdout.strip():
            raise RuntimeError("fill failed: " + done.stderr.strip()[-300:])
        fill = json.loads(done.stdout.strip().splitlines()[-1])
        time.sleep(2.0)  # let group commits and allocator settle
        mem = server.memory()
        stop_s = server.stop()
        disk = sum(p.stat().st_size for p in server.data_dir.rglob("*") if p.is_file())
        begin = time.perf_counter()
        server.start(timeout_s=300)
        while True:
            reply = request(server.port, {"cmd": "COUNT", "queue": "memory"}, timeout_s=30)
            if reply.get("ok") and reply.get("count") == jobs:
                break
            if time.perf_counter() - begin > 300:
                raise TimeoutError(f"after restart COUNT is {reply}")
            time.sleep(0.02)
        restart_s = time.perf_counter() - begin
        after = server.memory()
        return {
            "jobs": jobs,
            "fill_s": fill["seconds"],
            "idle_rss_kib": idle["rss_kib"],
            "rss_kib": mem["rss_kib"],
            "pss_kib": mem["pss_kib"],
            "processes": mem["processes"],
            "stop_s": stop_s,
            "disk_mib": disk / 1024 / 1024,
            "restart_s": restart_s,
            "rss_after_restart_kib": after["rss_kib"],
        }
    finally:
        server.stop()


def write_outputs(
    data: dict[str, Any],
    out: Path,
    name: str,
    profiles: dict[str, Any],
    seconds: dict[str, float],
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    text = report.markdown(data)
    (out / f"{name}.md").write_text(text)
    if profiles:
        (out / f"{name}-profile.md").write_text(profiling.markdown(profiles, seconds))
    python = PEERS / "tools" / "bin" / "python"
    if python.exists():
        argv = [str(python), str(HERE / "chart.py"), str(out / f"{name}.json")]
        chart = subprocess.run(
            [*argv, str(out / f"{name}.png")], capture_output=True, text=True, check=False
        )
        if chart.returncode:
            logger.warning("chart failed: %s", chart.stderr.strip()[-500:])
    return out / f"{name}.md"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    config = build_config(args)
    if not args.no_setup:
        setup(config["systems"])
    if machine.redis_version() == "unreachable":
        dropped = [s for s in config["systems"] if SYSTEMS[s].redis_db is not None]
        if dropped:
            logger.warning("no Redis on 127.0.0.1:6379: skipping %s", ", ".join(dropped))
            config["systems"] = [s for s in config["systems"] if s not in dropped]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    data: dict[str, Any] = {"started": started, "config": config, "machine": machine.describe()}
    logger.info("machine: %s", machine.one_line(data["machine"]))
    work = Path(tempfile.mkdtemp(prefix="flashq-bench-"))
    name = args.out or ("quick" if args.quick else "latest")
    server = FlashQServer(work / "data", log=work / "server.log")
    out = args.results_dir
    runner = Runner(config, server, out / f"{name}-profile" if args.profile else None)

    def save() -> Path:
        data["runs"] = runner.runs
        data["summary"] = report.summarize(runner.runs)
        data["load_average_end"] = os.getloadavg()
        return write_outputs(data, out, name, runner.profiles, runner.profile_seconds)

    try:
        if config["memory_jobs"] and "flashq" in config["systems"]:
            logger.info("memory: %s waiting jobs", f"{config['memory_jobs']:,}")
            try:
                data["memory"] = measure_memory(config, work)
            except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
                data["memory"] = {"error": str(exc)}
            logger.info("memory: %s", {k: v for k, v in data["memory"].items() if k != "processes"})
        server.start()
        systems = [SYSTEMS[s] for s in config["systems"]]
        for round_no in range(config["rounds"]):
            shift = round_no % len(systems)
            order = systems[shift:] + systems[:shift]  # nobody always runs first
            for scenario in config["scenarios"]:
                for system in order:
                    runner.run(round_no, system, scenario)
            save()  # a long run interrupted later still leaves its finished rounds
    finally:
        server.stop()
        path = save()
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.write(
        "\n" + path.read_text().split("\n## Detail", 1)[0] + f"\nFull report: {path}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
