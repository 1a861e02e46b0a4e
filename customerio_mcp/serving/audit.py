"""The audit trail: one record for every tool call that may have reached Customer.io, what it sent, how it ended.

A call gets a record once it is handed to the Customer.io client: every local check passed, it
was no dry run, and a destructive call was confirmed (``CallRecord.sending``). Calls refused here
(invalid arguments, no-destructive, declined, dry run, schema mode, server busy) sent nothing and
get none; neither do read-only tools, nor calls whose credentials are missing (they fail before any
network call). A record holds the time, the workspace (its site id, else the first 12 hex
characters of its fingerprint: never a key), who sent it (``CallScope.principal``), the tool, the
method and path, the deduplication keys sent (``sent_ids``), the outcome and how a destructive
call was confirmed; its body only with ``CUSTOMERIO_AUDIT_BODIES=true``; headers never. Every
record passes through ``redact`` with the workspace's secrets before it is written.

Writing never delays or fails a call: ``submit`` puts the record on a bounded in-memory queue and
returns; a background task started with the server's state writes batches (``audit_sinks.py``).
A full queue drops the record, and a write that fails (a full disk, no permission, Redis away)
loses its batch; either logs one WARNING for the whole outage, then nothing until a write works
again, when one line says how many records were lost. ``lost`` counts them for the whole run, and
the last line at shutdown repeats it. On shutdown the queue is written out within
``AUDIT_FLUSH_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio

from customerio_mcp.errors import ConfigurationError, DeliveryError, PartialFailureError
from customerio_mcp.serving.audit_sinks import AuditSink, audit_sink, described_failure
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import redact
from customerio_mcp.tools.dedupe_keys import sent_ids
from customerio_mcp.tools.runner import CallRecord, CallScope

logger = logging.getLogger(__name__)

AUDIT_QUEUE_RECORDS = 10_000
"""Records waiting to be written, at most; more are dropped (and counted)."""
AUDIT_QUEUE_BODY_BYTES = 64 * 1024 * 1024
"""With CUSTOMERIO_AUDIT_BODIES, the bodies waiting to be written, at most, in bytes."""
AUDIT_BATCH_RECORDS = 500
AUDIT_BATCH_BODY_BYTES = 4 * 1024 * 1024
AUDIT_FLUSH_SECONDS = 2.0
"""On shutdown (after the drain window), how long the records still queued get to be written."""

Queued = tuple[dict[str, Any], tuple[str, ...], int]
"""A record, the secrets of its workspace (redacted from it when written) and the size of its body."""


def audit_entry(record: CallRecord, scope: CallScope, at: float, bodies: bool) -> dict[str, Any] | None:
    """The audit record of one finished (or stopped) call, or None when it cannot have reached Customer.io."""
    tool, request = record.tool, record.request
    if tool is None or request is None or not record.sending or tool.read_only:
        return None
    if isinstance(record.error, ConfigurationError):  # missing credentials: raised before any network call
        return None
    outcome, status, error = _outcome(record)
    workspace = scope.client.workspace
    entry: dict[str, Any] = {
        "time": at,
        "workspace": workspace.site_id or workspace.fingerprint[:12],
        "principal": scope.principal,
        "tool": tool.name,
        "api": request.api,
        "method": request.method,
        "path": request.path,
        "sent_ids": sent_ids(request.body),
        "outcome": outcome,
        "status": status,
        "error": error,
        "confirmation": record.confirmation,
    }
    if request.query:
        entry["query"] = dict(request.query)
    if bodies and request.body is not None:
        entry["body"] = request.body
    return entry


def _outcome(record: CallRecord) -> tuple[str, int | None, str | None]:
    """Whether Customer.io applied the call (``applied``, ``partly applied``, ``may have applied``, ``not
    applied``), the status it answered, and what went wrong."""
    if record.response is not None:
        return "applied", record.response.status, None
    error = record.error
    if error is None:  # stopped waiting for the answer: the drain window closed, or the client cancelled
        return "may have applied", None, "interrupted"
    if isinstance(error, PartialFailureError):
        return "partly applied", error.status, error.kind
    if isinstance(error, DeliveryError):
        applied = "may have applied" if error.details.get("maybe_applied") else "not applied"
        return applied, error.details.get("status"), error.details.get("reason") or error.kind
    return "may have applied", None, "internal_error"


def encode(items: list[Queued]) -> list[str]:
    """One JSON line per record, secrets redacted; ASCII only, so that no control character reaches a terminal
    that shows the file."""
    lines = []
    for entry, secrets, _ in items:
        stamp = datetime.fromtimestamp(entry["time"], UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        shown = redact({**entry, "time": stamp}, secrets)
        lines.append(json.dumps(shown, ensure_ascii=True, separators=(",", ":"), default=str) + "\n")
    return lines


class AuditTrail:
    """The queue of records and the task that writes them; see the module docstring."""

    def __init__(self, sink: AuditSink, bodies: bool) -> None:
        self.sink = sink
        self._bodies = bodies
        self._send, self._receive = anyio.create_memory_object_stream[Queued](AUDIT_QUEUE_RECORDS)
        self._queued_bytes = 0
        self._writing = 0
        self._done = anyio.Event()
        self.lost = 0
        """Records of this run that were never written."""
        self._lost_in_outage = 0
        self._outage = False

    def submit(self, record: CallRecord, scope: CallScope) -> None:
        """Queue the record of one call, if it gets one. Never waits, never raises."""
        try:
            entry = audit_entry(record, scope, time.time(), self._bodies)
            if entry is None:
                return
            size = len(record.request.content or b"") if "body" in entry and record.request else 0
            if self._queued_bytes + size > AUDIT_QUEUE_BODY_BYTES:
                raise anyio.WouldBlock
            self._send.send_nowait((entry, scope.client.secrets(), size))
            self._queued_bytes += size
        except anyio.WouldBlock:
            self._lose(1, "the queue of records to write is full (they are written more slowly than calls come)")
        except anyio.ClosedResourceError:
            self._lose(1, "a call ended after the trail was closed for shutdown")
        except Exception as error:  # a fault here is a bug, and must still never fail the call
            self._lose(1, f"a record could not be made ({type(error).__name__}); this is a bug, please report it")

    async def run(self) -> None:
        """Write the queued records in batches until the queue is closed and empty."""
        try:
            async with self._receive:
                async for first in self._receive:
                    batch = [first]
                    body_bytes = first[2]
                    while len(batch) < AUDIT_BATCH_RECORDS and body_bytes < AUDIT_BATCH_BODY_BYTES:
                        try:
                            item = self._receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        batch.append(item)
                        body_bytes += item[2]
                    self._queued_bytes -= body_bytes
                    await self._write(batch)
        finally:
            self._done.set()

    async def _write(self, batch: list[Queued]) -> None:
        self._writing = len(batch)
        try:
            await self.sink.append(partial(encode, batch))
        except Exception as error:
            self._lose(len(batch), f"{self.sink.shown} cannot be written ({described_failure(error)})")
            return
        finally:
            self._writing = 0
        if self._outage and self._receive.statistics().current_buffer_used < AUDIT_QUEUE_RECORDS // 2:
            logger.info(
                "audit: writing to %s again; %d record(s) were lost meanwhile (%d this run)",
                self.sink.shown,
                self._lost_in_outage,
                self.lost,
            )
            self._outage = False
            self._lost_in_outage = 0

    def _lose(self, count: int, why: str) -> None:
        self.lost += count
        self._lost_in_outage += count
        if not self._outage:
            self._outage = True
            logger.warning(
                "audit: %s: records are lost until it works again (calls go on); how many is said when it does, "
                "and at shutdown",
                why,
            )

    async def finish(self) -> None:
        """Stop taking records and write the queued ones, for at most ``AUDIT_FLUSH_SECONDS``."""
        self._send.close()
        with anyio.move_on_after(AUDIT_FLUSH_SECONDS, shield=True):
            await self._done.wait()
        left = self._writing + (self._receive.statistics().current_buffer_used if not self._done.is_set() else 0)
        if left:
            self._lose(left, f"shutting down: {AUDIT_FLUSH_SECONDS:g} s were not enough to write every record")
        if self.lost:  # the outage itself was the WARNING
            logger.info("audit: %d record(s) of this run could not be written to %s", self.lost, self.sink.shown)


@asynccontextmanager
async def open_audit_trail(settings: Settings) -> AsyncIterator[AuditTrail | None]:
    """The trail ``CUSTOMERIO_AUDIT`` asks for, its writer running until exit (None: off)."""
    try:
        sink = audit_sink(settings)
    except Exception as error:  # no home directory to find the state directory in, say
        logger.warning("audit: no audit trail is written: %s", error)
        sink = None
    if sink is None:
        yield None
        return
    trail = AuditTrail(sink, settings.audit_bodies)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(trail.run)
            try:
                yield trail
            finally:
                await trail.finish()
                tasks.cancel_scope.cancel()
    finally:
        sink.close()
