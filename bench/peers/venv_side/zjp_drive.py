"""Producer side of a peer benchmark: ``python zjp_drive.py PEER N_JOBS N_WORKERS [ARG]``.

Imports ``zjp_<peer>`` and calls its ``drive(n_jobs, n_workers, *args)``,
which submits the jobs, collects every result and prints one JSON line.
"""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> None:
    peer, n_jobs, n_workers, *rest = argv
    module = importlib.import_module(f"zjp_{peer}")
    module.drive(int(n_jobs), int(n_workers), *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
