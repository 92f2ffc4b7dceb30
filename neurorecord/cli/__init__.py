"""Command-line interface (``neurorecord run | validate | info``)."""

from .main import main

__all__ = ["main"]
