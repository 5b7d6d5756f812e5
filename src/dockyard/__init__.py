"""Dockyard: a container image registry (OCI Distribution v1.1, Docker Registry HTTP API V2)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dockyard")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
