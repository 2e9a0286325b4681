"""The autoscale formula's grammar: statements separated by ``;`` (the last one's optional),
each an assignment ``name = expression`` or an expression (``stop()``); expressions with the
ternary ``?:``, ``||``, ``&&``, comparisons, ``+ -``, ``* /``, unary ``- !``, calls of the
documented functions, the sample methods of the service's variables (``$PendingTasks.GetSample
(...)``) and a timestamp's members (``time().weekday``).

The documentation's limits are checked here: at most 8 KB (``AutoScalingFormulaTooLong``) and
100 statements; a name assigned that the service only lets you read (``$PendingTasks = 1``), an
unknown function or sample method, and anything out of the grammar are
``AutoScalingFormulaSyntaxError``, with the line and column.

Source: learn.microsoft.com, "Create a formula to automatically scale compute nodes in a Batch
pool".
"""

from __future__ import annotations

from dataclasses import dataclass

from jobprep_release.backends.docker.core.autoscale import names
from jobprep_release.backends.docker.core.autoscale.errors import (
    TOO_LONG,
    FormulaError,
    Position,
    syntax_error,
)
from jobprep_release.backends.docker.core.autoscale.lexer import Kind, Token, tokens

MAX_LENGTH = 8192
MAX_STATEMENTS = 100


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    position: Position


@dataclass(frozen=True, slots=True)
class String:
    value: str
    position: Position


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    position: Position


@dataclass(frozen=True, slots=True)
class Unary:
    operator: str
    operand: Expression
    position: Position


@dataclass(frozen=True, slots=True)
class Binary:
    operator: str
    left: Expression
    right: Expression
    position: Position


@dataclass(frozen=True, slots=True)
class Ternary:
    condition: Expression
    then: Expression
    otherwise: Expression
    position: Position


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    arguments: tuple[Expression, ...]
    position: Position


@dataclass(frozen=True, slots=True)
class Method:
    """A sample method of a service variable: ``$ActiveTasks.GetSample(10)``."""

    variable: str
    method: str
    arguments: tuple[Expression, ...]
    position: Position


@dataclass(frozen=True, slots=True)
class Member:
    """A timestamp's member: ``time().hour``."""

    target: Expression
    member: str
    position: Position


Expression = Number | String | Name | Unary | Binary | Ternary | Call | Method | Member


@dataclass(frozen=True, slots=True)
class Statement:
    """``target = value``, or a bare `value` (`target` None) such as ``stop()``."""

    target: str | None
    value: Expression
    position: Position


_BINARY_LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/"))


def parse(formula: str) -> list[Statement]:
    """The formula's statements; `FormulaError` when it does not compile."""
    if len(formula.encode()) > MAX_LENGTH:
        raise FormulaError(TOO_LONG, f"the formula is longer than {MAX_LENGTH} bytes")
    statements = _Parser(tokens(formula)).formula()
    if len(statements) > MAX_STATEMENTS:
        raise syntax_error(f"the formula has more than {MAX_STATEMENTS} statements")
    if not statements:
        raise syntax_error("the formula has no statement")
    return statements


class _Parser:
    def __init__(self, found: list[Token]) -> None:
        self._tokens = found
        self._at = 0

    @property
    def _next(self) -> Token:
        return self._tokens[self._at]

    def _take(self) -> Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _is(self, *operators: str) -> bool:
        token = self._next
        return token.kind is Kind.OPERATOR and token.text in operators

    def _expect(self, operator: str) -> Token:
        if not self._is(operator):
            raise self._unexpected(f"'{operator}'")
        return self._take()

    def _unexpected(self, wanted: str) -> FormulaError:
        token = self._next
        seen = "the end of the formula" if token.kind is Kind.END else f"'{token.text}'"
        return syntax_error(f"expected {wanted}, found {seen}", token.position)

    def _at_end(self) -> bool:
        return self._next.kind is Kind.END

    def formula(self) -> list[Statement]:
        statements: list[Statement] = []
        while self._next.kind is not Kind.END:
            if self._is(";"):
                self._take()
                continue
            statements.append(self.statement())
            if not self._at_end():
                self._expect(";")
        return statements

    def statement(self) -> Statement:
        token = self._next
        following = self._tokens[self._at + 1]
        if token.kind is Kind.NAME and following.kind is Kind.OPERATOR and following.text == "=":
            self._at += 2
            if names.is_read_only(token.text):
                raise syntax_error(f"{token.text} cannot be assigned", token.position)
            if names.is_constant(token.text):
                raise syntax_error(f"{token.text} is a constant", token.position)
            return Statement(token.text, self.expression(), token.position)
        return Statement(None, self.expression(), token.position)

    def expression(self) -> Expression:
        condition = self.binary(0)
        if not self._is("?"):
            return condition
        question = self._take()
        then = self.expression()
        self._expect(":")
        return Ternary(condition, then, self.expression(), question.position)

    def binary(self, level: int) -> Expression:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self._is(*_BINARY_LEVELS[level]):
            operator = self._take()
            right = self.binary(level + 1)
            left = Binary(operator.text, left, right, operator.position)
        return left

    def unary(self) -> Expression:
        if self._is("-", "!"):
            operator = self._take()
            return Unary(operator.text, self.unary(), operator.position)
        return self.postfix()

    def postfix(self) -> Expression:
        value = self.primary()
        while self._is("."):
            self._take()
            token = self._take()
            if token.kind is not Kind.NAME or token.text.startswith("$"):
                self._at -= 1
                raise self._unexpected("a member or method name")
            if self._is("("):
                if not isinstance(value, Name) or not names.is_sampled(value.name):
                    raise syntax_error(
                        f"{token.text}() is a method of the service's sampled variables",
                        token.position,
                    )
                if token.text not in names.METHODS:
                    raise syntax_error(f"unknown method {token.text}", token.position)
                value = Method(value.name, token.text, self.arguments(), token.position)
            else:
                if token.text not in names.TIMESTAMP_MEMBERS:
                    raise syntax_error(f"unknown member {token.text}", token.position)
                value = Member(value, token.text, token.position)
        return value

    def arguments(self) -> tuple[Expression, ...]:
        self._expect("(")
        found: list[Expression] = []
        if not self._is(")"):
            found.append(self.expression())
            while self._is(","):
                self._take()
                found.append(self.expression())
        self._expect(")")
        return tuple(found)

    def primary(self) -> Expression:
        token = self._next
        if token.kind is Kind.NUMBER:
            self._take()
            return Number(float(token.text), token.position)
        if token.kind is Kind.STRING:
            self._take()
            return String(token.text, token.position)
        if token.kind is Kind.NAME:
            self._take()
            if self._is("("):
                if token.text not in names.FUNCTIONS:
                    raise syntax_error(f"unknown function {token.text}", token.position)
                return Call(token.text, self.arguments(), token.position)
            return Name(token.text, token.position)
        if self._is("("):
            self._take()
            inner = self.expression()
            self._expect(")")
            return inner
        raise self._unexpected("a value")
