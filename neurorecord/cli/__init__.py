"""Command-line interface (``neurorecord run | validate | info | schema | stimuli``).

The console script is :func:`neurorecord.cli.main.main`; ``python -m neurorecord.cli.main`` runs it
too. Nothing is imported here, so that running the module does not import it twice.
"""
