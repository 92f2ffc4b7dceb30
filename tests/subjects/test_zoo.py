"""Zoo subjects: trained deterministically on first use, cached, accurate, post-ReLU regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurorecord.errors import SubjectError
from neurorecord.stimuli import digits_split, load_digits_array
from neurorecord.subjects import ZOO, load_zoo_subject, weight_sha256
from neurorecord.subjects import zoo as zoo_module


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORECORD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mlp_trains_accurately_then_loads_from_cache(fresh_cache, monkeypatch):
    subject = load_zoo_subject("digits-mlp")
    assert subject.info["test_accuracy"] > 0.95
    assert subject.info["recipe_sha256"] == ZOO["digits-mlp"].sha256()
    files = sorted(p.name for p in (fresh_cache / "zoo").iterdir())
    assert files == [f"digits-mlp-{ZOO['digits-mlp'].sha256()[:16]}.json", f"digits-mlp-{ZOO['digits-mlp'].sha256()[:16]}.pt"]

    def no_training(recipe):
        raise AssertionError("the cached subject was retrained")

    monkeypatch.setattr(zoo_module, "_train", no_training)
    again = load_zoo_subject("digits-mlp")
    assert again.weight_sha256 == subject.weight_sha256 == subject.info["weight_sha256"]


def test_training_is_deterministic():
    a, _ = zoo_module._train(ZOO["digits-mlp"])
    b, _ = zoo_module._train(ZOO["digits-mlp"])
    assert weight_sha256(a) == weight_sha256(b)


def test_accuracy_recomputed_from_weights():
    """The stored test accuracy is what the cached weights really give on the held-out split."""
    for name, floor in [("digits-mlp", 0.95), ("digits-cnn", 0.95)]:
        subject = load_zoo_subject(name)
        images, labels = load_digits_array()
        test = digits_split("test")
        with torch.inference_mode():
            pred = subject.model(torch.from_numpy(images[test].copy())).argmax(1).numpy()
        accuracy = float((pred == labels[test]).mean())
        assert accuracy == pytest.approx(subject.info["test_accuracy"], abs=1e-6)
        assert accuracy > floor


def test_split_is_disjoint_stratified_and_complete():
    _, labels = load_digits_array()
    train, test = digits_split("train"), digits_split("test")
    assert not set(train) & set(test) and len(train) + len(test) == len(labels) == len(digits_split("all"))
    counts = np.bincount(labels[test], minlength=10) / np.bincount(labels, minlength=10)
    assert np.all(np.abs(counts - 0.25) < 0.01)


def test_regions_are_post_relu():
    model = load_zoo_subject("digits-mlp").model
    names = dict(model.named_modules())
    assert {"fc1", "fc2", "fc3", "fc1.linear", "fc1.relu", "out"} <= set(names)
    x = torch.from_numpy(load_digits_array()[0][:50].copy())
    with torch.inference_mode():
        pre = names["fc1.linear"](x.flatten(1))
        post = names["fc1"](x.flatten(1))
    assert torch.equal(post, torch.relu(pre)) and (post >= 0).all() and (post == 0).any()
    cnn = dict(load_zoo_subject("digits-cnn").model.named_modules())
    assert {"conv1", "conv2", "pool", "fc1", "out"} <= set(cnn)


def test_unknown_zoo_name():
    with pytest.raises(SubjectError, match=r"unknown zoo subject 'digits-mpl' \(did you mean 'digits-mlp'\?\); available: digits-cnn, digits-gru, digits-mlp, digits32-cnn"):
        load_zoo_subject("digits-mpl")
