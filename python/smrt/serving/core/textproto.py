"""A reader for the protobuf text format of TF Serving's config files, without protobuf.

``--model_config_file`` and ``--batching_parameters_file`` are text protos such as::

    model_config_list {
      config { name: "mnist" base_path: "/models/mnist" model_platform: "tensorflow" }
    }

:func:`parse` turns one into nested dicts: every field maps to the list of its values (a
field may repeat), scalars as ``str``/``int``/``float``/``bool`` and messages as dicts. The
schema is applied by the caller (:mod:`.config`), which knows which fields exist.
"""

from __future__ import annotations

import ast
import re
from typing import Union

from smrt.errors import Error

Value = Union[str, int, float, bool, "Message"]
Message = dict[str, list[Value]]

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[A-Za-z_][\w.]*)
  | (?P<punct>[{}<>:;,\[\]])
""", re.VERBOSE)


class TextProtoError(Error, ValueError):
    """The text does not parse as a protobuf text-format message."""


def parse(text: str, source: str = "<text>") -> Message:
    """Parses a text-format message into ``{field: [values...]}`` (see the module docstring)."""
    return _Parser(text, source).message(end=None)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        pos, line = 0, 1
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                raise TextProtoError(
                    f"{source}: unexpected character {text[pos]!r} (line {line})")
            kind = match.lastgroup or ""
            if kind != "space":
                self.tokens.append((kind, match.group(), line))
            line += match.group().count("\n")
            pos = match.end()
        self.source = source
        self.i = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _fail(self, what: str) -> TextProtoError:
        token = self._peek()
        where = f"line {token[2]}, at {token[1]!r}" if token else "end of file"
        return TextProtoError(f"{self.source}: {what} ({where})")

    def _take(self, text: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "punct" and token[1] == text:
            self.i += 1
            return True
        return False

    def message(self, end: str | None) -> Message:
        fields: Message = {}
        while True:
            token = self._peek()
            if token is None:
                if end is not None:
                    raise self._fail(f"missing {end!r}")
                return fields
            if end is not None and self._take(end):
                return fields
            if token[0] != "ident":
                raise self._fail("expected a field name")
            self.i += 1
            values = fields.setdefault(token[1], [])
            has_colon = self._take(":")
            if self._take("["):  # repeated scalars or messages in a list
                while not self._take("]"):
                    values.append(self._value(has_colon))
                    self._take(",")
            else:
                values.append(self._value(has_colon))
            if not self._take(";"):
                self._take(",")

    def _value(self, has_colon: bool) -> Value:
        for opening, closing in (("{", "}"), ("<", ">")):
            if self._take(opening):
                return self.message(end=closing)
        token = self._peek()
        if not has_colon or token is None:
            raise self._fail("expected ':' and a value, or a '{' message")
        kind, text, _ = token
        self.i += 1
        if kind == "string":
            parts = [ast.literal_eval(text)]
            while (nxt := self._peek()) is not None and nxt[0] == "string":  # "a" "b" == "ab"
                parts.append(ast.literal_eval(nxt[1]))
                self.i += 1
            return "".join(parts)
        if kind == "number":
            is_hex = text.lower().lstrip("+-").startswith("0x")
            number = text if is_hex else text.rstrip("fF")
            if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", number):
                return int(number, 0) if not re.fullmatch(r"[-+]?0\d+", number) else int(number, 8)
            return float(number)
        if kind == "ident":
            lowered = text.lower()
            if lowered in ("true", "t"):
                return True
            if lowered in ("false", "f"):
                return False
            if lowered in ("inf", "infinity", "nan"):
                return float(lowered)
            return text  # an enum value's name
        self.i -= 1
        raise self._fail("expected a value")
