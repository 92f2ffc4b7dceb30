"""Recording: tapping regions, streaming activity to a zarr store, opening stores."""

from .plan import PresentationPlan
from .recorder import ACTIVITY_CODEC, Experiment, prepare, run
from .regions import RegionLayout, RegionTap, reduce_output, region_layout
from .store import RUN_ATTR, RunState, open_recording, read_run_state, root_attrs

__all__ = [
    "ACTIVITY_CODEC",
    "Experiment",
    "PresentationPlan",
    "RUN_ATTR",
    "RegionLayout",
    "RegionTap",
    "RunState",
    "open_recording",
    "prepare",
    "read_run_state",
    "reduce_output",
    "region_layout",
    "root_attrs",
    "run",
]
