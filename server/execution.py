"""Executing a run: its workflow called with its parameters, and the run ended with the
terminal event its outcome calls for (``end``, ``error`` or ``cancelled``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .client_log import RateLimitedLog
from .context import RunContext
from .framing import (
    CANCELLED,
    END,
    ERROR,
    NotJSONSerialisable,
    cancelled_data,
    end_data,
    failed_data,
    to_json,
)
from .params import ParamsInvalid
from .resources import ResourceUnavailable
from .run import ExecutedRun

__all__ = ["FailureLog", "execute"]

logger = logging.getLogger("streambind.server")


class FailureLog:
    """A node's log of its runs' failures. A thousand runs failing alike would log a
    thousand tracebacks no one reads: the first of a minute keep theirs, the rest are
    one line each."""

    def __init__(self) -> None:
        self.failures = RateLimitedLog(logger, kind="failed runs' tracebacks")
        self.unavailable = RateLimitedLog(logger, kind="runs failed for a resource")


async def execute(run: ExecutedRun, ctx: RunContext, failure_log: FailureLog) -> None:
    """Call the run's workflow and end the run with its outcome."""
    try:
        result = await run.endpoint.fn(ctx, **run.params)
    except asyncio.CancelledError:
        if run.imposed_error is not None:
            run.error = run.imposed_error
            run.status = "failed"
            run.end(ERROR, failed_data(run.imposed_error))
            return
        run.status = "cancelled"
        run.end(CANCELLED, cancelled_data(run.cancel_reason or "requested"))
        return
    except ParamsInvalid as exc:
        # Refusals the workflow expects: the client's to fix, one line each.
        logger.info("run %s refused its parameters: %s", run.id, exc.fields)
        _fail(run, exc)
        return
    except ResourceUnavailable as exc:
        # A database that is down is not a bug: its message says all there is.
        failure_log.unavailable.warning("run %s (%s) failed: %s", run.id, run.endpoint_name, exc)
        _fail(run, exc)
        return
    except Exception as exc:
        failure_log.failures.exception("run %s (%s) failed", run.id, run.endpoint_name)
        _fail(run, exc)
        return
    try:
        result_json = to_json(result)
    except NotJSONSerialisable as exc:
        logger.error("run %s (%s): result is not JSON: %s", run.id, run.endpoint_name, exc)
        _fail(run, TypeError(f"the workflow's return value: {exc}"))
        return
    run.result_json = result_json
    run.status = "succeeded"
    run.end(END, end_data(result_json))


def _fail(run: ExecutedRun, exc: BaseException) -> None:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or "(no message)"}
    if isinstance(exc, ParamsInvalid):
        error = {"type": "invalid_params", "message": str(exc), "fields": exc.fields}
    run.error = error
    run.status = "failed"
    run.end(ERROR, failed_data(error))
