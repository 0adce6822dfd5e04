"""Tokens → tree, refusing at save time everything that could only fail later.

Grammar (``and`` binds tighter than ``or``)::

    condition  := either END
    either     := all (("or" | "||") all)*
    all        := unary (("and" | "&&") unary)*
    unary      := "not" unary | "(" either ")" | test
    test       := operand [["not"] comparator right]   -- bare: has(), any(x, …), [CONNECTED]
    comparator := == != < <= > >= =~ !~ contains in
    operand    := placeholder | number | duration | string | word | true | false | null
                | len(placeholder) | has(placeholder) | any(operand, …) | pat(raw)
"""

from __future__ import annotations

import re
from typing import NoReturn

from probes.conditions.errors import ConditionError
from probes.conditions.lexer import Token, tokenize
from probes.conditions.nodes import (
    All,
    AnyOf,
    AnySubject,
    Comparison,
    Either,
    HasCall,
    LenCall,
    ListOf,
    Literal,
    Negation,
    Node,
    Operand,
    Pattern,
    PlaceholderRef,
    RangeOf,
    Regex,
    Truth,
)
from probes.conditions.regexes import compile_pattern, compile_regex

COMPARATORS = {"==", "!=", "<", "<=", ">", ">=", "=~", "!~"}
ORDERING = {"<", "<=", ">", ">="}
_STARTS_LIKE_NUMBER = re.compile(r"-?\d")


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    # ------------------------------------------------------------ helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "END":
            self.index += 1
        return token

    def at(self, kind: str, *values: str) -> bool:
        token = self.token
        return token.kind == kind and (not values or token.value in values)

    def fail(self, message: str, position: int | None = None) -> NoReturn:
        raise ConditionError(message, self.token.pos if position is None else position, self.text)

    def source(self, start: int, end: int) -> str:
        return self.text[start:end]

    def expect_close(self, opened: Token, what: str) -> Token:
        if self.at(")"):
            return self.advance()
        if self.at("END"):
            self.fail(f"expected ')' to close {what}")
        self.fail(f"expected ')' to close {what} (opened at position {opened.pos})")

    # ------------------------------------------------------------ conditions

    def parse(self) -> Node:
        if self.at("END"):
            self.fail("the condition is empty", 0)
        node = self.either()
        if self.at(")"):
            self.fail("unmatched ')'")
        if not self.at("END"):
            hint = ""
            if self.tokens[self.index - 1].kind in ("WORD", "NUMBER", "STRING"):
                hint = " (quote a value that contains spaces)"
            self.fail(f"expected 'and', 'or' or the end of the condition{hint}")
        return node

    def either(self) -> Node:
        children = [self.all()]
        while self.at("KEYWORD", "or") or self.at("OP", "||"):
            self.advance()
            children.append(self.all())
        return children[0] if len(children) == 1 else Either(children)

    def all(self) -> Node:
        children = [self.unary()]
        while self.at("KEYWORD", "and") or self.at("OP", "&&"):
            self.advance()
            children.append(self.unary())
        return children[0] if len(children) == 1 else All(children)

    def unary(self) -> Node:
        if self.at("KEYWORD", "not"):
            self.advance()
            return Negation(self.unary())
        if self.at("("):
            opened = self.advance()
            node = self.either()
            if self.at("END"):
                self.fail("unclosed '('", opened.pos)
            if not self.at(")"):
                self.fail("expected ')', 'and' or 'or'")
            self.advance()
            return node
        if self.at("END") or self.at(")"):
            if self.index == 0:
                self.fail("expected a condition")
            self.fail(f"expected a condition after '{self.tokens[self.index - 1].text}'")
        if self.at("KEYWORD", "and", "or") or self.at("OP", "&&", "||"):
            self.fail(f"expected a condition before '{self.token.text}'")
        return self.test()

    def test(self) -> Node:
        left = self.operand()
        negated = False
        if self.at("KEYWORD", "not") and self.tokens[self.index + 1].value in ("in", "contains"):
            self.advance()
            negated = True
        token = self.token
        is_operator = token.kind == "OP" and token.value in COMPARATORS
        if is_operator or (token.kind == "KEYWORD" and token.value in ("contains", "in")):
            op = self.advance().value
        else:
            return self.bare(left)
        if op == "in":
            right = self.in_right()
        elif op in ("=~", "!~"):
            right = self.regex_right(op)
        else:
            right = self.operand(after=op)
        return self.comparison(left, op, right, negated, token)

    def bare(self, left: Operand) -> Node:
        """A test without an operator, where that means something; else the usual error."""
        if isinstance(left, HasCall):
            return Truth(left)
        if isinstance(left, PlaceholderRef) and left.name == "CONNECTED":
            return Truth(left)
        if isinstance(left, Literal) and left.kind == "literal" and left.value is not None:
            return Truth(left)
        if isinstance(left, AnyOf):
            if len(left.options) < 2:
                self.fail("any(x, a, b, …) needs a value and what it may equal", left.pos)
            return AnySubject(
                left.text, left.pos, left.options[0], left.subject_end, left.options[1:]
            )
        if self.at("WORD") and self.token.text in ("=", "=>", "=<", "<>", "!"):
            suggestion = {"=": "==", "=>": ">=", "=<": "<=", "<>": "!=", "!": "!="}
            self.fail(
                f"unknown operator '{self.token.text}'; did you mean "
                f"'{suggestion[self.token.text]}'?"
            )
        self.fail("expected an operator")

    def comparison(
        self, left: Operand, op: str, right: Operand, negated: bool, op_token: Token
    ) -> Comparison:
        if isinstance(left, AnyOf | Pattern) and not isinstance(right, AnyOf | Pattern):
            left, right = right, left  # Gatus accepts any(200, 429) == [STATUS]
        for side in (left, right):
            if isinstance(side, AnyOf | Pattern) and (op not in ("==", "!=") or side is left):
                name = "any()" if isinstance(side, AnyOf) else "pat()"
                if side is left:
                    self.fail(f"{name} cannot be compared with another {name}", side.pos)
                self.fail(f"{name} works only with == and !=", op_token.pos)
        if op in ORDERING:
            for side in (left, right):
                looks_numeric = isinstance(side, Literal) and side.kind == "word"
                if looks_numeric and _STARTS_LIKE_NUMBER.match(side.text):
                    self.fail(
                        "expected a number or a duration such as 300ms, 2s, 5m, 1h or 14d",
                        side.pos,
                    )
        return Comparison(left, op, right, negated)

    # ------------------------------------------------------------ operands

    def operand(self, after: str | None = None) -> Operand:
        token = self.token
        if token.kind == "PLACEHOLDER":
            self.advance()
            return self._placed(PlaceholderRef(token.text, token.value, token.steps), token)
        if token.kind in ("NUMBER", "STRING", "WORD", "LITERAL"):
            self.advance()
            kind = token.kind.lower()
            return self._placed(Literal(token.text, token.value, kind), token)
        if token.kind == "FUNC":
            return self.call()
        where = f" after '{after}'" if after else ""
        if token.kind == "END":
            self.fail(f"expected a value{where}")
        if token.kind == "RANGE":
            self.fail("a range goes after 'in': [STATUS] in 200..299")
        self.fail(f"expected a placeholder or a value{where}, not '{token.text}'")

    def call(self) -> Operand:
        name_token = self.advance()
        name = name_token.value
        opened = self.advance()  # the lexer made FUNC only when "(" follows
        if name == "pat":
            raw = self.advance()
            close = self.expect_close(opened, "pat(")
            regex = compile_pattern(raw, self.text)
            return self._placed(Pattern(self.source(name_token.pos, close.end), regex), name_token)
        if name in ("len", "has"):
            if not self.at("PLACEHOLDER"):
                self.fail(f"{name}() takes a placeholder such as [BODY].items")
            argument = self.operand()
            close = self.expect_close(opened, f"{name}(")
            node_type = LenCall if name == "len" else HasCall
            text = self.source(name_token.pos, close.end)
            return self._placed(node_type(text, argument), name_token)  # type: ignore[arg-type]
        # any
        options: list[Operand] = []
        subject_end = 0
        while not self.at(")"):
            if options:
                if not self.at(","):
                    if self.at("END"):
                        self.fail("expected ')' to close any(")
                    self.fail("expected ',' or ')'")
                self.advance()
            if self.at("FUNC"):
                self.fail("any() takes placeholders and values, not functions")
            options.append(self.operand(after="any(" if not options else ","))
            if len(options) == 1:
                subject_end = self.tokens[self.index - 1].end
        if not options:
            self.fail("any() needs at least one value", name_token.pos)
        close = self.advance()
        text = self.source(name_token.pos, close.end)
        return self._placed(AnyOf(text, options, subject_end=subject_end), name_token)

    def in_right(self) -> Operand:
        token = self.token
        if token.kind == "RANGE":
            self.advance()
            low, high = token.value
            return self._placed(RangeOf(token.text, low, high), token)
        if token.kind == "(":
            opened = self.advance()
            items: list[Operand] = [self.operand(after="(")]
            while self.at(","):
                self.advance()
                items.append(self.operand(after=","))
            close = self.expect_close(opened, "the list")
            return self._placed(ListOf(self.source(opened.pos, close.end), items), opened)
        if token.kind == "PLACEHOLDER":
            return self.operand()
        self.fail("expected a range such as 200..299 or a list such as (200, 201) after 'in'")

    def regex_right(self, op: str) -> Operand:
        token = self.token
        if token.kind not in ("STRING", "WORD", "NUMBER"):
            if token.kind == "END":
                self.fail(f"expected a regular expression after '{op}'")
            self.fail(f"expected a regular expression (a quoted string) after '{op}'")
        self.advance()
        return self._placed(Regex(token.text, compile_regex(token, self.text)), token)

    # ------------------------------------------------------------ positions

    @staticmethod
    def _placed(operand: Operand, token: Token) -> Operand:
        operand.pos = token.pos
        return operand


def parse_tree(text: str) -> Node:
    """The tree of a condition, or ``ConditionError`` pointing at the offending character."""
    return Parser(text).parse()
