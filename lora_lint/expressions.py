"""Rule expressions: simpleeval's language, compiled once to Python code where that is provably the same.

A rule's condition and message fields are simpleeval expressions, and simpleeval
decides what they mean: it never runs ``eval`` on a rule author's text, so a rule folder
cannot run code. Walking simpleeval's tree for every rule and every config costs more
than the rest of the rule pass, so :func:`compile_expression` turns the common subset of
the language into a Python code object, once per expression (and the rule cache keeps
it between runs):

- only node types simpleeval itself evaluates are accepted (names, constants, boolean,
  comparison and arithmetic operators, conditional expressions, subscripts, list /
  tuple / set / dict literals, list comprehensions, calls of the rule functions and of
  methods); anything else (``**``, shifts, f-strings, lambdas, walrus, attribute names
  simpleeval refuses, names starting with ``__``) is left to simpleeval;
- every attribute access goes through :func:`_attribute`, which reads ``a.b`` as
  simpleeval does (the attribute, else the item ``a["b"]``) but hands back only plain
  data and methods of plain data: anything else is left to simpleeval;
- ``+`` runs natively on numbers and on short strings, lists and tuples, ``*`` on
  numbers only (simpleeval bounds the length of what they build); comprehensions count
  their elements against simpleeval's limit; generator expressions build lists, as in
  simpleeval;
- the code runs with no builtins: its globals are the facts, the rule functions, and
  these helpers.

Whenever compiled code raises, for any reason, :func:`evaluate` evaluates the
expression again with simpleeval, so every error message, and every case the subset
does not model, is simpleeval's own.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any

FUNCTIONS = {
    "len": len, "abs": abs, "min": min, "max": max, "round": round, "sqrt": math.sqrt, "any": any,
    "all": all, "sorted": sorted, "int": int, "float": float, "str": str, "log2": math.log2,
}  # fmt: skip
"""The functions a rule may call."""
_COMPOUND_TYPES = {"list": list, "tuple": tuple, "dict": dict, "set": set}
"""Added by simpleeval's ``EvalWithCompoundTypes``, the evaluator rules use."""
_ALL_FUNCTIONS = {**FUNCTIONS, **_COMPOUND_TYPES}

_MAX_LITERAL = 100_000  # simpleeval.MAX_STRING_LENGTH: longer literals are simpleeval's to refuse
_MAX_COMPREHENSION = 10_000  # simpleeval.MAX_COMPREHENSION_LENGTH: elements per evaluation
_REFUSED_PREFIXES = ("_", "func_")  # simpleeval.DISALLOW_PREFIXES, for attribute names
_REFUSED_METHODS = frozenset({"format", "format_map", "mro", "tb_frame", "gi_frame", "ag_frame", "cr_frame", "exec"})
_PLAIN = frozenset({int, float, str, bool, type(None), list, dict, tuple, set, frozenset})
_NUMBERS = frozenset({int, float, bool})
_SEQUENCES = frozenset({str, list, tuple})
_BUILTIN_METHOD = type({}.get)  # a method of a built-in type, bound: {}.get, "".join
_CALL_PREFIX = "__fn_"


class _NotCompiled(Exception):
    """Raised by compiled code where simpleeval must decide (it is then evaluated by simpleeval)."""


def _attribute(value: Any, name: str) -> Any:
    """``value.name`` read as simpleeval reads it: the attribute, else the item ``value[name]``."""
    try:
        found = getattr(value, name)
    except (AttributeError, TypeError):
        try:
            found = value[name]
        except (KeyError, TypeError):
            raise _NotCompiled from None
    kind = type(found)
    if kind in _PLAIN or (kind is _BUILTIN_METHOD and type(found.__self__) in _PLAIN):
        return found
    raise _NotCompiled


def _add(left: Any, right: Any) -> Any:
    if type(left) in _NUMBERS and type(right) in _NUMBERS:
        return left + right
    if type(left) is type(right) and type(left) in _SEQUENCES and len(left) + len(right) <= _MAX_LITERAL:
        return left + right  # simpleeval's bound on the length of a sum
    raise _NotCompiled


def _multiply(left: Any, right: Any) -> Any:
    if type(left) in _NUMBERS and type(right) in _NUMBERS:
        return left * right
    raise _NotCompiled


_budget = [0]


def _fresh_budget() -> None:
    """Called first by an expression with comprehensions: simpleeval's limit holds per evaluation."""
    _budget[0] = _MAX_COMPREHENSION


def _limited(iterable: Any) -> Any:
    """The elements of ``iterable``, counted against the evaluation's budget."""
    for value in iterable:
        _budget[0] -= 1
        if _budget[0] < 0:
            raise _NotCompiled
        yield value


HELPERS = {
    "__builtins__": {},
    "__attribute": _attribute,
    "__add": _add,
    "__multiply": _multiply,
    "__limited": _limited,
    "__fresh_budget": _fresh_budget,
    **{_CALL_PREFIX + name: function for name, function in _ALL_FUNCTIONS.items()},
}
"""What compiled code needs besides the facts; names a rule cannot write (they start with ``__``)."""


def names_for(facts: dict[str, Any]) -> dict[str, Any]:
    """The namespace expressions over ``facts`` run in: set ``options`` and ``item`` before each rule."""
    return {**_ALL_FUNCTIONS, **facts, **HELPERS}


def evaluate(expression: str, code: CodeType | None, names: dict[str, Any]) -> Any:
    """The value of ``expression``: its compiled ``code`` when there is one, else (or on any error) simpleeval's."""
    if code is not None:
        try:
            return eval(code, names)  # code compiled by compile_expression from a checked tree
        except Exception:  # noqa: BLE001, S110 - simpleeval evaluates it again and says what is wrong
            pass
    return _simpleeval(expression, {name: value for name, value in names.items() if name not in HELPERS})


_EVALUATOR: Any = None
_PARSED: dict[str, Any] = {}


def _simpleeval(expression: str, names: dict[str, Any]) -> Any:
    global _EVALUATOR
    if _EVALUATOR is None:
        from simpleeval import EvalWithCompoundTypes  # imported on first use: ~4 ms

        _EVALUATOR = EvalWithCompoundTypes(functions=dict(FUNCTIONS))
    _EVALUATOR.names = names
    parsed = _PARSED.get(expression)
    if parsed is None:
        parsed = _PARSED[expression] = _EVALUATOR.parse(expression)
    return _EVALUATOR.eval(expression, previously_parsed=parsed)


def compile_expression(expression: str) -> CodeType | None:
    """Python code with simpleeval's meaning for ``expression``, or None when simpleeval must evaluate it."""
    import ast  # only when the rule cache is built

    try:
        tree = ast.parse(expression.strip())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    compiler = _Compiler(ast)
    try:
        body = compiler.visit(tree.body[0].value)
        if compiler.comprehensions:  # (__fresh_budget(), body)[1]
            pair = ast.Tuple([compiler._call("__fresh_budget"), body], ast.Load())
            body = ast.Subscript(pair, ast.Constant(1), ast.Load())
        module = ast.Expression(body)
        ast.fix_missing_locations(module)
        return compile(module, "<rule expression>", "eval")
    except (_NotCompiled, RecursionError, MemoryError, SyntaxError, ValueError):
        return None


class _Compiler:
    """Checks a simpleeval tree node by node and rewrites it into plain Python with the helpers above."""

    def __init__(self, ast: Any) -> None:
        self.ast = ast
        self.native_binary = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.BitXor, ast.BitOr, ast.BitAnd)
        self.native_unary = (ast.Not, ast.USub, ast.UAdd, ast.Invert)
        self.comparisons = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)
        self.comprehensions = 0

    def visit(self, node: Any) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise _NotCompiled
        return method(node)

    def _call(self, helper: str, *args: Any) -> Any:
        ast = self.ast
        return ast.Call(ast.Name(helper, ast.Load()), list(args), [])

    def visit_Constant(self, node: Any) -> Any:
        if hasattr(node.value, "__len__") and len(node.value) > _MAX_LITERAL:
            raise _NotCompiled
        return node

    def visit_Name(self, node: Any) -> Any:
        if node.id.startswith("__") or not isinstance(node.ctx, self.ast.Load):
            raise _NotCompiled
        return node

    def visit_BoolOp(self, node: Any) -> Any:
        return self.ast.BoolOp(node.op, [self.visit(value) for value in node.values])

    def visit_UnaryOp(self, node: Any) -> Any:
        if not isinstance(node.op, self.native_unary):
            raise _NotCompiled
        return self.ast.UnaryOp(node.op, self.visit(node.operand))

    def visit_BinOp(self, node: Any) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, self.ast.Add):
            return self._call("__add", left, right)
        if isinstance(node.op, self.ast.Mult):
            return self._call("__multiply", left, right)
        if not isinstance(node.op, self.native_binary):
            raise _NotCompiled  # ** and shifts: simpleeval bounds them
        return self.ast.BinOp(left, node.op, right)

    def visit_Compare(self, node: Any) -> Any:
        if not all(isinstance(op, self.comparisons) for op in node.ops):
            raise _NotCompiled
        return self.ast.Compare(self.visit(node.left), node.ops, [self.visit(c) for c in node.comparators])

    def visit_IfExp(self, node: Any) -> Any:
        return self.ast.IfExp(self.visit(node.test), self.visit(node.body), self.visit(node.orelse))

    def visit_Attribute(self, node: Any) -> Any:
        if node.attr.startswith(_REFUSED_PREFIXES) or node.attr in _REFUSED_METHODS:
            raise _NotCompiled
        return self._call("__attribute", self.visit(node.value), self.ast.Constant(node.attr))

    def visit_Call(self, node: Any) -> Any:
        ast = self.ast
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
            raise _NotCompiled
        if isinstance(node.func, ast.Name):
            if node.func.id not in _ALL_FUNCTIONS:
                raise _NotCompiled
            func = ast.Name(_CALL_PREFIX + node.func.id, ast.Load())
        elif isinstance(node.func, ast.Attribute):
            func = self.visit(node.func)
        else:
            raise _NotCompiled
        keywords = [ast.keyword(k.arg, self.visit(k.value)) for k in node.keywords]
        return ast.Call(func, [self.visit(arg) for arg in node.args], keywords)

    def visit_Subscript(self, node: Any) -> Any:
        return self.ast.Subscript(self.visit(node.value), self.visit(node.slice), self.ast.Load())

    def visit_Slice(self, node: Any) -> Any:
        parts = [None if part is None else self.visit(part) for part in (node.lower, node.upper, node.step)]
        return self.ast.Slice(*parts)

    def visit_List(self, node: Any) -> Any:
        return self.ast.List([self._element(e) for e in node.elts], self.ast.Load())

    def visit_Tuple(self, node: Any) -> Any:
        return self.ast.Tuple([self._element(e) for e in node.elts], self.ast.Load())

    def visit_Set(self, node: Any) -> Any:
        return self.ast.Set([self._element(e) for e in node.elts])

    def visit_Dict(self, node: Any) -> Any:
        if any(key is None for key in node.keys):
            raise _NotCompiled  # {**x}
        return self.ast.Dict([self.visit(k) for k in node.keys], [self.visit(v) for v in node.values])

    def _element(self, node: Any) -> Any:
        if isinstance(node, self.ast.Starred):
            raise _NotCompiled
        return self.visit(node)

    def visit_ListComp(self, node: Any) -> Any:
        self.comprehensions += 1
        return self.ast.ListComp(self.visit(node.elt), [self._generator(g) for g in node.generators])

    visit_GeneratorExp = visit_ListComp  # simpleeval builds a list for a generator expression too

    def _generator(self, node: Any) -> Any:
        ast = self.ast
        if node.is_async:
            raise _NotCompiled
        self._target(node.target)
        iterable = self._call("__limited", self.visit(node.iter))
        return ast.comprehension(node.target, iterable, [self.visit(test) for test in node.ifs], 0)

    def _target(self, node: Any) -> None:
        """Comprehension targets simpleeval binds: names, and tuples or lists of them."""
        ast = self.ast
        if isinstance(node, ast.Name) and not node.id.startswith("__"):
            return
        if isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self._target(element)
            return
        raise _NotCompiled
