"""The ``neurorecord`` command: a thin layer over the Python API.

Errors caused by the user's input print ``error: ...`` on stderr and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import NeurorecordError

__all__ = ["main"]


def _cmd_run(args: argparse.Namespace) -> int:
    from ..record import run

    run(args.protocol, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device, quiet=args.quiet)
    if not args.quiet:
        print(f"recorded {args.protocol} -> {args.out} (complete); inspect it with `neurorecord info {args.out}`", file=sys.stderr)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..record import prepare

    print(prepare(args.protocol, args.device).summary())
    print("protocol is valid")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .info import describe_store

    print(describe_store(args.store))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="neurorecord", description="In-silico electrophysiology of PyTorch networks.")
    parser.add_argument("--version", action="version", version=f"neurorecord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="record a protocol into a zarr store")
    p.add_argument("protocol", help="protocol file (.yaml)")
    p.add_argument("--out", required=True, help="folder of the recording store")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="finish an interrupted run of the same protocol")
    mode.add_argument("--overwrite", action="store_true", help="replace a recording already in --out")
    p.add_argument("--device", choices=None, default=None, help="auto | cpu | cuda[:N] (overrides record.device)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a protocol and print its plan, without recording")
    p.add_argument("protocol")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("info", help="describe a recording store: regions, shapes, coords, provenance, completeness")
    p.add_argument("store")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurorecord`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NeurorecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume with --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
