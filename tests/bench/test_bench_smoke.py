"""`make bench-quick`'s flashQ part with tiny counts: the benchmark suite must keep running.

No timing is asserted: this checks that every scenario of both flashQ drivers (SDK and raw
protocol) and the memory/restart measurement run to completion against a real server and
land in the report. Speed itself is measured by `make bench`, never by the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_every_flashq_scenario(tmp_path: Path) -> None:
    argv = [
        sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-setup",
        "--systems", "flashq,flashq-raw", "--scale", "0.01",
        "--results-dir", str(tmp_path), "--out", "smoke",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "smoke.json").read_text())
    runs = {(r["system"], r["scenario"]): r for r in data["runs"]}
    scenarios = data["config"]["scenarios"]
    assert "latency" in scenarios
    assert "large_process" in scenarios
    for scenario in scenarios:
        sdk = runs[("flashq", scenario)]
        assert "error" not in sdk, sdk
        assert sdk["result"]["jobs"] >= 1
    failed = [r for r in runs.values() if r.get("error") and "n/a" not in str(r["error"])]
    assert not failed, failed
    assert data["memory"]["rss_after_restart_kib"] > 0, data["memory"]
    report = (tmp_path / "smoke.md").read_text()
    assert "flashQ" in report
    assert not list((ROOT / "benchmarks" / "results").glob("smoke*"))  # nothing left in the repo
