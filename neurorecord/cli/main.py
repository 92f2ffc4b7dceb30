"""The ``neurorecord`` command: a thin layer over the Python API.

Errors caused by the user's input print ``error: ...`` on stderr and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import NeurorecordError

__all__ = ["main"]


def _cmd_run(args: argparse.Namespace) -> int:
    from ..cluster import cluster_client
    from ..session import execute

    with cluster_client(args.scheduler, args.workers):  # recording, analyses and lesion sweeps use it (docs/scale.md)
        execute(args.protocol, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device, quiet=args.quiet,
            report=not args.no_report)
    if not args.quiet:
        print(f"recorded {args.protocol} -> {args.out} (complete); inspect it with `neurorecord info {args.out}`", file=sys.stderr)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..experiment import prepare
    from .plan import estimate

    experiment = prepare(args.protocol, args.device)
    print(experiment.summary())
    print("\n".join(estimate(experiment).lines()))
    print("protocol is valid")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import json

    from ..protocol.reference import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.is_dir():
        raise NeurorecordError(f"{out}: --out is a folder, expected a file name (e.g. protocol.schema.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote the protocol JSON Schema to {out}", file=sys.stderr)
    return 0


def _cmd_stimuli(args: argparse.Namespace) -> int:
    from matplotlib.backend_bases import FigureCanvasBase

    from ..errors import StimulusError, did_you_mean
    from ..protocol import load_protocol
    from ..stimuli import build_stimulus_sets
    from ..plot.sheet import contact_sheet

    out = Path(args.out)
    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lstrip(".").lower() not in formats:
        raise NeurorecordError(f"--out: cannot tell the image format from {out.name!r}; end it with one of: {', '.join(f'.{f}' for f in sorted(formats))}")
    if out.is_dir():
        raise NeurorecordError(f"{out}: --out is a folder, expected an image file name (e.g. sheet.png)")
    protocol = load_protocol(args.protocol)
    names = [s.name for s in protocol.stimuli]
    for name in args.set or []:
        if name not in names:
            raise NeurorecordError(f"--set: {protocol.path}: no stimulus set named {name!r}{did_you_mean(name, names)}; sets: {', '.join(names)}")
    try:
        sets = build_stimulus_sets(protocol)
    except StimulusError as exc:
        if exc.loc is None:
            raise
        raise StimulusError(f"{protocol.where(*exc.loc)}: {exc}", loc=exc.loc) from None
    chosen = [s for s in sets if args.set is None or s.name in args.set]
    figure = contact_sheet(chosen, max_per_set=args.max, frames=args.frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=args.dpi)
    print(f"wrote {out}: {', '.join(f'{s.name} ({len(s)})' for s in chosen)}", file=sys.stderr)
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text}")
    return value


#: Highest --dpi of a contact sheet: print resolution; more only builds an image too large to hold.
MAX_DPI = 1200


def _dpi(text: str) -> int:
    value = _positive(text)
    if value > MAX_DPI:
        raise argparse.ArgumentTypeError(f"expected a resolution of 1 to {MAX_DPI} dots per inch, found {value}")
    return value


def _cmd_info(args: argparse.Namespace) -> int:
    from .info import describe_store

    if args.json:
        import json

        from .info import store_summary

        print(json.dumps(store_summary(args.store, check=args.check), indent=2, default=str))
        return 0
    print(describe_store(args.store, check=args.check))
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
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (overrides record.device)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report (<OUT>.report) at the end")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS", default=None,
                         help="record, analyse and run lesion sweeps on the workers of this dask.distributed scheduler (address or scheduler file)")
    cluster.add_argument("--workers", metavar="N", type=_positive, default=None,
                         help="record, analyse and run lesion sweeps on a local cluster of N worker processes")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a protocol and print its plan, without recording")
    p.add_argument("protocol")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (overrides record.device)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("info", help="describe a recording store: regions, shapes, coords, provenance, completeness")
    p.add_argument("store")
    p.add_argument("--check", action="store_true",
                   help="read every file and compare it with the manifest written at completion (CRC-32); exit 2 if damaged")
    p.add_argument("--json", action="store_true", help="print the description as JSON, for scripts")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("schema", help="print the JSON Schema of the protocol format (for editor completion)")
    p.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("stimuli", help="draw a contact sheet of a protocol's stimulus sets")
    p.add_argument("protocol")
    p.add_argument("--out", required=True, metavar="FILE", help="image file; its extension gives the format (.png, .pdf, .svg, ...)")
    p.add_argument("--max", type=_positive, default=64, metavar="N", help="most thumbnails per set; larger sets are sampled evenly (default 64)")
    p.add_argument("--frames", type=_positive, default=8, metavar="N", help="most frames shown per stimulus of a sequence set (default 8)")
    p.add_argument("--set", action="append", metavar="NAME", help="only this stimulus set (repeat for several)")
    p.add_argument("--dpi", type=_dpi, default=100, help="resolution (default 100: a thumbnail is about 110 pixels wide)")
    p.set_defaults(func=_cmd_stimuli)

    from .report import add_report_parser  # argparse only; the report's modules load when it runs

    add_report_parser(sub)
    return parser


def _os_error(exc: OSError) -> str:
    """One line for a file-system error, naming the path and, for the zoo cache, what to do."""
    where = exc.filename if exc.filename is not None else ""
    text = f"{where}: {exc.strerror or exc}" if where else str(exc.strerror or exc)
    cache = os.environ.get("NEURORECORD_CACHE")
    if cache and where and str(where).startswith(cache):
        text += f" (the zoo cache NEURORECORD_CACHE={cache} must be a writable folder; point it at one, or unset it)"
    return text


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                      line: str | None = None) -> None:
    """Show a warning to a command-line user as one line: the package's own as they are, another
    library's with that library's name (no source path, no code line)."""
    text = (str(message).strip().splitlines() or [category.__name__])[0]
    parts = Path(filename).parts
    origin = parts[parts.index("site-packages") + 1] if "site-packages" in parts[:-1] else ""
    print(f"warning: {text}" + (f" ({origin}, {category.__name__})" if origin and origin != "neurorecord" else ""), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurorecord`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except NeurorecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused: a read-only or full disk, a path under a file, ...
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume with --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
