"""blurcli: blur every face in photos, videos and live streams except the people you enrolled."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("blurcli")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
