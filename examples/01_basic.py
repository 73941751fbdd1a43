"""Push a job, take it, finish it, read its result: the blocking client, no event loop.

python examples/01_basic.py      # server at FLASHQ_HOST:FLASHQ_PORT (127.0.0.1:6789)
"""

from __future__ import annotations

from flashq import BlockingClient, ClientOptions

QUEUE = "example-basic"


def main() -> None:
    with BlockingClient(ClientOptions.from_env()) as client:
        client.obliterate(QUEUE)  # start clean, so the example can be rerun

        job_id = client.push(QUEUE, {"to": "ada@example.com", "subject": "hello"})
        print("pushed job", job_id, "state:", client.get_state(job_id).value)

        job = client.pull(QUEUE, timeout=1000)  # the job is now active, held by us
        assert job is not None
        print("working on", job.id, job.data)
        job.update_progress(50, "rendering")  # blocking client: no await needed
        client.ack(job.id, {"sent": True})

        print("state:", client.get_state(job_id).value, "result:", client.get_result(job_id))
        print("counts:", client.get_job_counts(QUEUE))


if __name__ == "__main__":
    main()
