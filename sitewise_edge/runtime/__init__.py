"""The composition root: builds every component from the configuration and supervises them.

Only this package (and the CLI) import across the sibling packages (connectors, asset_models,
storage, api). ``gateway`` wires and supervises; ``metrics`` schedules metric windows;
``models`` reads the model files and keeps what the API changed under ``data_dir/models``.
"""

from sitewise_edge.runtime.gateway import Gateway, dashboard_url, make_connector
from sitewise_edge.runtime.metrics import MetricRunner

__all__ = ["Gateway", "MetricRunner", "dashboard_url", "make_connector"]
