"""videoperlin: spatiotemporal initialization of 3D CNNs with Video Perlin Noise (VPN)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("videoperlin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
