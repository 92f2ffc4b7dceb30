"""An HTML report of a recording store: what was run, on what, and every result with its figures.

:func:`write_report` writes a folder (``<STORE>.report`` next to the store by default) that a
browser opens without a network: ``index.html`` with a table of contents and collapsible
sections, the figures of :mod:`neurorecord.plot` as PNG files, every table as CSV. The command
``neurorecord report STORE [--out DIR]`` calls it; docs/report.md shows a report.

>>> default_report_dir("runs/digits").name
'digits.report'
"""

from .write import ReportError, default_report_dir, write_report

__all__ = ["ReportError", "default_report_dir", "write_report"]
