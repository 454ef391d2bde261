"""What every `smart-vault` verb shares: the exit codes, `--output`, colours and the terminal's
width, and the global flags accepted after the verb (docs/operations.md, "Scripting")."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text


class Exit(IntEnum):
    """One meaning per code, whatever the verb (the README lists them)."""

    OK = 0  # it did what was asked
    FAILED = 1  # it ran and reports a failure: a backup, redrive or preflight that FAILED
    ERROR = 2  # it could not run: usage, input, environment, or AWS refused or was unreachable
    INTERNAL = 3  # a bug in smart-vault (set SMART_VAULT_DEBUG=1 for the traceback)


FORMATS = ("table", "text", "json")
PIPED_WIDTH = 200

# A status word, on a terminal, in the colour of what it means.
_STYLES = {
    "SUCCEEDED": "green",
    "passed": "green",
    "available": "green",
    "complete": "green",
    "succeeded": "green",
    "RUNNING": "yellow",
    "PENDING_REDRIVE": "yellow",
    "not_checked": "yellow",
    "skipped": "yellow",
    "partial": "yellow",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "red",
    "failed": "red",
    "denied": "red",
}


def status_cell(value: object) -> Text:
    """A status in its colour (plain text when colour is off: rich drops the style)."""
    text = str(value)
    return Text(text, style=_STYLES.get(text, ""))


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass
class Output:
    """How a verb prints: `table` (rich tables on the terminal's width, the default), `text`
    (the same rows tab-separated, never wrapped nor coloured) or `json` (one document on stdout)."""

    format: str = "table"
    color: bool = True

    @property
    def json(self) -> bool:
        return self.format == "json"

    def console(self, *, stderr: bool = False) -> Console:
        # On a terminal, its width; piped, wide enough that no id is cut (not COLUMNS, which
        # shells and test runners export at 80). NO_COLOR (no-color.org) is honoured by rich
        # itself; --no-color adds to it.
        stream = sys.stderr if stderr else sys.stdout
        width = None if stream.isatty() else PIPED_WIDTH
        return Console(stderr=stderr, width=width, no_color=not self.color or None, highlight=False)

    def document(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, default=_jsonable))

    def line(self, text: str) -> None:
        """A sentence for people: not part of the JSON document (stderr then, stdout otherwise)."""
        click.echo(text, err=self.json)

    def print(self, renderable: Any) -> None:
        """A table (or a line of rich markup) in the chosen format; nothing in JSON mode."""
        if self.json:
            return
        if self.format == "text" and isinstance(renderable, Table):
            click.echo("\n".join(_text_rows(renderable)))
            return
        if isinstance(renderable, Table):
            for column in renderable.columns:  # narrow terminals: an id wraps rather than loses its end
                column.overflow = "fold" if column.overflow == "ellipsis" else column.overflow
        self.console().print(renderable)


def _text_rows(table: Table) -> list[str]:
    """The title, the header and one tab-separated line per row; a cell's lines joined by '; '."""

    def flat(cell: object) -> str:
        return "; ".join(str(cell).splitlines()).replace("\t", " ")

    columns = [list(c.cells) for c in table.columns]
    rows = [[flat(c.header) for c in table.columns]]
    rows += [[flat(column[i]) for column in columns] for i in range(table.row_count)]
    title = [f"# {flat(table.title)}"] if table.title else []
    return title + ["\t".join(row) for row in rows]


def output_of(ctx: click.Context) -> Output:
    obj = ctx.find_root().obj or {}
    color = not obj.get("no_color") and not os.environ.get("NO_COLOR")
    return Output(format=obj.get("output") or "table", color=color)


def _set(key: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value not in (None, False):
            ctx.find_root().ensure_object(dict)[key] = value

    return callback


def global_options() -> list[click.Option]:
    """The group's flags, accepted after any verb with the same meaning (the AWS CLI's way)."""
    helps = {
        "stack": "CloudFormation stack (as before the verb).",
        "region": "AWS region of the stack (as before the verb).",
        "profile": "AWS profile (as before the verb).",
    }
    return [
        *(
            click.Option([f"--{key}", f"global_{key}"], expose_value=False, callback=_set(key), help=text)
            for key, text in helps.items()
        ),
        output_option(),
        no_color_option(),
    ]


def output_option() -> click.Option:
    return click.Option(
        ["--output", "output_format"],
        type=click.Choice(FORMATS),
        expose_value=False,
        callback=_set("output"),
        help="table (default), text (tab-separated) or json (docs/operations.md, 'JSON output').",
    )


def no_color_option() -> click.Option:
    return click.Option(
        ["--no-color", "no_color"],
        is_flag=True,
        expose_value=False,
        callback=_set("no_color"),
        help="No colours (or NO_COLOR).",
    )


def json_alias(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """The callback of `--json`, kept from before `--output`: the same as `--output json`."""
    _set("output")(ctx, param, "json" if value else None)
