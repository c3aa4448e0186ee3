"""Command line: run the CoinStats sandbox until SIGINT/SIGTERM.

``python -m airflow_provider_coinstats.sandbox --port 0`` prints exactly one line
``COINSTATS_SANDBOX_URL=http://127.0.0.1:<port>`` to stdout (scripts parse it), then a
human-readable line to stderr, and serves until interrupted (exit status 0).

Example::

    python -m airflow_provider_coinstats.sandbox --port 8765 --sync-polls 0 \\
        --fault '{"kind": "status", "endpoint": "portfolio_coins", "status": 429, "times": 1}'
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_coinstats.sandbox.config import DEFAULT_API_KEY, DEFAULT_CREDITS, SandboxConfig
from airflow_provider_coinstats.sandbox.faults import Fault
from airflow_provider_coinstats.sandbox.server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_coinstats.sandbox",
        description="Run a local CoinStats API sandbox (loopback only).",
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted API key; repeat for several (default {DEFAULT_API_KEY})",
    )
    p.add_argument("--credits", type=int, default=DEFAULT_CREDITS, help="total credits per key")
    p.add_argument("--sync-polls", type=int, default=2, help="polls answered 'syncing'/409 after a sync")
    p.add_argument("--sync-seconds", type=float, default=0.0, help="minimum sync duration ('inf' = never)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every API response")
    p.add_argument("--transactions", type=int, default=57, help="transactions per portfolio")
    p.add_argument("--seed", type=int, default=7, help="seed for fake data and fault rates")
    p.add_argument("--fault", action="append", default=[], metavar="JSON", help="a Fault as JSON; repeatable")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = SandboxConfig(
            api_keys=dict.fromkeys(args.api_keys or [DEFAULT_API_KEY], args.credits),
            sync_polls=args.sync_polls,
            sync_seconds=args.sync_seconds,
            latency=args.latency,
            transactions_per_portfolio=args.transactions,
            seed=args.seed,
        )
        faults = [Fault.from_dict(json.loads(text)) for text in args.fault]
        server = SandboxServer(config, host=args.host, port=args.port)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers go in before the server starts so an early Ctrl-C still exits cleanly.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    for fault in faults:
        server.state.add_fault(fault)
    print(f"COINSTATS_SANDBOX_URL={server.url}", flush=True)
    print(
        f"CoinStats sandbox listening on {server.url} with {len(config.api_keys)} API key(s); "
        "admin API under /_sandbox/. Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    # A timed wait lets us notice if the server thread died instead of waiting forever.
    while not stop.wait(0.5):
        if not server.running:
            print("error: sandbox server stopped unexpectedly", file=sys.stderr)
            return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
