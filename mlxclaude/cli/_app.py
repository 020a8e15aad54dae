"""Typer as this CLI uses it: `new_app(...)` for the root and each group, `cls=Command` on each command.

Through Typer's documented `cls=` extension point, three things change:
- help in click's plain layout (rich_markup_mode=None): Rich's layout costs more start-up time than all
  of Typer, and reads help text in brackets as markup (a `[default: …]` in it vanished);
- usage lines name a required argument NAME, not {NAME} (Typer 0.29's braces read as an unfilled
  placeholder), and the Arguments section drops Typer's type labels (`KEY <str>`, `<list[str]>`);
- flags that Typer leaves at None (--help, --install-completion, --show-completion) default to False:
  Typer passes a bool through, but coerces a None with a pydantic TypeAdapter, and importing pydantic for
  that made `mlxclaude status` twice as slow to start as Typer itself.

The command modules do not use `from __future__ import annotations`: Typer would evaluate every string
annotation (each `Annotated[…, typer.Option(…)]` anew) on every start, which more than doubled the time
it takes to build the commands.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

_BRACED = re.compile(r"^\{(.+)\}(\.\.\.)?$")
_TYPE_LABEL = re.compile(r" <[^<>]+>$")


def _flags_default_to_false(params: list) -> list:
    for param in params:
        if getattr(param, "is_flag", False) and param.default is None:
            param.default = False
    return params


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list:
        return _flags_default_to_false(super().get_params(ctx))


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list:
        return _flags_default_to_false(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [_BRACED.sub(r"\1\2", piece) for piece in super().collect_usage_pieces(ctx)]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"argument": [], "option": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.param_type_name in sections:
                name, text = record
                if param.param_type_name == "argument":
                    name = _TYPE_LABEL.sub("", name)
                sections[param.param_type_name].append((name, text))
        for title, kind in (("Arguments", "argument"), ("Options", "option")):
            if sections[kind]:
                with formatter.section(title):
                    formatter.write_dl(sections[kind])


def new_app(**options: Any) -> typer.Typer:
    """A Typer app (the root or a command group) that prints its help when called without a command."""
    return typer.Typer(cls=Group, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                       **options)
