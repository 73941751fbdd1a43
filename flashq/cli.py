"""The `flashq` command line: `serve` for operators, a few client verbs for people at a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from flashq.config import Settings


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server (supervisor, acceptor, coordinator, shards)")
    p.add_argument("--host", default=None, help="TCP bind address (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=None, help="TCP port (env TCP_PORT, default 6789)")
    p.add_argument("--unix-socket", default=None, metavar="PATH", help="also listen on PATH")
    p.add_argument("--http", action="store_true", default=None, help="enable the HTTP API")
    p.add_argument("--http-port", type=int, default=None, help="env HTTP_PORT, default 6790")
    p.add_argument("--shards-procs", type=int, default=None, help="shard processes (default: CPUs)")
    p.add_argument(
        "--storage", choices=["embedded", "memory"], default=None, help="default embedded"
    )
    p.add_argument("--data-dir", default=None, help="env DATA_PATH, default ./flashq-data")
    p.add_argument(
        "--fsync",
        choices=["never", "always"],
        default=None,
        help="never: survive process crashes (default); always: also power loss",
    )
    p.add_argument(
        "--busy-poll-us",
        type=int,
        default=None,
        help="keep polling this long after a write before sleeping (default 200; 0 = off)",
    )
    p.add_argument("--log-level", default=None)


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("TCP_PORT", "6789")))
    p.add_argument("--token", default=os.environ.get("FLASHQ_TOKEN"), help="AUTH token")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashq", description="flashQ job queue")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    p = sub.add_parser("push", help="push one job: flashq push QUEUE '{\"json\": 1}'")
    p.add_argument("queue")
    p.add_argument("data", help="job data as JSON")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--delay", type=int, default=None, help="ms")
    _client_args(p)
    p = sub.add_parser("pull", help="pull one job from QUEUE and print it")
    p.add_argument("queue")
    p.add_argument("--timeout", type=int, default=5000, help="ms to wait for a job")
    p.add_argument("--ack", action="store_true", help="acknowledge the job after printing it")
    _client_args(p)
    p = sub.add_parser("ack", help="acknowledge job ID")
    p.add_argument("id", type=int)
    p.add_argument("--result", default=None, help="result as JSON")
    _client_args(p)
    p = sub.add_parser("job", help="show job ID and its state")
    p.add_argument("id", type=int)
    _client_args(p)
    p = sub.add_parser("stats", help="global counters and per-queue counts")
    _client_args(p)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from flashq.errors import ValidationError
    from flashq.procsetup import set_title, setup_logging
    from flashq.server import supervisor

    try:
        settings = Settings.from_env(
            os.environ,
            host=args.host,
            tcp_port=args.port,
            unix_socket=args.unix_socket,
            http=args.http,
            http_port=args.http_port,
            shard_procs=args.shards_procs,
            storage=args.storage,
            data_dir=args.data_dir,
            fsync=args.fsync,
            busy_poll_us=args.busy_poll_us,
            log_level=args.log_level,
        )
    except (ValidationError, ValueError) as exc:  # ValueError: a non-numeric env value
        print(f"flashq serve: error: {exc}", file=sys.stderr)
        return 2
    setup_logging("supervisor", settings.log_level)
    set_title("flashq: supervisor")
    return supervisor.run(settings)


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def _client_command(args: argparse.Namespace) -> int:
    from flashq.client.blocking import BlockingClient
    from flashq.errors import FlashQError

    try:
        with BlockingClient(args.host, args.port, token=args.token) as client:
            if args.command == "push":
                fields: dict[str, Any] = {"priority": args.priority}
                if args.delay is not None:
                    fields["delay"] = args.delay
                reply = client.call("PUSH", queue=args.queue, data=json.loads(args.data), **fields)
                print(reply["id"])
            elif args.command == "pull":
                reply = client.call("PULL", queue=args.queue, timeout=args.timeout)
                if reply["job"] is None:
                    print("no job", file=sys.stderr)
                    return 1
                _print(reply["job"])
                if args.ack:
                    client.call("ACK", id=reply["job"]["id"])
            elif args.command == "ack":
                result = None if args.result is None else json.loads(args.result)
                client.call("ACK", id=args.id, result=result)
            elif args.command == "job":
                _print(client.call("GETJOB", id=args.id))
            elif args.command == "stats":
                reply = client.call("STATS")
                reply.pop("ok", None)
                _print(reply)
    except json.JSONDecodeError as exc:
        print(f"error: invalid JSON: {exc}", file=sys.stderr)
        return 2
    except (FlashQError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _client_command(args)


if __name__ == "__main__":
    sys.exit(main())
