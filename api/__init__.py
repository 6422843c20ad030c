"""The gateway's HTTP API: SiteWise-compatible routes, the dashboard, operations.

    from api import create_app
    app = create_app(backend)        # backend: anything of the Backend protocol (the runtime's Gateway)
"""

from api.app import create_app
from api.backend import Backend, Reader

__all__ = ["Backend", "Reader", "create_app"]
