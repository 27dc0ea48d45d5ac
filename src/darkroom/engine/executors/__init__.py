"""Executors start, watch and stop the process of a run; they share `Executor`."""

from darkroom.engine.executors.base import Executor, Handle, OutputLine
from darkroom.engine.executors.local import LocalExecutor

__all__ = ["Executor", "Handle", "LocalExecutor", "OutputLine"]
