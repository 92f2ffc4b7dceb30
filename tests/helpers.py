"""Protocol texts shared by the tests."""

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
