"""Draw the reference images of tests/plot/test_figures.py into tests/plot/baseline/.

    python -m tests.plot.make_baseline [NAME ...]

Run it only when a figure is meant to change, look at every image it writes, and commit them
with the change. With names, only those figures are redrawn.
"""

from __future__ import annotations

import sys

from tests.plot.cases import BASELINE, FIGURES, draw


def main(names: list[str]) -> None:
    BASELINE.mkdir(exist_ok=True)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise SystemExit(f"unknown figure(s) {', '.join(unknown)}; figures: {', '.join(FIGURES)}")
    for name in names or FIGURES:
        draw(name, BASELINE / f"{name}.png")
        print(f"wrote {BASELINE.name}/{name}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
