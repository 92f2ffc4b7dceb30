"""Zoo subjects: small networks trained deterministically on scikit-learn's digits on first use.

Each zoo entry is a recipe (architecture + training settings). The first time a subject is
asked for, it is trained on the ``train`` split of the digits (seconds on a CPU) and cached in
the user cache folder (``NEURORECORD_CACHE`` overrides it) under a hash of the recipe, with its
held-out ``test`` accuracy. Later loads read the cache (``torch.load(weights_only=True)``).

Modules are named so that recording ``fc1``, ``fc2``, ``fc3`` (or ``conv1``, ``conv2``) gives
the post-ReLU activity, the analogue of a firing rate; ``fc1.linear`` is the pre-activation.

Three input regimes: ``digits8`` (the 1x8x8 images), ``digits32`` (the images upsampled
bilinearly to 1x32x32, so that gratings of several spatial frequencies fit on them) and
``sequence`` (a sequence of 8x8 frames, blank but for the digit shown from an onset to an
offset step; the subject reports the digit from the offset on).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import SubjectError, did_you_mean
from ..stimuli.digits import digits_split, load_digits_array
from .base import Subject, weight_sha256

__all__ = ["ZOO", "ZooRecipe", "load_zoo_subject", "cache_folder", "digits_mlp", "digits_cnn", "digits32_cnn", "DigitsGRU",
           "upsample_digits", "digit_sequences"]

#: Time steps, onset and offset of the sequences the ``sequence`` subjects are tested on.
SEQUENCE_TEST_EPOCHS = (12, 2, 6)


def _block(layer: nn.Module) -> nn.Sequential:
    kind = "conv" if isinstance(layer, nn.Conv2d) else "linear"
    return nn.Sequential(OrderedDict([(kind, layer), ("relu", nn.ReLU())]))


def digits_mlp() -> nn.Sequential:
    """64-100-100-100-10 ReLU perceptron; regions ``fc1``, ``fc2``, ``fc3`` (100 units each), ``out`` (logits)."""
    return nn.Sequential(
        OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("fc1", _block(nn.Linear(64, 100))),
                ("fc2", _block(nn.Linear(100, 100))),
                ("fc3", _block(nn.Linear(100, 100))),
                ("out", nn.Linear(100, 10)),
            ]
        )
    )


def digits_cnn() -> nn.Sequential:
    """Small CNN on 1x8x8 digits; regions ``conv1`` (16 channels, 8x8), ``conv2`` (32 channels, 8x8),
    ``pool`` (32 x 4x4), ``fc1`` (64 units), ``out`` (logits)."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", _block(nn.Conv2d(1, 16, 3, padding=1))),
                ("conv2", _block(nn.Conv2d(16, 32, 3, padding=1))),
                ("pool", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", _block(nn.Linear(32 * 4 * 4, 64))),
                ("out", nn.Linear(64, 10)),
            ]
        )
    )


def digits32_cnn() -> nn.Sequential:
    """CNN on 1x32x32 digits; regions ``conv1`` (8 channels, 5x5 kernels, 32x32), ``pool1``,
    ``conv2`` (16 channels, 16x16), ``pool2``, ``conv3`` (32 channels, 8x8), ``pool3`` (32 x 4x4),
    ``fc1`` (64 units), ``out`` (logits)."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", _block(nn.Conv2d(1, 8, 5, padding=2))),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", _block(nn.Conv2d(8, 16, 3, padding=1))),
                ("pool2", nn.MaxPool2d(2)),
                ("conv3", _block(nn.Conv2d(16, 32, 3, padding=1))),
                ("pool3", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", _block(nn.Linear(32 * 4 * 4, 64))),
                ("out", nn.Linear(64, 10)),
            ]
        )
    )


class DigitsGRU(nn.Module):
    """A GRU that sees one 1x8x8 frame per time step and reports the digit shown.

    Input (batch, steps, 1, 8, 8); output the logits (batch, 10) of the last step. Regions, each
    (batch, steps, units): ``encoder`` (64 ReLU units reading the frame), ``gru`` (64 recurrent
    units; its output is the hidden state at every step), ``readout`` (10 logits per step).

    >>> import torch
    >>> DigitsGRU()(torch.zeros(2, 12, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = _block(nn.Linear(64, hidden))
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 10)

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at every step: (batch, steps, 10)."""
        states, _ = self.gru(self.encoder(x.flatten(2)))
        return self.readout(states)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.steps(x)[:, -1]


def upsample_digits(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Digits (n, 1, 8, 8) upsampled bilinearly (``align_corners=False``) to (n, 1, size, size)."""
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def digit_sequences(images: torch.Tensor, onset: torch.Tensor, offset: torch.Tensor, steps: int) -> torch.Tensor:
    """Frame sequences (n, steps, 1, 8, 8): zeros but for image i on steps onset[i] .. offset[i] - 1.

    >>> import torch
    >>> x = digit_sequences(torch.ones(1, 1, 8, 8), torch.tensor([1]), torch.tensor([3]), 4)
    >>> x.sum(dim=(2, 3, 4)).tolist()
    [[0.0, 64.0, 64.0, 0.0]]
    """
    t = torch.arange(steps)
    shown = (t >= onset[:, None]) & (t < offset[:, None])
    return images[:, None] * shown[:, :, None, None, None].to(images.dtype)


@dataclass(frozen=True)
class ZooRecipe:
    """How a zoo subject is built and trained (its hash keys the cache)."""

    architecture: str
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    seed: int
    description: str
    inputs: str = "digits8"

    def build(self) -> nn.Module:
        return _ARCHITECTURES[self.architecture]()

    def sha256(self) -> str:
        recipe = asdict(self)
        if self.inputs == "digits8":  # recipes from before input regimes existed keep their hash (and cache)
            del recipe["inputs"]
        record = {"recipe": recipe, "module": repr(self.build()), "split": "digits-every-4th-per-class", "training": "single-thread", "version": 2}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


_ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "digits_mlp": digits_mlp,
    "digits_cnn": digits_cnn,
    "digits32_cnn": digits32_cnn,
    "digits_gru": DigitsGRU,
}

ZOO: dict[str, ZooRecipe] = {
    "digits-mlp": ZooRecipe("digits_mlp", epochs=40, batch_size=32, learning_rate=1e-3, weight_decay=0.0, seed=0,
                            description="64-100-100-100-10 ReLU MLP on 8x8 digits"),
    "digits-cnn": ZooRecipe("digits_cnn", epochs=25, batch_size=32, learning_rate=2e-3, weight_decay=0.0, seed=0,
                            description="2-conv CNN on 1x8x8 digits"),
    "digits32-cnn": ZooRecipe("digits32_cnn", epochs=12, batch_size=32, learning_rate=2e-3, weight_decay=0.0, seed=0,
                              description="3-conv CNN on digits upsampled to 1x32x32 (bilinear)", inputs="digits32"),
    "digits-gru": ZooRecipe("digits_gru", epochs=40, batch_size=32, learning_rate=1e-3, weight_decay=0.0, seed=0,
                            description="GRU over 8x8 frames; reports the digit shown between onset and offset among blank frames",
                            inputs="sequence"),
}


def cache_folder() -> Path:
    """Where zoo weights are cached: ``$NEURORECORD_CACHE`` or the user cache folder."""
    env = os.environ.get("NEURORECORD_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("neurorecord"))


def load_zoo_subject(name: str) -> Subject:
    """Load a zoo subject, training and caching it on first use.

    >>> s = load_zoo_subject("digits-mlp")
    >>> s.info["test_accuracy"] > 0.95
    True
    """
    if name not in ZOO:
        raise SubjectError(f"subject.zoo: unknown zoo subject {name!r}{did_you_mean(name, ZOO)}; available: {', '.join(sorted(ZOO))}")
    recipe = ZOO[name]
    key = recipe.sha256()
    folder = cache_folder() / "zoo"
    weights, meta = folder / f"{name}-{key[:16]}.pt", folder / f"{name}-{key[:16]}.json"
    if not (weights.exists() and meta.exists()):
        model, info = _train(recipe)
        info["recipe_sha256"] = key
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(weights, lambda f: torch.save(model.state_dict(), f))
        _atomic_write(meta, lambda f: f.write(json.dumps(info, indent=1, sort_keys=True).encode()))
    model = recipe.build()
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        info = json.loads(meta.read_text())
    except Exception as exc:  # a truncated or overwritten cache file: torch, pickle and json raise their own kinds
        raise SubjectError(
            f"subject.zoo: the cached weights of {name!r} cannot be read ({type(exc).__name__}); the cache is damaged: delete "
            f"{weights} and {meta.name} beside it, and they are trained again on the next run"
        ) from None
    model.eval()
    return Subject(name=name, model=model, source={"zoo": name, "cache": str(weights)}, info=info)


def _train(recipe: ZooRecipe) -> tuple[nn.Module, dict[str, object]]:
    """Train on the digits ``train`` split with Adam and cross-entropy, deterministically."""
    images, labels = load_digits_array()
    train, test = digits_split("train"), digits_split("test")
    x_train, y_train = torch.from_numpy(images[train].copy()), torch.from_numpy(labels[train])
    x_test, y_test = torch.from_numpy(images[test].copy()), torch.from_numpy(labels[test])
    if recipe.inputs == "digits32":
        x_train, x_test = upsample_digits(x_train), upsample_digits(x_test)
    elif recipe.inputs == "sequence":
        steps, onset, offset = SEQUENCE_TEST_EPOCHS
        x_test = digit_sequences(x_test, torch.full((len(x_test),), onset), torch.full((len(x_test),), offset), steps)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    # one thread: faster for nets this small, and the result does not depend on the core count
    torch.set_num_threads(1)
    try:
        model = _fit(recipe, x_train, y_train)
    finally:
        torch.set_num_threads(threads)
    with torch.inference_mode():
        test_acc = float((model(x_test).argmax(1) == y_test).float().mean())
        if recipe.inputs == "sequence":
            steps, onset, offset = SEQUENCE_TEST_EPOCHS
            x_train = digit_sequences(x_train, torch.full((len(x_train),), onset), torch.full((len(x_train),), offset), steps)
        train_acc = float((model(x_train).argmax(1) == y_train).float().mean())
    info = {
        "test_accuracy": test_acc,
        "train_accuracy": train_acc,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "training_seconds": round(time.perf_counter() - start, 3),
        "trained_with_torch": torch.__version__,
        "weight_sha256": weight_sha256(model),
        "description": recipe.description,
        "inputs": recipe.inputs,
    }
    if recipe.inputs == "sequence":
        info["test_epochs"] = dict(zip(("steps", "onset", "offset"), SEQUENCE_TEST_EPOCHS))
    return model, info


def _fit(recipe: ZooRecipe, x_train: torch.Tensor, y_train: torch.Tensor) -> nn.Module:
    """Adam on cross-entropy, minibatches in a seeded order; returns the model in eval mode.

    ``sequence`` subjects see each image in a sequence of ``SEQUENCE_TEST_EPOCHS[0]`` steps with a
    random onset (0-4) and duration (2-6 steps), drawn anew every epoch, and are scored at every
    step from the offset on.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = recipe.build()
        order = torch.Generator().manual_seed(recipe.seed)
        opt = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        for _ in range(recipe.epochs):
            perm = torch.randperm(len(x_train), generator=order)
            for i in range(0, len(perm), recipe.batch_size):
                idx = perm[i : i + recipe.batch_size]
                opt.zero_grad()
                if recipe.inputs == "sequence":
                    steps = SEQUENCE_TEST_EPOCHS[0]
                    onset = torch.randint(0, 5, (len(idx),), generator=order)
                    offset = onset + torch.randint(2, 7, (len(idx),), generator=order)
                    logits = model.steps(digit_sequences(x_train[idx], onset, offset, steps))
                    scored = torch.arange(steps)[None, :] >= offset[:, None]
                    target = y_train[idx][:, None].expand(-1, steps)
                    loss = loss_fn(logits[scored], target[scored])
                else:
                    loss = loss_fn(model(x_train[idx]), y_train[idx])
                loss.backward()
                opt.step()
    return model.eval()


def _atomic_write(path: Path, write: Callable) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
