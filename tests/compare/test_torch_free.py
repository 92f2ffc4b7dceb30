"""The comparisons run where torch is not installed: importing them does not import torch."""

from __future__ import annotations

import subprocess
import sys


def test_compare_and_its_converters_do_not_import_torch():
    script = """
import sys
import numpy as np, xarray as xr
import neurorecord.compare as compare
from neurorecord.interop import to_brainscore_assembly, to_rsatoolbox
a = xr.DataArray(np.random.default_rng(0).normal(size=(8, 5)), dims=("presentation", "neuroid"),
                 coords={"stimulus_id": ("presentation", list("abcdefgh")), "neuroid_id": ("neuroid", list("vwxyz"))})
compare.rdm(a); compare.cka(a, a); to_rsatoolbox(a); to_brainscore_assembly(a)
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
