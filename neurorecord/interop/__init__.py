"""Biological recordings in the recording layout: readers and converters at the package's edge.

Everything here turns data from outside (a published data file, Neo objects) into the same
``presentation x neuroid [x time_bin]`` layout a model recording has, so every analysis runs on
both. Units are converted once, here, and written to ``attrs``; nothing in this sub-package needs
torch.

- :func:`read_ecker2010`: the macaque V1 grating recordings of Ecker et al. (2010), drifting
  (``direction``) or static (``orientation``), one DataTree node per session;
- :func:`response_window`: spike count (or rate) in a window after stimulus onset;
- :func:`from_neo`: trial-aligned ``neo.Segment`` objects to binned spike counts, or to bin
  means of their analog signals.
- :func:`to_neo`: a recording to a ``neo.Block`` (a Segment per presentation) of analog
  signals or seeded Poisson spike trains; :func:`to_nwb` / :func:`from_nwb`: a recording to an
  NWB file (trials and units tables) and an NWB file's units and trials back to the layout.
- :func:`to_rsatoolbox` / :func:`from_rsatoolbox`: a recording to and from an
  ``rsatoolbox.data.Dataset``; :func:`to_brainscore_assembly`: a recording laid out as a
  Brain-Score ``NeuroidAssembly`` (MultiIndex coords, ``identifier``).
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys

from ..errors import InteropError
from ..store import package_versions

__all__ = ["InteropError", "ecker2010_path", "read_ecker2010", "response_window", "from_neo", "to_neo", "to_nwb", "from_nwb",
           "to_rsatoolbox", "from_rsatoolbox", "to_brainscore_assembly"]


def _provenance(converter: str, packages: tuple[str, ...]) -> dict[str, object]:
    """Attributes shared by every converted recording: who converted it, with what, when."""
    versions = package_versions(("neurorecord", *packages))
    return {
        "neurorecord_format": 1,
        "converter": converter,
        "packages": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


from .ecker2010 import ecker2010_path, read_ecker2010  # noqa: E402  (needs the helpers above)
from .neo import from_neo  # noqa: E402
from .neo_export import to_neo  # noqa: E402
from .nwb import from_nwb, to_nwb  # noqa: E402
from .window import response_window  # noqa: E402
from .rsatoolbox import from_rsatoolbox, to_rsatoolbox  # noqa: E402
from .brainscore import to_brainscore_assembly  # noqa: E402
