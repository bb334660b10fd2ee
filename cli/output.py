"""How the command line shows things: kubectl-like tables with rich, or JSON and YAML."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from shoal.models.event import Event

# kubectl never cuts a cell short; when output goes to a pipe or file, neither does Shoal.
console = Console(
    highlight=False, soft_wrap=True, markup=False, width=None if sys.stdout.isatty() else 100_000
)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

OUTPUT_FORMATS = ("table", "wide", "json", "yaml", "name")


def age(since: float | None, now: float | None = None) -> str:
    """Kubernetes-style age: 42s, 7m, 3h, 12d."""
    if not since:
        return "<unknown>"
    seconds = max(0, int((now or time.time()) - since))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 2:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def table(columns: list[str], rows: list[list[str]], *, headers: bool = True) -> None:
    if not rows:
        return
    if not console.is_terminal:
        sys.stdout.write(plain_table(columns if headers else None, rows))
        return
    from rich import box
    from rich.table import Table

    grid = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", show_header=headers
    )
    for index, column in enumerate(columns):
        # Only the last column (messages, mostly) may wrap on a narrow terminal.
        grid.add_column(column, no_wrap=index < len(columns) - 1, min_width=len(column))
    for row in rows:
        grid.add_row(*row)
    console.print(grid)


def plain_table(columns: list[str] | None, rows: list[list[str]]) -> str:
    """A table for a pipe or a file, as kubectl prints one: columns three spaces apart, no
    rule under the header, nothing after the last cell of a line (scripts split on spaces)."""
    lines = ([columns] if columns is not None else []) + rows
    count = max(len(line) for line in lines)
    lines = [[str(cell) for cell in line] + [""] * (count - len(line)) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(count)]
    return "".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def fields(pairs: list[tuple[str, Any]], indent: int = 0) -> None:
    """``Key:   value`` lines, aligned, as kubectl describe prints them."""
    width = max((len(k) for k, _ in pairs), default=0) + 2
    for key, value in pairs:
        label = key + ":" if key else ""  # an empty key continues the line above
        console.print(" " * indent + f"{label:<{width}}{value}")


def events_table(events: list[Event], now: float) -> None:
    if not events:
        console.print("Events:        <none>")
        return
    console.print("Events:")
    table(
        ["TYPE", "REASON", "AGE", "FROM", "MESSAGE"],
        [[e.type, e.reason, age(e.time, now), e.source, e.message] for e in events[-20:]],
    )


def dump(obj: Any, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))
