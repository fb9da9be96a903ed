"""``python -m bench.peers [--n N] [--workers W] [--json] [PEER ...]``."""

from __future__ import annotations

import argparse
import json

from bench.peers import PEERS, run_peers


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the no-op job on other job queues.")
    parser.add_argument(
        "peers", nargs="*", metavar="PEER", help=f"peers to run (default: {', '.join(PEERS)})"
    )
    parser.add_argument("--n", type=int, default=2000, help="jobs per peer")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per peer")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    return parser.parse_args()


def _line(record: dict) -> str:
    if "skipped" in record:
        return f"{record['name']:>10}: skipped: {record['skipped']}"
    return (
        f"{record['name']:>10}: {record['jobs']} jobs in {record['seconds']:.3f} s, "
        f"{record['jobs_per_s']:,.0f} jobs/s ({record['note']})"
    )


def main() -> None:
    args = _parse_args()
    for record in run_peers(args.n, args.workers, args.peers or None):
        print(json.dumps(record) if args.json else _line(record), flush=True)


if __name__ == "__main__":
    main()
