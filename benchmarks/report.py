"""Turn the raw runs of a benchmark into medians, ratios, the issue's targets and Markdown."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from machine import one_line
from systems import SCENARIOS, SYSTEMS

PYTHON_PEERS = ("celery", "rq", "arq", "dramatiq", "saq", "taskiq")
GIB_KIB = 1024 * 1024


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{scenario: {system: {rate|p50_ms|p99_ms: stats, unsupported, errors}}}."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        cell = out.setdefault(run["scenario"], {}).setdefault(
            run["system"], {"rate": [], "p50_ms": [], "p99_ms": [], "errors": [], "server_cpu": []}
        )
        result = run.get("result") or {}
        if run.get("error"):
            cell["errors"].append(run["error"])
        elif "unsupported" in result:
            cell["unsupported"] = result["unsupported"]
        else:
            for key in ("rate", "p50_ms", "p99_ms"):
                if key in result:
                    cell[key].append(result[key])
            if "note" in result:
                cell["note"] = result["note"]
            if result.get("server_cpu_s") and result.get("seconds"):
                cell["server_cpu"].append({
                    "cpu_s": result["server_cpu_s"],
                    "wall_s": result["seconds"],
                    "client_share": result.get("client_cpu_s", 0.0) / result["seconds"],
                })  # fmt: skip
    for systems in out.values():
        for cell in systems.values():
            for key in ("rate", "p50_ms", "p99_ms"):
                cell[key] = _stats(cell[key])
    return out


def _median(summary: dict[str, Any], scenario: str, system: str, key: str) -> float | None:
    stats = summary.get(scenario, {}).get(system, {}).get(key)
    return None if stats is None else float(stats["median"])


def _fmt_rate(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1000:,.1f}k" if value >= 1000 else f"{value:,.0f}"


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _cell(summary: dict[str, Any], scenario: str, system: str) -> str:
    cell = summary.get(scenario, {}).get(system)
    if cell is None:
        return "—"
    if "unsupported" in cell:
        return "n/a"
    if cell["errors"] and cell["rate"] is None and cell["p99_ms"] is None:
        return "error"
    if SCENARIOS[scenario].kind == "latency":
        p50, p99 = cell["p50_ms"], cell["p99_ms"]
        return "error" if p99 is None else f"{p50['median']:.2f} / {p99['median']:.2f}"
    return _fmt_rate(cell["rate"]["median"])


def ratio(summary: dict[str, Any], scenario: str, system: str) -> float | None:
    """flashQ / system: jobs/s for throughput (> 1: flashQ faster), p99 for latency (< 1: lower)."""
    key = "p99_ms" if SCENARIOS[scenario].kind == "latency" else "rate"
    ours, theirs = (
        _median(summary, scenario, "flashq", key),
        _median(summary, scenario, system, key),
    )
    if ours is None or not theirs:
        return None
    return ours / theirs


def targets(
    summary: dict[str, Any], memory: dict[str, Any] | None
) -> list[tuple[str, str, bool | None]]:
    """The issue's targets: (target, measured, met?) — None when not measured in this run."""
    rows: list[tuple[str, str, bool | None]] = []

    def at_least(name: str, value: float | None, floor: float, shown: str) -> None:
        rows.append(
            (
                name,
                shown if value is not None else "not measured",
                None if value is None else value >= floor,
            )
        )

    def times(scenario: str, peer: str, floor: float) -> None:
        r = ratio(summary, scenario, peer)
        label = f"{SCENARIOS[scenario].title}: ≥ {floor:g}x {SYSTEMS[peer].label}"
        at_least(label, r, floor, _fmt_ratio(r))

    bulk = _median(summary, "bulk", "flashq", "rate")
    at_least("bulk push ≥ 250,000 jobs/s", bulk, 250_000, f"{_fmt_rate(bulk)} jobs/s")
    times("bulk", "bullmq", 7)
    proc = _median(summary, "process", "flashq", "rate")
    at_least("processing ≥ 60,000 jobs/s", proc, 60_000, f"{_fmt_rate(proc)} jobs/s")
    times("process", "bullmq", 5)
    for peer in PYTHON_PEERS:
        if peer in summary.get("process", {}):
            times("process", peer, 10)
    pipe = _median(summary, "pipelined", "flashq", "rate")
    at_least("pipelined push ≥ 100,000 jobs/s", pipe, 100_000, f"{_fmt_rate(pipe)} jobs/s")
    times("single", "bullmq", 1)
    r = ratio(summary, "latency", "bullmq")
    rows.append((
        "latency p99 at 500 jobs/s ≤ BullMQ's",
        "not measured" if r is None else f"flashQ/BullMQ p99 = {r:.2f}",
        None if r is None else r <= 1,
    ))  # fmt: skip
    if memory and memory.get("jobs") == 1_000_000:
        rss = memory["rss_kib"] / GIB_KIB
        rows.append(
            ("1M waiting jobs ≤ 1 GiB RSS (all flashQ processes)", f"{rss:.2f} GiB", rss <= 1)
        )
        rows.append(
            (
                "restart with 1M jobs ≤ 20 s",
                f"{memory['restart_s']:.1f} s",
                memory["restart_s"] <= 20,
            )
        )
    else:
        rows.append(("memory and restart with 1M waiting jobs", "full run only", None))
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(data: dict[str, Any]) -> str:
    summary, config = data["summary"], data["config"]
    systems = [s for s in config["systems"] if any(s in summary.get(sc, {}) for sc in summary)]
    scenarios = [s for s in config["scenarios"] if s in summary]
    lines = [
        f"# flashQ benchmark — {config['mode']} run, {data['started']}",
        "",
        f"Machine: {one_line(data['machine'])}.",
        f"Load average at start {_loads(data['machine']['load_average'])}, "
        f"at end {_loads(data.get('load_average_end'))}. flashQ {data['machine']['flashq_commit']}"
        f"{' (uncommitted changes)' if data['machine']['flashq_dirty'] else ''}, "
        f"`flashq serve` defaults (embedded storage, fsync never, {config['shard_procs']}).",
        f"{_rounds(data)}, systems interleaved; medians (min-max in the detail).",
        "",
        "## Jobs/s (latency: p50 / p99 ms)",
        "",
    ]
    header = ["system", *(_short(s, config) for s in scenarios)]
    rows = [
        [SYSTEMS[sys_].label, *(_cell(summary, sc, sys_) for sc in scenarios)] for sys_ in systems
    ]
    lines += _table(header, rows)
    lines += [
        "",
        "## flashQ / system",
        "",
        "Throughput: > 1 means flashQ is faster. Latency (p99): < 1 means flashQ's is lower.",
        "",
    ]
    rows = [
        [SYSTEMS[s].label, *(_fmt_ratio(ratio(summary, sc, s)) for sc in scenarios)]
        for s in systems
        if s != "flashq"
    ]
    lines += _table(["system", *(_short(s, config) for s in scenarios)], rows)
    lines += ["", "## Targets (issue)", ""]
    mark = {True: "met", False: "**missed**", None: "—"}
    lines += _table(
        ["target", "measured", ""],
        [[t, m, mark[ok]] for t, m, ok in targets(summary, data.get("memory"))],
    )
    lines += [
        "",
        *_memory_section(data.get("memory")),
        *_detail(summary, scenarios, systems, config),
    ]
    lines += _server_cpu(summary, scenarios)
    return "\n".join(lines) + "\n"


def _rounds(data: dict[str, Any]) -> str:
    planned = data["config"]["rounds"]
    done = len({run["round"] for run in data.get("runs", ())})
    if done < planned:
        return f"{done} of {planned} planned rounds (interrupted)"
    return f"{done} round(s)"


def _loads(loads: Any) -> str:
    return "?" if not loads else " ".join(f"{x:.2f}" for x in loads)


def _short(scenario: str, config: dict[str, Any]) -> str:
    return f"{scenario} ({config['jobs'][scenario]:,})"


def _memory_section(memory: dict[str, Any] | None) -> list[str]:
    if not memory:
        return []
    if "error" in memory:
        return ["## Memory and restart", "", f"error: {memory['error']}", ""]
    return [
        "## Memory and restart (flashQ)",
        "",
        f'{memory["jobs"]:,} waiting jobs (`{{"i": n}}`), '
        f"pushed with PUSHB in {memory['fill_s']:.1f} s. "
        f"RSS of all flashQ processes: {memory['rss_kib'] / 1024:,.0f} MiB "
        f"(PSS {memory['pss_kib'] / 1024:,.0f} MiB; "
        f"idle server before the push {memory['idle_rss_kib'] / 1024:,.0f} MiB); "
        f"data directory {memory['disk_mib']:,.0f} MiB. Graceful stop {memory['stop_s']:.1f} s; "
        f"restart until all {memory['jobs']:,} jobs are served again: {memory['restart_s']:.1f} s "
        f"(RSS after restart {memory['rss_after_restart_kib'] / 1024:,.0f} MiB).",
        "",
        "| process | RSS MiB | PSS MiB |",
        "|---|---|---|",
        *(
            f"| {name} | {m['rss_kib'] / 1024:,.0f} | {m['pss_kib'] / 1024:,.0f} |"
            for name, m in sorted(memory["processes"].items())
        ),
        "",
    ]


def _detail(
    summary: dict[str, Any], scenarios: list[str], systems: list[str], config: dict[str, Any]
) -> list[str]:
    lines = ["## Detail", ""]
    for scenario in scenarios:
        spec = SCENARIOS[scenario]
        lines += [f"### {spec.title} ({config['jobs'][scenario]:,} jobs)", ""]
        latency = spec.kind == "latency"
        header = (
            ["system", "p50 ms", "p99 ms (min-max)", "flashQ/system p99"]
            if latency
            else [
                "system",
                "jobs/s",
                "min-max",
                "flashQ/system",
            ]
        )
        rows = []
        for system in systems:
            cell = summary[scenario].get(system)
            if cell is None:
                continue
            label = SYSTEMS[system].label
            if "unsupported" in cell:
                rows.append([label, "n/a", cell["unsupported"], ""])
                continue
            stats = cell["p99_ms"] if latency else cell["rate"]
            if stats is None:
                rows.append([label, "error", "; ".join(cell["errors"])[:120], ""])
                continue
            spread = (
                f"{stats['min']:,.2f}-{stats['max']:,.2f}"
                if latency
                else f"{_fmt_rate(stats['min'])}-{_fmt_rate(stats['max'])}"
            )
            first = f"{cell['p50_ms']['median']:.2f}" if latency else _fmt_rate(stats["median"])
            note = f" ({cell['note']})" if cell.get("note") else ""
            second = f"{stats['median']:.2f} ({spread})" if latency else spread + note
            rows.append([label, first, second, _fmt_ratio(ratio(summary, scenario, system))])
        lines += [*_table(header, rows), ""]
    return lines


def _server_cpu(summary: dict[str, Any], scenarios: list[str]) -> list[str]:
    """flashQ's CPU seconds per process role during each scenario (median over rounds)."""
    rows = []
    for scenario in scenarios:
        cell = summary[scenario].get("flashq")
        if not cell or not cell["server_cpu"]:
            continue
        roles = sorted({r for sample in cell["server_cpu"] for r in sample["cpu_s"]})
        parts = []
        for r in roles:
            share = statistics.median(
                s["cpu_s"].get(r, 0) / s["wall_s"] for s in cell["server_cpu"] if s["wall_s"]
            )
            parts.append(f"{r} {share:.0%}")
        client = statistics.median(s.get("client_share", 0) for s in cell["server_cpu"])
        rows.append([scenario, ", ".join(parts), f"{client:.0%}"])
    if not rows:
        return []
    return [
        "## flashQ CPU by process (share of one core over the run's wall time, median)",
        "",
        *_table(["scenario", "server processes", "client (driver)"], rows),
        "",
    ]


def main(argv: list[str]) -> int:
    """Re-render a run's Markdown from its JSON: `python benchmarks/report.py results/x.json`."""
    import json
    from pathlib import Path

    source = Path(argv[0])
    data = json.loads(source.read_text())
    data["summary"] = summarize(data["runs"])
    source.with_suffix(".md").write_text(markdown(data))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
