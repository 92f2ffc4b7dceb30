"""Protocol texts shared by the tests."""

from pathlib import Path

DIGITS_MLP = """neurorecord: 1
name: digits
seed: 0
subject:
  zoo: digits-mlp
stimuli:
  - name: digits
    kind: digits
    split: test
record:
  regions: [fc1, fc2, fc3]
  batch_size: 100
  reduce: mean
"""

#: The shared macaque V1 recording (read in place, never copied); tests skip where it is absent.
ECKER_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "v1-ecker2010" / "data_v1_binned_moving.mat"
