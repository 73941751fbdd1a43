"""CPU-bound work in a process pool ("sandboxed processor"), with a plain blocking `run()`.

The handler is a sync, top-level (picklable) function; `processes=2` runs it in two worker
processes, so the event loop stays free to pull, ack and heartbeat. `run()` blocks until
SIGINT/SIGTERM; here a background thread stops it once the work is done.

    python examples/08_sandboxed_processes.py
"""

from __future__ import annotations

import threading
import time

from flashq import BlockingClient, ClientOptions, Job, Worker

QUEUE = "example-processes"


def count_primes(job: Job) -> int:
    """Runs in a child process: `job` is an unbound copy (no progress helpers there)."""
    limit = job.data["below"]
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return sum(sieve)


def main() -> None:
    options = ClientOptions.from_env()
    with BlockingClient(options) as client:
        client.obliterate(QUEUE)
        ids = client.push_batch(QUEUE, [{"below": 50_000 * (i + 1)} for i in range(6)])

        worker = Worker(QUEUE, count_primes, options, processes=2, pull_timeout_ms=200)

        def stop_when_done() -> None:
            while client.get_job_counts(QUEUE).completed < len(ids):
                time.sleep(0.05)
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)  # what `kill <pid>` would do

        threading.Thread(target=stop_when_done, daemon=True).start()
        worker.run()  # blocking, until the signal; jobs in flight finish first

        for job_id in ids:
            print("job", job_id, "primes:", client.get_result(job_id))


if __name__ == "__main__":
    main()
