"""Bar chart of a benchmark run (runs in the tools environment, which has matplotlib).

.peers/tools/bin/python chart.py results/latest.json results/latest.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

THROUGHPUT = ("single", "pipelined", "bulk", "process", "large_push", "large_process")
LABELS = {
    "flashq": "flashQ", "flashq-raw": "flashQ raw protocol", "bullmq": "BullMQ", "celery": "Celery",
    "rq": "RQ", "arq": "arq", "dramatiq": "dramatiq", "saq": "saq", "taskiq": "taskiq",
    "redis": "raw Redis (ceiling)",
}  # fmt: skip


def median(summary: dict[str, Any], scenario: str, system: str, key: str) -> float:
    stats = summary.get(scenario, {}).get(system, {}).get(key)
    return float(stats["median"]) if stats else 0.0


def main(source: str, target: str) -> int:
    data = json.loads(Path(source).read_text())
    summary, config, mach = data["summary"], data["config"], data["machine"]
    rounds = len({run["round"] for run in data.get("runs", ())})
    systems = [s for s in config["systems"] if any(s in summary.get(sc, {}) for sc in summary)]
    scenarios = [s for s in THROUGHPUT if s in summary]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 9), gridspec_kw={"height_ratios": [3, 2]})
    width = 0.8 / max(1, len(systems))
    colors = plt.get_cmap("tab10")
    for n, system in enumerate(systems):
        xs = [i + (n - len(systems) / 2 + 0.5) * width for i in range(len(scenarios))]
        ys = [median(summary, sc, system, "rate") for sc in scenarios]
        top.bar(xs, ys, width, label=LABELS.get(system, system), color=colors(n % 10))
    top.set_yscale("log")
    top.set_ylabel("jobs/s (log scale, median)")
    top.set_xticks(range(len(scenarios)))
    top.set_xticklabels([f"{s}\n({config['jobs'][s]:,})" for s in scenarios])
    top.legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.2))
    top.grid(axis="y", which="both", alpha=0.3)
    lat_systems = [s for s in systems if median(summary, "latency", s, "p99_ms")]
    xs = range(len(lat_systems))
    bottom.bar(
        [x - 0.2 for x in xs],
        [median(summary, "latency", s, "p50_ms") for s in lat_systems],
        0.4,
        label="p50",
    )
    bottom.bar(
        [x + 0.2 for x in xs],
        [median(summary, "latency", s, "p99_ms") for s in lat_systems],
        0.4,
        label="p99",
    )
    bottom.set_yscale("log")
    bottom.set_ylabel("ms, push -> handler start (log)")
    bottom.set_title("latency at a steady 500 jobs/s (lower is better)", fontsize=10)
    bottom.set_xticks(list(xs))
    bottom.set_xticklabels([LABELS.get(s, s) for s in lat_systems], fontsize=8)
    bottom.legend(fontsize=8)
    bottom.grid(axis="y", which="both", alpha=0.3)
    fig.suptitle(
        f"flashQ vs peers — {config['mode']} run, {rounds} of {config['rounds']} round(s), "
        f"{data['started']}\n"
        f"{mach['cpu']}, {mach['cores']} cores, {mach['ram_gib']} GiB, Linux {mach['kernel']}, "
        f"Python {mach['python']}, Redis {mach['redis']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
