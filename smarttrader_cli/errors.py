"""One exception hierarchy; exit codes are decided here and nowhere else."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130


def first_line(exc: BaseException, empty: str | None = None) -> str:
    """The first line of an exception's message; `empty` (default: its type name) if none."""
    lines = str(exc).strip().splitlines()
    if lines:
        return lines[0]
    return type(exc).__name__ if empty is None else empty


class StError(Exception):
    """Base of every error `st` reports to the user as one line."""

    exit_code = EXIT_FAILED


class UsageError(StError):
    """The command line asked for something impossible."""

    exit_code = EXIT_USAGE


class ConfigError(StError):
    """The configuration is missing, malformed or inconsistent."""

    exit_code = EXIT_USAGE


class LockHeldError(StError):
    """Another run of the same stage holds its lock."""

    exit_code = EXIT_LOCKED


class StageError(StError):
    """A stage could not complete."""


class LakeError(StError):
    """The lake could not be read or written."""


class TableNotFoundError(LakeError):
    """A named table is not in the registry or not yet written."""

    exit_code = EXIT_USAGE


class QueryError(LakeError):
    """An ad-hoc SQL query failed."""


class ApiError(StError):
    """A remote API answered with an error we cannot recover from."""


class ApiRefusedError(ApiError):
    """The API refused the key (401/403): no other request of the run can succeed either."""


class BrokerUnavailableError(StError):
    """The stream's broker did not acknowledge in time (or cannot be reached)."""


class ResourceError(StError):
    """Not enough free memory or disk to run safely."""


class PipelineFailed(StError):
    """A pipeline stage failed: carries every stage's outcome so the summary still prints.

    Its exit code is the failed stage's kind: 75 when the stage was locked, 1 otherwise.
    """

    def __init__(self, kind: type[StError], stage: str, error: str, outcomes: list[Any]) -> None:
        super().__init__(f"pipeline stopped: stage {stage} failed: {error}")
        self.exit_code = kind.exit_code
        self.stage = stage
        self.outcomes = outcomes
