"""The package's copy of the digits equals scikit-learn's, and reading it needs no scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits

from neurorecord.stimuli.digits import load_digits_array


def test_shipped_digits_equal_scikit_learns() -> None:
    bunch = load_digits()
    images, labels = load_digits_array()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    np.testing.assert_array_equal(images, (bunch.images.astype(np.float32) / np.float32(16.0))[:, None])
    np.testing.assert_array_equal(labels, bunch.target)
    assert labels.dtype == np.int64
    assert not images.flags.writeable and not labels.flags.writeable


def test_reading_digits_does_not_import_scikit_learn() -> None:
    code = ("import sys; from neurorecord.stimuli.digits import load_digits_array, digits_split; "
            "load_digits_array(); digits_split('test'); print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
