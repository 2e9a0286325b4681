"""The autoscale formula's tokens: numbers, strings, names (``$`` first for the service's
variables, optional for the user's), operators and punctuation; ``//`` and ``/* */`` comments
and line breaks are skipped, as the documentation allows ("can include line breaks and
comments").

Source: learn.microsoft.com, "Create a formula to automatically scale compute nodes in a Batch
pool" (statements, operators, types).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from jobprep_release.backends.docker.core.autoscale.errors import Position, syntax_error


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    OPERATOR = "operator"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    position: Position


# Longest operators first, so that `<=` is not read as `<` then `=`.
_OPERATORS = (
    "&&", "||", "==", "!=", "<=", ">=",
    "+", "-", "*", "/", "<", ">", "!", "?", ":", "=", ";", ",", ".", "(", ")",
)  # fmt: skip
_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")
_SPACE = re.compile(r"\s+")


def tokens(formula: str) -> list[Token]:
    """The formula's tokens, ending with an `END` token; `FormulaError`
    (``AutoScalingFormulaSyntaxError``) for a character that starts no token or a string or
    comment left open."""
    found: list[Token] = []
    index, line, line_start = 0, 1, 0

    def here(at: int) -> Position:
        return Position(line, at - line_start + 1)

    def advance(to: int) -> None:
        nonlocal index, line, line_start
        newlines = formula.count("\n", index, to)
        if newlines:
            line += newlines
            line_start = formula.rindex("\n", index, to) + 1
        index = to

    while index < len(formula):
        char = formula[index]
        if space := _SPACE.match(formula, index):
            advance(space.end())
            continue
        if formula.startswith("//", index):
            end = formula.find("\n", index)
            advance(len(formula) if end < 0 else end)
            continue
        if formula.startswith("/*", index):
            end = formula.find("*/", index + 2)
            if end < 0:
                raise syntax_error("comment not closed", here(index))
            advance(end + 2)
            continue
        if char in "\"'":
            end = formula.find(char, index + 1)
            if end < 0 or "\n" in formula[index:end]:
                raise syntax_error("string not closed", here(index))
            found.append(Token(Kind.STRING, formula[index + 1 : end], here(index)))
            advance(end + 1)
            continue
        if number := _NUMBER.match(formula, index):
            found.append(Token(Kind.NUMBER, number.group(), here(index)))
            advance(number.end())
            continue
        if name := _NAME.match(formula, index):
            found.append(Token(Kind.NAME, name.group(), here(index)))
            advance(name.end())
            continue
        operator = next((op for op in _OPERATORS if formula.startswith(op, index)), None)
        if operator is None:
            raise syntax_error(f"unexpected character '{char}'", here(index))
        found.append(Token(Kind.OPERATOR, operator, here(index)))
        advance(index + len(operator))
    found.append(Token(Kind.END, "", here(index)))
    return found
