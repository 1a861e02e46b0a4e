"""``customerio-mcp audit``: the audit trail's records, as a table or as JSON Lines, filtered.

It reads where ``CUSTOMERIO_AUDIT`` says the server writes (the file, or the Redis stream every
replica writes to) and prints the last ``--limit`` records that match ``--since``, ``--tool`` and
``--workspace``, oldest first. Records hold text that clients chose (ids in paths, OAuth
subjects): the table shows every cell neutralised and cut to fit (``text_safety.clip``), and
``--json`` writes ASCII-only JSON, so no control character reaches the terminal either way.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from customerio_mcp.text_safety import clip

if TYPE_CHECKING:  # imported when the command runs: the parser (and --help) must not wait for them
    from customerio_mcp.serving.audit_sinks import AuditSink
    from customerio_mcp.settings import Settings

DEFAULT_LIMIT = 100
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS: tuple[tuple[str, int], ...] = (
    ("time (UTC)", 19),
    ("workspace", 16),
    ("principal", 24),
    ("tool", 32),
    ("request", 60),
    ("outcome", 30),
    ("confirmation", 15),
    ("sent ids", 40),
)
"""Each column's heading and how many characters of a cell it shows."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``1h``, ``7d``, ``2w`` before now, or an ISO date or timestamp (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    relative = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{clip(text)!s} is neither a duration (30m, 1h, 7d, 2w) nor a date or time (2026-12-01, "
            "2026-12-01T09:30:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``audit`` command's options (refused with any other command)."""
    group = parser.add_argument_group("audit (customerio-mcp audit)")
    group.add_argument("--since", type=parse_since, metavar="WHEN", help="only records from then on: 1h, 7d, a date")
    group.add_argument("--tool", metavar="NAME", help="only calls of this tool")
    group.add_argument("--workspace", metavar="SITE_ID", help="only calls to this workspace")
    group.add_argument("--limit", type=int, default=None, metavar="N", help=f"the last N (default {DEFAULT_LIMIT})")
    group.add_argument("--json", action="store_true", default=None, help="JSON Lines instead of a table")


AUDIT_OPTIONS = ("since", "tool", "workspace", "limit", "json")


def misplaced_options(args: argparse.Namespace) -> str | None:
    """The complaint for an audit option given to another command, or None."""
    given = [name for name in AUDIT_OPTIONS if getattr(args, name) is not None]
    if args.command == "audit" or not given:
        return None
    hint = " (to serve only some tools: --tools)" if "tool" in given else ""
    return f"--{given[0]} is an option of `customerio-mcp audit`, not of {args.command}{hint}"


async def _lines(sink: AuditSink, since: datetime | None) -> AsyncIterator[str]:
    from customerio_mcp.serving.audit_sinks import FileSink

    if isinstance(sink, FileSink):
        for line in sink.read():
            yield line
        return
    # Stream ids are Redis's clock; a minute's margin for its skew, then each record's own time decides.
    start = int((since - timedelta(minutes=1)).timestamp() * 1000) if since is not None else None
    async for line in sink.read(start):
        yield line


def _matches(record: dict[str, Any], args: argparse.Namespace) -> bool:
    if args.tool is not None and record.get("tool") != args.tool:
        return False
    if args.workspace is not None and record.get("workspace") != args.workspace:
        return False
    if args.since is not None:
        try:
            return datetime.fromisoformat(str(record.get("time"))) >= args.since
        except ValueError:
            return False
    return True


async def read_records(sink: AuditSink, args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """The last ``--limit`` records that match, oldest first, and how many lines were not records at all."""
    limit = DEFAULT_LIMIT if args.limit is None else args.limit
    kept: deque[dict[str, Any]] = deque(maxlen=limit if limit > 0 else None)
    unreadable = 0
    async for line in _lines(sink, args.since):
        if not line.strip():
            continue  # a torn write's separator
        try:
            record = json.loads(line)
        except ValueError:
            unreadable += 1
            continue
        if not isinstance(record, dict):
            unreadable += 1
        elif _matches(record, args):
            kept.append(record)
    return list(kept), unreadable


def _sent_ids(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return "-"
    if isinstance(value.get("batch"), list):
        keys = [str(key) for key in value["batch"] if key]
        return f"{len(keys)} in batch: {', '.join(keys)}" if keys else "-"
    return ", ".join(str(key) for key in value.values())


def _outcome(record: dict[str, Any]) -> str:
    text = str(record.get("outcome", "?"))
    if record.get("status") is not None:
        text += f" {record['status']}"
    if record.get("error"):
        text += f" ({record['error']})"
    return text


def _row(record: dict[str, Any]) -> tuple[str, ...]:
    cells = (
        str(record.get("time", ""))[:19].replace("T", " "),  # to the second; the JSON has milliseconds
        str(record.get("workspace", "")),
        str(record.get("principal", "")),
        str(record.get("tool", "")),
        f"{record.get('method', '')} {record.get('path', '')}",
        _outcome(record),
        str(record.get("confirmation", "")),
        _sent_ids(record.get("sent_ids")),
    )
    return tuple(clip(cell, width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))


def print_records(records: Iterable[dict[str, Any]], as_json: bool, out: TextIO) -> None:
    if as_json:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
        return
    from customerio_mcp.cli.operator_commands import write_table

    write_table([tuple(heading for heading, _ in COLUMNS), *map(_row, records)], out)


async def run_audit(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the records (to stdout unless ``out``); 1 when there is no trail to read (off) or it cannot be read."""
    from customerio_mcp.serving.audit_sinks import audit_sink, described_failure

    sink = audit_sink(settings)
    if sink is None:
        sys.stderr.write("customerio-mcp: CUSTOMERIO_AUDIT is off: the server records nothing\n")
        return 1
    try:
        records, unreadable = await read_records(sink, args)
    except Exception as error:  # Redis away, a file without permission: say which, and what it was
        sys.stderr.write(f"customerio-mcp: cannot read the audit trail ({sink.shown}): {described_failure(error)}\n")
        return 1
    finally:
        sink.close()
    if unreadable:
        sys.stderr.write(f"customerio-mcp: {unreadable} line(s) of {sink.shown} are not audit records; skipped\n")
    if not records and not args.json:
        sys.stderr.write(f"customerio-mcp: no audit records match in {sink.shown}\n")
        return 0
    print_records(records, bool(args.json), out or sys.stdout)
    return 0
