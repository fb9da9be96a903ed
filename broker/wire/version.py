"""The version of zjobs: defined once, in pyproject.toml, and read from the installed
distribution's metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zjobs")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
