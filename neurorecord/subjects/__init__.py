"""Subjects: networks (zoo, entry point, TorchScript, state dict) and their identity."""

from .base import Subject, eval_mode, weight_sha256
from .load import build_subject, load_entry_point
from .zoo import ZOO, DigitsGRU, ZooRecipe, cache_folder, digits32_cnn, digits_cnn, digits_mlp, load_zoo_subject

__all__ = [
    "Subject",
    "eval_mode",
    "weight_sha256",
    "build_subject",
    "load_entry_point",
    "ZOO",
    "ZooRecipe",
    "cache_folder",
    "digits_cnn",
    "digits_mlp",
    "digits32_cnn",
    "DigitsGRU",
    "load_zoo_subject",
]
