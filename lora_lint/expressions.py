"""Rule expressions: a small, safe subset of Python, parsed once and compiled into closures.

A rule's ``when`` and the ``{fields}`` of its message are Python expressions over a config's facts.
:func:`parse` reads one with :mod:`ast` when the rule pack is loaded, refuses every construct not
listed below, and returns a tree of plain tuples, which is cached with the rule pack: a run with a
warm cache never imports ``ast``. :func:`compile_tree` turns a tree into nested closures, one small
function of ``names`` per node, once per process, so evaluating does no dispatch on node types.

Rule text never reaches ``eval``, ``exec`` or ``compile``: a platform team's rule folder cannot run
code. The only callables an expression reaches are :data:`FUNCTIONS` and the :data:`METHODS` of
plain values (str, dict, list, tuple, set, numbers); names and attributes starting with ``_`` are
refused, and an attribute of anything but a dictionary is refused. The size limits of simpleeval,
which evaluated rules before, are kept: no power above 4,000,000, no string or list of more than
100,000 items built by ``*`` or ``+``, no comprehension of more than 10,000 steps.
"""

from __future__ import annotations

import math
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Tree = tuple[Any, ...]
    Closure = Callable[[dict[str, Any]], Any]

MAX_POWER = 4_000_000
MAX_LENGTH = 100_000
MAX_COMPREHENSION_STEPS = 10_000

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len, "abs": abs, "min": min, "max": max, "round": round, "sqrt": math.sqrt, "log2": math.log2,
    "any": any, "all": all, "sorted": sorted, "int": int, "float": float, "str": str,
    "list": list, "tuple": tuple, "dict": dict, "set": set,
}  # fmt: skip
"""Functions an expression may call, or pass by name (``sorted(names, key=len)``)."""

_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isascii", "isdecimal",
    "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join",
    "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rpartition",
    "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper",
})  # fmt: skip
_SET_METHODS = frozenset({
    "difference", "intersection", "isdisjoint", "issubset", "issuperset", "symmetric_difference", "union",
})  # fmt: skip
METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    set: _SET_METHODS,
    frozenset: _SET_METHODS,
    int: frozenset({"bit_length"}),
    bool: frozenset({"bit_length"}),
    float: frozenset({"is_integer"}),
}
"""Methods an expression may call, by the exact type of the value. None of them changes the value
(facts are shared by every rule) and none formats with attribute access (``str.format``)."""
_ALL_METHODS = frozenset().union(*METHODS.values())


class ExpressionError(Exception):
    """An expression that is refused when parsed, or that fails when evaluated."""


# ---------------------------------------------------------------------------------------------------------------
# Parsing: Python source -> a tree of tuples (at rule-pack load time, cached)

_BINARY_OPERATORS = {
    "Add": "+", "Sub": "-", "Mult": "*", "Div": "/", "FloorDiv": "//", "Mod": "%", "Pow": "**",
    "LShift": "<<", "RShift": ">>", "BitOr": "|", "BitXor": "^", "BitAnd": "&",
}  # fmt: skip
_UNARY_OPERATORS = {"Not": "not", "USub": "-", "UAdd": "+", "Invert": "~"}
_COMPARISONS = {
    "Eq": "==", "NotEq": "!=", "Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">=",
    "In": "in", "NotIn": "not in", "Is": "is", "IsNot": "is not",
}  # fmt: skip
_REFUSED_NAMES = {
    "Lambda": "lambda", "NamedExpr": "assignment (:=)", "JoinedStr": "an f-string", "Await": "await",
    "Yield": "yield", "YieldFrom": "yield", "MatMult": "the @ operator",
}  # fmt: skip


def parse(source: str) -> Tree:
    """The checked tree of one expression; ExpressionError names what is refused."""
    import ast  # only when a rule pack is parsed, never on a warm cache

    try:
        body = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"invalid syntax ({exc.msg})") from None
    except ValueError as exc:  # a null byte
        raise ExpressionError(str(exc)) from None
    return _Parser().tree(body)


class _Parser:
    """Turns an ``ast`` node into tuples, one ``_<NodeName>`` method per allowed node type."""

    def tree(self, node: Any) -> Tree:
        kind = type(node).__name__
        convert = getattr(self, f"_{kind}", None)
        if convert is None:
            raise ExpressionError(f"{_REFUSED_NAMES.get(kind, kind)} is not allowed in rule expressions")
        return convert(node)

    def trees(self, nodes: list[Any]) -> tuple[Tree, ...]:
        return tuple(self.tree(node) for node in nodes)

    def _Constant(self, node: Any) -> Tree:
        if isinstance(node.value, (str, bytes)) and len(node.value) > MAX_LENGTH:
            raise ExpressionError(f"a literal of more than {MAX_LENGTH:,} characters")
        return ("constant", node.value)

    def _Name(self, node: Any) -> Tree:
        return ("name", _public(node.id))

    def _Attribute(self, node: Any) -> Tree:
        return ("attribute", self.tree(node.value), _public(node.attr))

    def _Subscript(self, node: Any) -> Tree:
        return ("subscript", self.tree(node.value), self.tree(node.slice))

    def _Slice(self, node: Any) -> Tree:
        return ("slice", *(None if part is None else self.tree(part) for part in (node.lower, node.upper, node.step)))

    def _Call(self, node: Any) -> Tree:
        args = self.trees(node.args)
        if any(keyword.arg is None for keyword in node.keywords):
            raise ExpressionError("**arguments are not allowed in rule expressions")
        keywords = tuple((keyword.arg, self.tree(keyword.value)) for keyword in node.keywords)
        kind = type(node.func).__name__
        if kind == "Name":
            if node.func.id not in FUNCTIONS:
                raise ExpressionError(f"unknown function {node.func.id!r} (functions: {', '.join(FUNCTIONS)})")
            return ("call", node.func.id, args, keywords)
        if kind == "Attribute":
            method = _public(node.func.attr)
            if method not in _ALL_METHODS:
                raise ExpressionError(f"unknown method {method!r}")
            return ("method", self.tree(node.func.value), method, args, keywords)
        self.tree(node.func)  # refuses a lambda as such
        raise ExpressionError("only functions and methods by name can be called")

    def _Starred(self, node: Any) -> Tree:
        return ("starred", self.tree(node.value))

    def _BinOp(self, node: Any) -> Tree:
        return ("binary", self.operator(node.op, _BINARY_OPERATORS), self.tree(node.left), self.tree(node.right))

    def _UnaryOp(self, node: Any) -> Tree:
        return ("unary", self.operator(node.op, _UNARY_OPERATORS), self.tree(node.operand))

    def _BoolOp(self, node: Any) -> Tree:
        return ("and" if type(node.op).__name__ == "And" else "or", self.trees(node.values))

    def _Compare(self, node: Any) -> Tree:
        pairs = zip(node.ops, node.comparators)
        steps = tuple((self.operator(op, _COMPARISONS), self.tree(right)) for op, right in pairs)
        return ("compare", self.tree(node.left), steps)

    def _IfExp(self, node: Any) -> Tree:
        return ("if", self.tree(node.test), self.tree(node.body), self.tree(node.orelse))

    def _List(self, node: Any) -> Tree:
        return ("list", self.trees(node.elts))

    def _Tuple(self, node: Any) -> Tree:
        return ("tuple", self.trees(node.elts))

    def _Set(self, node: Any) -> Tree:
        return ("set", self.trees(node.elts))

    def _Dict(self, node: Any) -> Tree:
        keys = [None if key is None else self.tree(key) for key in node.keys]  # None: {**mapping}
        return ("dict", tuple(zip(keys, self.trees(node.values))))

    def _ListComp(self, node: Any) -> Tree:
        return ("list-comprehension", self.tree(node.elt), self.generators(node.generators))

    _GeneratorExp = _ListComp  # evaluated eagerly, into a list

    def _SetComp(self, node: Any) -> Tree:
        return ("set-comprehension", self.tree(node.elt), self.generators(node.generators))

    def _DictComp(self, node: Any) -> Tree:
        return ("dict-comprehension", (self.tree(node.key), self.tree(node.value)), self.generators(node.generators))

    def generators(self, generators: list[Any]) -> tuple[Tree, ...]:
        out = []
        for generator in generators:
            if generator.is_async:
                raise ExpressionError("async comprehensions are not allowed in rule expressions")
            out.append((self.target(generator.target), self.tree(generator.iter), self.trees(generator.ifs)))
        return tuple(out)

    def target(self, node: Any) -> str | tuple[Any, ...]:
        """A loop variable's name, or a tuple of targets to unpack into."""
        kind = type(node).__name__
        if kind == "Name":
            return _public(node.id)
        if kind in ("Tuple", "List"):
            return tuple(self.target(element) for element in node.elts)
        raise ExpressionError("a comprehension can only assign to names")

    @staticmethod
    def operator(node: Any, known: dict[str, str]) -> str:
        kind = type(node).__name__
        if kind not in known:
            raise ExpressionError(f"{_REFUSED_NAMES.get(kind, kind)} is not allowed in rule expressions")
        return known[kind]


def _public(name: str) -> str:
    if name.startswith("_"):
        raise ExpressionError(f"names and attributes starting with '_' are not allowed ({name})")
    return name


# ---------------------------------------------------------------------------------------------------------------
# Compiling: a tree -> nested closures (once per process)


def compile_tree(tree: Tree) -> Closure:
    """A function of ``names`` (facts, ``options``, ``item``) that evaluates ``tree``."""
    return _BUILDERS[tree[0]](*tree[1:])


def _constant(value: Any) -> Closure:
    return lambda names: value


def _name(name: str) -> Closure:
    function = FUNCTIONS.get(name)

    def read_name(names: dict[str, Any]) -> Any:
        try:
            return names[name]
        except KeyError:
            if function is None:
                raise ExpressionError(f"name {name!r} is not defined") from None
            return function  # a function passed by name: sorted(x, key=len)

    return read_name


def _fact(tree: Tree) -> str | None:
    """The name a tree reads when it is a plain name that no function shares, else None.

    Closures read such a name inline (``names[name]``) instead of calling :func:`_name`'s closure: rules
    read facts and options by name thousands of times per folder of configs.
    """
    return tree[1] if tree[0] == "name" and tree[1] not in FUNCTIONS else None


def _attribute(value: Tree, key: str) -> Closure:
    """``mapping.key``: dictionaries (facts, ``options``, ``item``) are read with dots."""
    evaluate, label, fact = compile_tree(value), _dotted(value), _fact(value)

    def read_attribute(names: dict[str, Any]) -> Any:
        mapping = names[fact] if fact in names else evaluate(names)  # None (no fact) is never in names
        if type(mapping) is not dict:
            raise ExpressionError(f"{label} is {_describe(mapping)}, not a dict: cannot read .{key}")
        try:
            return mapping[key]
        except KeyError:
            raise ExpressionError(f"{label} has no key {key!r}") from None

    return read_attribute


def _subscript(value: Tree, index: Tree) -> Closure:
    evaluate, evaluate_index = compile_tree(value), compile_tree(index)
    return lambda names: evaluate(names)[evaluate_index(names)]


def _slice(lower: Tree | None, upper: Tree | None, step: Tree | None) -> Closure:
    parts = [_constant(None) if part is None else compile_tree(part) for part in (lower, upper, step)]
    return lambda names: slice(*[part(names) for part in parts])


def _call(name: str, args: tuple[Tree, ...], keywords: tuple[tuple[str, Tree], ...]) -> Closure:
    function = FUNCTIONS[name]
    if len(args) == 1 and not keywords and args[0][0] != "starred":
        argument = compile_tree(args[0])
        return lambda names: function(argument(names))  # the common case, without building lists
    evaluate_args, evaluate_keywords = _sequence(args), _keywords(keywords)
    return lambda names: function(*evaluate_args(names), **evaluate_keywords(names))


def _method(value: Tree, method: str, args: tuple[Tree, ...], keywords: tuple[tuple[str, Tree], ...]) -> Closure:
    evaluate, evaluate_args, evaluate_keywords = compile_tree(value), _sequence(args), _keywords(keywords)

    def call_method(names: dict[str, Any]) -> Any:
        receiver = evaluate(names)
        if method not in METHODS.get(type(receiver), ()):
            raise ExpressionError(f"{_describe(receiver)} has no method {method!r} that rules may call")
        return getattr(receiver, method)(*evaluate_args(names), **evaluate_keywords(names))

    return call_method


def _keywords(keywords: tuple[tuple[str, Tree], ...]) -> Closure:
    compiled = [(name, compile_tree(value)) for name, value in keywords]
    return lambda names: {name: evaluate(names) for name, evaluate in compiled}


def _sequence(elements: tuple[Tree, ...]) -> Closure:
    """A list of the elements' values, ``*iterable`` elements unpacked."""
    compiled = []
    for element in elements:
        starred = element[0] == "starred"
        compiled.append((starred, compile_tree(element[1] if starred else element)))
    if not any(starred for starred, _ in compiled):
        plain = [evaluate for _, evaluate in compiled]
        return lambda names: [evaluate(names) for evaluate in plain]

    def unpack(names: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for starred, evaluate in compiled:
            if starred:
                out.extend(evaluate(names))
            else:
                out.append(evaluate(names))
        return out

    return unpack


def _list(elements: tuple[Tree, ...]) -> Closure:
    return _sequence(elements)


def _tuple(elements: tuple[Tree, ...]) -> Closure:
    evaluate = _sequence(elements)
    return lambda names: tuple(evaluate(names))


def _set(elements: tuple[Tree, ...]) -> Closure:
    evaluate = _sequence(elements)
    return lambda names: set(evaluate(names))


def _dict(items: tuple[tuple[Tree | None, Tree], ...]) -> Closure:
    compiled = [(None if key is None else compile_tree(key), compile_tree(value)) for key, value in items]

    def build_dict(names: dict[str, Any]) -> dict[Any, Any]:
        out = {}
        for key, value in compiled:
            if key is None:
                out.update(value(names))  # {**mapping}
            else:
                out[key(names)] = value(names)
        return out

    return build_dict


def _safe_add(left: Any, right: Any) -> Any:
    if hasattr(left, "__len__") and hasattr(right, "__len__") and len(left) + len(right) > MAX_LENGTH:
        raise ExpressionError(f"a result of more than {MAX_LENGTH:,} items")
    return left + right


def _safe_multiply(left: Any, right: Any) -> Any:
    for sequence, times in ((left, right), (right, left)):
        if hasattr(sequence, "__len__") and times * len(sequence) > MAX_LENGTH:
            raise ExpressionError(f"a result of more than {MAX_LENGTH:,} items")
    return left * right


def _safe_power(base: Any, exponent: Any) -> Any:
    if abs(base) > MAX_POWER or abs(exponent) > MAX_POWER:
        raise ExpressionError(f"{base} ** {exponent} is too large to evaluate")
    return base**exponent


def _safe_shift(shift: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def shifted(value: Any, bits: Any) -> Any:
        if abs(bits) > 10_000:
            raise ExpressionError(f"a shift by {bits} bits is too large to evaluate")
        return shift(value, bits)

    return shifted


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _safe_add, "-": operator.sub, "*": _safe_multiply, "/": operator.truediv, "//": operator.floordiv,
    "%": operator.mod, "**": _safe_power, "<<": _safe_shift(operator.lshift), ">>": _safe_shift(operator.rshift),
    "|": operator.or_, "^": operator.xor, "&": operator.and_,
}  # fmt: skip
_UNARY: dict[str, Callable[[Any], Any]] = {"-": operator.neg, "+": operator.pos, "~": operator.invert}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda item, container: item in container, "not in": lambda item, container: item not in container,
    "is": operator.is_, "is not": operator.is_not,
}  # fmt: skip


def _binary(symbol: str, left: Tree, right: Tree) -> Closure:
    apply, evaluate_left, evaluate_right = _BINARY[symbol], compile_tree(left), compile_tree(right)
    return lambda names: apply(evaluate_left(names), evaluate_right(names))


def _unary(symbol: str, operand: Tree) -> Closure:
    evaluate = compile_tree(operand)
    if symbol == "not":
        return lambda names: not evaluate(names)
    apply = _UNARY[symbol]
    return lambda names: apply(evaluate(names))


def _and(values: tuple[Tree, ...]) -> Closure:
    """``a and b and c`` as ``a and (b and c)``: the same value, the same short-circuit."""
    first = compile_tree(values[0])
    if len(values) == 1:
        return first
    rest = _and(values[1:])
    return lambda names: first(names) and rest(names)


def _or(values: tuple[Tree, ...]) -> Closure:
    first = compile_tree(values[0])
    if len(values) == 1:
        return first
    rest = _or(values[1:])
    return lambda names: first(names) or rest(names)


def _compare(left: Tree, steps: tuple[tuple[str, Tree], ...]) -> Closure:
    evaluate_left, fact = compile_tree(left), _fact(left)
    if len(steps) == 1:
        (symbol, right), = steps
        apply = _COMPARE[symbol]
        if right[0] == "constant":  # `item.kind == 'duplicate-key'`: one call fewer
            constant = right[1]
            if fact is not None:  # `r is not None`: two fewer
                return lambda names: apply(names[fact] if fact in names else evaluate_left(names), constant)
            return lambda names: apply(evaluate_left(names), constant)
        evaluate_right = compile_tree(right)
        return lambda names: apply(evaluate_left(names), evaluate_right(names))
    chain = [(_COMPARE[symbol], compile_tree(right)) for symbol, right in steps]

    def compare_chain(names: dict[str, Any]) -> Any:
        value = evaluate_left(names)
        for apply, evaluate_right in chain:
            right = evaluate_right(names)
            result = apply(value, right)
            if not result:
                return result
            value = right
        return result

    return compare_chain


def _if(test: Tree, body: Tree, orelse: Tree) -> Closure:
    evaluate_test, evaluate_body, evaluate_orelse = compile_tree(test), compile_tree(body), compile_tree(orelse)
    return lambda names: evaluate_body(names) if evaluate_test(names) else evaluate_orelse(names)


def _comprehension(kind: str) -> Callable[..., Closure]:
    """Builds list, set and dict comprehensions; loop variables live in a copy of ``names``."""

    def build(element: Any, generators: tuple[Tree, ...]) -> Closure:
        if kind == "dict":
            evaluate_key, evaluate_value = compile_tree(element[0]), compile_tree(element[1])
        else:
            evaluate_element = compile_tree(element)
        loops = [
            (target, compile_tree(iterable), _and(conditions) if conditions else None)
            for target, iterable, conditions in generators
        ]  # fmt: skip

        def comprehension(names: dict[str, Any]) -> Any:
            scope = dict(names)
            out: Any = {} if kind == "dict" else []
            steps = 0

            def run(depth: int) -> None:
                nonlocal steps
                target, iterable, condition = loops[depth]
                for value in iterable(scope):
                    steps += 1
                    if steps > MAX_COMPREHENSION_STEPS:
                        raise ExpressionError(f"a comprehension of more than {MAX_COMPREHENSION_STEPS:,} steps")
                    _bind(scope, target, value)
                    if condition is not None and not condition(scope):
                        continue
                    if depth + 1 < len(loops):
                        run(depth + 1)
                    elif kind == "dict":
                        out[evaluate_key(scope)] = evaluate_value(scope)
                    else:
                        out.append(evaluate_element(scope))

            run(0)
            return set(out) if kind == "set" else out

        return comprehension

    return build


def _bind(scope: dict[str, Any], target: str | tuple[Any, ...], value: Any) -> None:
    if isinstance(target, str):
        scope[target] = value
        return
    values = tuple(value)
    if len(values) != len(target):
        raise ExpressionError(f"cannot unpack {len(values)} values into {len(target)} names")
    for name, item in zip(target, values):
        _bind(scope, name, item)


def _dotted(tree: Tree) -> str:
    """``item.key`` for a name read with dots, for error messages."""
    if tree[0] == "name":
        return tree[1]
    if tree[0] == "attribute":
        return f"{_dotted(tree[1])}.{tree[2]}"
    return "the value"


def _describe(value: Any) -> str:
    """``None``, ``an int``, ``a dict``: what a value is, for error messages."""
    if value is None:
        return "None"
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


_BUILDERS: dict[str, Callable[..., Closure]] = {
    "constant": _constant, "name": _name, "attribute": _attribute, "subscript": _subscript, "slice": _slice,
    "call": _call, "method": _method, "binary": _binary, "unary": _unary, "and": _and, "or": _or,
    "compare": _compare, "if": _if, "list": _list, "tuple": _tuple, "set": _set, "dict": _dict,
    "list-comprehension": _comprehension("list"), "set-comprehension": _comprehension("set"),
    "dict-comprehension": _comprehension("dict"),
}  # fmt: skip
