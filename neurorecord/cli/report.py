"""``neurorecord report STORE [--out DIR]``: write a store's HTML report (see docs/report.md).

The command calls :func:`neurorecord.report.write_report`; heavy modules (matplotlib, xarray)
are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_report_parser"]


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    index = write_report(args.store, args.out)
    print(f"wrote the report of {args.store} -> {index}; open it in a browser", file=sys.stderr)
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` command to the ``neurorecord`` parser's sub-commands."""
    p = sub.add_parser("report", help="write the HTML report of a recording store (figures, tables as CSV)")
    p.add_argument("store", help="folder of a complete recording store")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder of the report (default: STORE.report next to the store); replaced if it holds a report")
    p.set_defaults(func=_cmd_report)
