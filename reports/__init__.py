"""reports: the drift report (nightly and on demand) as HTML, Markdown and JSON.

``generate_report(con, out_dir, window_s=...)`` builds the model from the store
(``build_report``: findings, deploy markers, investigations, plots from ``analysis``),
writes the forms (``write_report``) and indexes them in table ``reports``
(``list_reports`` / ``get_report`` for the API). Reports read findings; they compute no
statistics of their own.
"""

from reports.build import build_report
from reports.index import get_report, list_reports, save_index
from reports.model import SCHEMA_VERSION, ReportModel
from reports.write import FORMATS, generate_report, write_report

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "ReportModel",
    "build_report",
    "generate_report",
    "get_report",
    "list_reports",
    "save_index",
    "write_report",
]
