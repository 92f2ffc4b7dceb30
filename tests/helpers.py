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

#: An ``analyses:`` entry (indented for the list) defining the fc3 units selective for digit 3.
LIKES_3 = """  - name: likes-3
    kind: population
    regions: [fc3]
    test: ttest_ovr
    by: label
    condition: 3
    q_below: 0.01
    index: dprime
    index_above: 1.0
"""

#: The shared macaque V1 recording (read in place, never copied); tests skip where it is absent.
ECKER_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "v1-ecker2010" / "data_v1_binned_moving.mat"
