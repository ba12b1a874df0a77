"""Errors that the command line reports as one clear line instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class SelfsupError(Exception):
    """A problem the user can fix (bad input, bad option); the CLI prints it and exits 2."""


class DataError(SelfsupError):
    """Bad or unreadable input data. The message names the file (when there is one) and the problem."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class ConfigError(SelfsupError):
    """An option or combination of options that cannot work (unknown name, incompatible encoder ...)."""
