"""Executing a run: its workflow called with its parameters, and the run ended with the
terminal event its outcome calls for (``end``, ``error`` or ``cancelled``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

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
from .run import ExecutedRun

__all__ = ["execute"]

logger = logging.getLogger("streambind.server")


async def execute(run: ExecutedRun, ctx: RunContext) -> None:
    """Call the run's workflow and end the run with its outcome."""
    try:
        result = await run.endpoint.fn(ctx, **run.params)
    except asyncio.CancelledError:
        run.status = "cancelled"
        run.end(CANCELLED, cancelled_data(run.cancel_reason or "requested"))
        return
    except ParamsInvalid as exc:
        logger.info("run %s refused its parameters: %s", run.id, exc.fields)
        _fail(run, exc)
        return
    except Exception as exc:
        logger.exception("run %s (%s) failed", run.id, run.endpoint_name)
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
