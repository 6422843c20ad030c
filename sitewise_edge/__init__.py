"""sitewise-edge: an AWS IoT SiteWise-compatible edge data collector and historian.

This package holds what every part shares (``samples``, ``errors``, ``config``, ``files``, ``clock``) and what
wires them together (``runtime``, ``cli``, ``publish``, ``simulators``). See tests/test_layering.py for who
may import whom.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sitewise-edge")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
