"""Dependencies point one way: reading stores and analysing recordings never import torch."""

from __future__ import annotations

import subprocess
import sys

import neurorecord


def test_analysis_and_store_reading_do_not_import_torch(tmp_path):
    store = tmp_path / "rec"
    neurorecord.run(neurorecord.default_protocol_path(), store, quiet=True)
    script = f"""
import sys
import neurorecord, neurorecord.analysis, neurorecord.interop
from neurorecord.analysis import anova, load_population
tree = neurorecord.open_recording({str(store)!r})
anova(tree["fc2"]["activity"], "label")
load_population({str(store)!r}, "fc2", "responsive")
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
