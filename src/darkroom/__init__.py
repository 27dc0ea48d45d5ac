"""darkroom: run versioned processings on computer-vision datasets."""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    """`__version__` is read from the installed metadata on first use: importlib.metadata costs
    every run's start 60 ms, and a run rarely asks."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("darkroom")
        except PackageNotFoundError:  # a source tree without an install
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'darkroom' has no attribute {name!r}")
