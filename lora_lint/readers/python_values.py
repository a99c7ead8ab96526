"""Values a Python script states plainly, found by reading its ``ast`` (never by running it).

Most training scripts do not write ``LoraConfig(r=16)``; they write ``r=lora_r`` with
``lora_r = 16`` above, ``r=args.lora_r`` with an argparse default, or ``r=model_args.lora_r``
with a dataclass field. :class:`Resolver` follows such a name back to the one place that
gives it a value, when there is exactly one, and returns the value with *where it was
written*, so a finding can point at the line to change. It understands:

- assignments in the function that makes the call, in enclosing functions and at module
  level; a name assigned more than once is resolved only when every assignment agrees;
- ``args.x`` where ``args`` comes from ``parser.parse_args()`` / ``parse_known_args()``
  (directly or returned by a helper function): the ``default=`` of ``add_argument("--x")``
  (dest from dashes as argparse does, ``dest=``, ``store_true``, ``set_defaults``);
- ``cfg.x`` where ``cfg`` is an instance of a class of the file (``Cfg(...)``, an annotated
  parameter ``cfg: Cfg``, or ``HfArgumentParser((A, B)).parse_args_into_dataclasses()``):
  the constructor's keyword, else the field's default (``x: int = 8``, ``field(default=8)``,
  ``default_factory=lambda: [...]``), base classes of the file included;
- a parameter of a function that ``fire.Fire(function)`` exposes as the command line: its default;
- literal lists, tuples, dicts (``{...}`` or ``dict(...)``), their items and ``d["key"]``;
- arithmetic on known numbers (``2 * lora_r``), ``-x``, ``"a,b".split(",")``.

Anything else (a value read from a file, a function's parameter, a loop variable, a
``global`` rebinding) is :data:`UNKNOWN`.
"""

from __future__ import annotations

import ast
import operator

from lora_lint.lora_setup import UNKNOWN

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 40
"""Bound on how many definitions one value may pass through (``a = b``, ``b = c``, ...): no cycles, no deep recursion."""

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_PARSE_CALLS = ("parse_args", "parse_known_args", "parse_intermixed_args")
_DATACLASS_PARSE = ("parse_args_into_dataclasses",)
_FIELD_CALLS = ("field", "Field")
_TYPE_CONVERSIONS = {"int": int, "float": float, "str": str}


class Found:
    """A resolved value and the expression or statement that wrote it (``node``, for its line)."""

    __slots__ = ("value", "node", "origin")

    def __init__(self, value: Any, node: ast.AST, origin: str = "") -> None:
        self.value = value
        self.node = node
        self.origin = origin  # "" when the value is written in place; else the source of the defining line

    def __repr__(self) -> str:
        return f"Found({self.value!r}, line {self.node.lineno}, {self.origin!r})"


class _Namespace:
    """What an expression names when it is no plain value: an argparse result, a class or an instance."""

    __slots__ = ("kind", "cls", "call")

    def __init__(self, kind: str, cls: ast.ClassDef | None = None, call: ast.Call | None = None) -> None:
        self.kind = kind  # "argparse", "class" or "instance"
        self.cls = cls
        self.call = call  # the constructor call of an instance, for its keyword arguments


class Resolver:
    """Resolves expressions of one module; build once per file, ask for any number of nodes."""

    def __init__(self, tree: ast.Module, text: str) -> None:
        self.tree = tree
        self.lines = text.splitlines()
        self.parents: dict[ast.AST, ast.AST] = {}
        self.calls: list[ast.Call] = []
        self.calls_by_name: dict[str, list[ast.Call]] = {}
        self._globals: set[str] = set()
        stack: list[ast.AST] = [tree]
        while stack:  # one pass over the tree: parents, calls and `global` names (ast.walk twice costs twice)
            node = stack.pop()
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
                stack.append(child)
            if isinstance(node, ast.Call):
                self.calls.append(node)
                name = _called_name(node)
                if name is not None:
                    self.calls_by_name.setdefault(name, []).append(node)
            elif isinstance(node, ast.Global):
                self._globals.update(node.names)
        self.calls.sort(key=lambda call: (call.lineno, call.col_offset))
        self.classes: dict[str, ast.ClassDef] = {}
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node
        self._bindings: dict[ast.AST, dict[str, list[ast.AST]]] = {}
        self._arguments: dict[str, list[ast.Call]] | None = None

    # -- entry points ---------------------------------------------------------------------

    def resolve(self, node: ast.AST, depth: int = 0) -> Found | Any:
        """The value of expression ``node`` where it stands, or :data:`UNKNOWN`."""
        if depth > MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return Found(node.value, node)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.resolve(item, depth + 1) for item in node.elts]
            if any(item is UNKNOWN for item in items):  # a `*rest` item too: no branch resolves it
                return UNKNOWN
            values = [item.value for item in items]
            value = values if isinstance(node, ast.List) else tuple(values) if isinstance(node, ast.Tuple) else set(values)
            return Found(value, node, _joined_origin(items))
        if isinstance(node, ast.Dict) or _is_call_to(node, "dict"):
            entries = self.entries(node, depth + 1)
            if entries is None:
                return UNKNOWN
            return Found({key: found.value for key, found in entries.items()}, node, _joined_origin(list(entries.values())))
        if isinstance(node, ast.Name):
            return self._name(node, depth)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, depth)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, depth)
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.resolve(node.operand, depth + 1)
            if operand is UNKNOWN or not _is_number(operand.value):
                return UNKNOWN
            value = -operand.value if isinstance(node.op, ast.USub) else operand.value
            return Found(value, node, operand.origin)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        return UNKNOWN

    def entries(self, node: ast.AST, depth: int = 0) -> dict[str, Found] | None:
        """Key -> value of a dict written in the file (``{...}``, ``dict(...)``, or a name bound to one); None if unknown."""
        nodes = self.entry_nodes(node, depth)
        if nodes is None:
            return None
        out: dict[str, Found] = {}
        for key, value_node in nodes.items():
            found = self.resolve(value_node, depth + 1)
            if found is UNKNOWN:
                return None
            out[key] = found
        return out

    def entry_nodes(self, node: ast.AST, depth: int = 0) -> dict[str, ast.AST] | None:
        """Key -> value expression of such a dict, every key a known string; None otherwise.

        ``**kwargs`` splats use it: each value is then read like an argument written in the call.
        """
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, ast.Name):
            definition = self.definition(node)
            return self.entry_nodes(definition, depth + 1) if definition is not None else None
        pairs: dict[str, ast.AST] = {}
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if key is None:  # {**other}
                    inner = self.entry_nodes(value, depth + 1)
                    if inner is None:
                        return None
                    pairs.update(inner)
                    continue
                found_key = self.resolve(key, depth + 1)
                if found_key is UNKNOWN or not isinstance(found_key.value, str):
                    return None
                pairs[found_key.value] = value
        elif _is_call_to(node, "dict") and not node.args:  # type: ignore[union-attr]
            for keyword in node.keywords:  # type: ignore[union-attr]
                if keyword.arg is None:
                    return None
                pairs[keyword.arg] = keyword.value
        else:
            return None
        return pairs

    # -- names ----------------------------------------------------------------------------

    def _scopes(self, node: ast.AST) -> list[ast.AST]:
        """Enclosing function scopes of ``node``, innermost first, then the module (class bodies skipped, as in Python)."""
        scopes: list[ast.AST] = []
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                scopes.append(current)
            current = self.parents.get(current)
        scopes.append(self.tree)
        return scopes

    def bindings(self, scope: ast.AST) -> dict[str, list[ast.AST]]:
        """Name -> every statement or parameter of ``scope`` that binds it (nested scopes excluded)."""
        cached = self._bindings.get(scope)
        if cached is not None:
            return cached
        found: dict[str, list[ast.AST]] = {}
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = scope.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                if arg is not None:
                    found.setdefault(arg.arg, []).append(arg)
        body = scope.body if isinstance(scope.body, list) else [scope.body]
        stack = list(body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.setdefault(node.name, []).append(node)
                continue  # its body is another scope
            if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                continue
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                for name in node.names:
                    found.setdefault(name, []).append(node)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                found.setdefault(node.id, []).append(self._statement(node))
            elif isinstance(node, ast.alias):
                found.setdefault((node.asname or node.name).split(".")[0], []).append(node)
            elif isinstance(node, ast.arg):
                continue
            stack.extend(ast.iter_child_nodes(node))
        self._bindings[scope] = found
        return found

    def _statement(self, target: ast.AST) -> ast.AST:
        """The statement (or comprehension/named expression) that binds ``target``."""
        node = target
        while node in self.parents and not isinstance(node, (ast.stmt, ast.NamedExpr, ast.comprehension)):
            node = self.parents[node]
        return node

    def _binding_of(self, name: ast.Name) -> list[ast.AST] | None:
        """Every binding of the name as seen where it is used; None when it is bound nowhere in the file."""
        for scope in self._scopes(name):
            bound = self.bindings(scope).get(name.id)
            if bound:
                if any(isinstance(b, ast.Global) for b in bound):
                    continue  # `global x` in a function: the module's binding, possibly rebound here too
                return bound
        return None

    def definition(self, name: ast.Name) -> ast.AST | None:
        """The expression a name was assigned, when exactly one plain assignment binds it."""
        bound = self._binding_of(name)
        if not bound or len(bound) != 1:
            return None
        return _assigned_value(bound[0], name.id)

    def _name(self, name: ast.Name, depth: int) -> Found | Any:
        bound = self._binding_of(name)
        if not bound or self._rebound_globally(name):
            return UNKNOWN
        results = []
        for binding in bound:
            if isinstance(binding, ast.arg):
                value = self._command_line_default(binding)
                if value is None:
                    return UNKNOWN  # a function's parameter: its value depends on the caller
                found = self.resolve(value, depth + 1)
                if found is UNKNOWN:
                    return UNKNOWN
                results.append((binding, _with_origin(found, self)))
                continue
            value = _assigned_value(binding, name.id)
            unpacked = _unpacked(binding, name.id) if value is None else None
            if unpacked is not None and isinstance(unpacked[0], (ast.Tuple, ast.List)) and len(unpacked[0].elts) == len(binding.targets[0].elts):  # type: ignore[union-attr]
                value = unpacked[0].elts[unpacked[1]]
            if value is None:
                return UNKNOWN  # a parameter, a loop variable, an import, `x += 1`, ...
            found = self.resolve(value, depth + 1)
            if found is UNKNOWN:
                return UNKNOWN
            results.append((binding, found))
        first_binding, first = results[0]
        if any(found.value != first.value or type(found.value) is not type(first.value) for _, found in results[1:]):
            return UNKNOWN
        return Found(first.value, first.node if first.origin else first_binding, first.origin or self.source(first_binding))

    def _command_line_default(self, parameter: ast.arg) -> ast.AST | None:
        """The default of a parameter of a function that ``fire.Fire(function)`` turns into the command line."""
        function = self.parents.get(self.parents.get(parameter))  # arg -> arguments -> def
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or function.name not in self._fire_entry_points():
            return None
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        if parameter in positional:
            index = positional.index(parameter) - (len(positional) - len(args.defaults))
            return args.defaults[index] if index >= 0 else None
        if parameter in args.kwonlyargs:
            return args.kw_defaults[args.kwonlyargs.index(parameter)]
        return None

    def _fire_entry_points(self) -> set[str]:
        return {call.args[0].id for call in self.calls_by_name.get("Fire", []) if call.args and isinstance(call.args[0], ast.Name)}

    def _rebound_globally(self, name: ast.Name) -> bool:
        """A module-level name that some function rebinds with ``global`` has no single value."""
        scopes = self._scopes(name)
        if self.bindings(scopes[0]).get(name.id) and scopes[0] is not self.tree:
            return False
        return name.id in self._globals

    # -- attributes: argparse namespaces and class instances --------------------------------

    def _attribute(self, node: ast.Attribute, depth: int) -> Found | Any:
        if node.attr == "value" and isinstance(node.value, ast.Attribute):
            return UNKNOWN  # an enum member's value: not a field
        owner = self.namespace(node.value, depth + 1)
        if owner is None:
            return UNKNOWN
        if owner.kind == "argparse":
            return self._argparse_default(node.attr, depth)
        if owner.kind == "instance" and owner.call is not None:
            overridden = self._constructor_argument(owner.cls, owner.call, node.attr)
            if overridden is not None:
                found = self.resolve(overridden, depth + 1)
                return _with_origin(found, self) if found is not UNKNOWN else UNKNOWN
        default = self._class_default(owner.cls, node.attr, set())
        if default is None:
            return UNKNOWN
        found = self.resolve(default, depth + 1)
        return _with_origin(found, self) if found is not UNKNOWN else UNKNOWN

    def namespace(self, node: ast.AST, depth: int = 0) -> _Namespace | None:
        """What ``node`` stands for when it is an argparse result, a class of the file or an instance of one."""
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.classes and self._binding_of(node) == [self.classes[node.id]]:
                return _Namespace("class", self.classes[node.id])
            bound = self._binding_of(node)
            if not bound or len(bound) != 1:
                return None
            binding = bound[0]
            if isinstance(binding, ast.arg):
                return self._annotated(binding.annotation) or self._parameter_namespace(binding, depth)
            value = _assigned_value(binding, node.id)
            if value is not None:
                return self.namespace(value, depth + 1)
            unpacked = _unpacked(binding, node.id)
            if unpacked is not None:
                source, index = unpacked
                return self._unpacked_namespace(source, index, depth)
            if isinstance(binding, ast.AnnAssign):
                return self._annotated(binding.annotation)
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == 0:
            if isinstance(node.value, ast.Call) and _called_name(node.value) == "parse_known_args":
                return _Namespace("argparse")
            return None
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in _PARSE_CALLS and name != "parse_known_args":
                return _Namespace("argparse")
            if isinstance(node.func, ast.Name) and name in self.classes:
                return _Namespace("instance", self.classes[name], node)
            if isinstance(node.func, ast.Name) and name in self.functions:
                return self._returned_namespace(self.functions[name], depth)
        return None

    def _annotated(self, annotation: ast.AST | None) -> _Namespace | None:
        if isinstance(annotation, ast.Name) and annotation.id in self.classes:
            return _Namespace("instance", self.classes[annotation.id])
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str) and annotation.value in self.classes:
            return _Namespace("instance", self.classes[annotation.value])
        return None

    def _parameter_namespace(self, parameter: ast.arg, depth: int) -> _Namespace | None:
        """``def main(args)`` called only as ``main(parser.parse_args())`` (or with one class's instances): that namespace."""
        function = self.parents.get(self.parents.get(parameter))  # arg -> arguments -> def
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or depth > MAX_DEPTH:
            return None
        positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        kinds = []
        for node in self.calls_by_name.get(function.name, []):
            if not isinstance(node.func, ast.Name):
                continue
            passed = next((k.value for k in node.keywords if k.arg == parameter.arg), None)
            if passed is None and parameter.arg in positional and positional.index(parameter.arg) < len(node.args):
                passed = node.args[positional.index(parameter.arg)]
            kinds.append(self.namespace(passed, depth + 1) if passed is not None else None)
        if kinds and all(k is not None and k.kind == kinds[0].kind and k.cls is kinds[0].cls and k.call is None for k in kinds):
            return kinds[0]
        return None

    def _returned_namespace(self, function: ast.AST, depth: int) -> _Namespace | None:
        """A helper such as ``def get_args(): ...; return parser.parse_args()``: what every return gives."""
        kinds = []
        for node in ast.walk(function):
            if isinstance(node, ast.Return) and node.value is not None and self._scopes(node)[0] is function:
                kinds.append(self.namespace(node.value, depth + 1))
        if kinds and all(k is not None and k.kind == kinds[0].kind and k.cls is kinds[0].cls for k in kinds):
            return kinds[0]
        return None

    def _unpacked_namespace(self, source: ast.AST, index: int, depth: int) -> _Namespace | None:
        """``args, rest = parser.parse_known_args()`` and ``a, b = HfArgumentParser((A, B)).parse_args_into_dataclasses()``."""
        if not isinstance(source, ast.Call):
            return None
        name = _called_name(source)
        if name == "parse_known_args":
            return _Namespace("argparse") if index == 0 else None
        if name in _DATACLASS_PARSE and isinstance(source.func, ast.Attribute):
            classes = self._parser_classes(source.func.value, depth)
            if classes is not None and index < len(classes) and classes[index] is not None:
                return _Namespace("instance", classes[index])
        return None

    def _parser_classes(self, parser: ast.AST, depth: int) -> list[ast.ClassDef | None] | None:
        """The dataclasses an ``HfArgumentParser((A, B, C))`` was built with (None for a class from elsewhere)."""
        if isinstance(parser, ast.Name):
            definition = self.definition(parser)
            return self._parser_classes(definition, depth + 1) if definition is not None and depth < MAX_DEPTH else None
        if not isinstance(parser, ast.Call) or not parser.args:
            return None
        first = parser.args[0]
        names = first.elts if isinstance(first, (ast.Tuple, ast.List)) else [first]
        return [self.classes.get(n.id) if isinstance(n, ast.Name) else None for n in names]

    def _class_default(self, cls: ast.ClassDef | None, attr: str, seen: set[str]) -> ast.AST | None:
        """The default expression of field ``attr`` in ``cls`` or its bases of the file."""
        if cls is None or cls.name in seen:
            return None
        seen.add(cls.name)
        for statement in reversed(cls.body):
            target = statement.target if isinstance(statement, ast.AnnAssign) else None
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
            if not (isinstance(target, ast.Name) and target.id == attr):
                continue
            value = statement.value  # type: ignore[union-attr]
            return _field_default(value) if value is not None else None
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in self.classes:
                default = self._class_default(self.classes[base.id], attr, seen)
                if default is not None:
                    return default
        return None

    def _constructor_argument(self, cls: ast.ClassDef | None, call: ast.Call, attr: str) -> ast.AST | None:
        for keyword in call.keywords:
            if keyword.arg == attr:
                return keyword.value
        if call.args and cls is not None:
            fields = [s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
            if attr in fields and fields.index(attr) < len(call.args):
                return call.args[fields.index(attr)]
        return None

    def arguments(self) -> dict[str, list[ast.Call]]:
        """argparse dest -> every ``add_argument`` call of the file that defines it."""
        if self._arguments is None:
            self._arguments = {}
            for node in self.calls_by_name.get("add_argument", []):
                dest = _argparse_dest(node)
                if dest is not None:
                    self._arguments.setdefault(dest, []).append(node)
        return self._arguments

    def _argparse_default(self, dest: str, depth: int) -> Found | Any:
        for node in self.calls_by_name.get("set_defaults", []):
            for keyword in node.keywords:
                if keyword.arg == dest:
                    found = self.resolve(keyword.value, depth + 1)
                    return _with_origin(found, self) if found is not UNKNOWN else UNKNOWN
        calls = self.arguments().get(dest, [])
        values = [self._default_of(call, depth) for call in calls]
        if not values or any(v is UNKNOWN for v in values):
            return UNKNOWN
        if any(v.value != values[0].value for v in values[1:]):
            return UNKNOWN
        return values[0]

    def _default_of(self, call: ast.Call, depth: int) -> Found | Any:
        """The value an ``add_argument`` leaves when the option is not given (argparse's own rules)."""
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        action = keywords.get("action")
        action_name = action.value if isinstance(action, ast.Constant) else None
        if "default" not in keywords:
            if action_name in ("store_true", "store_false"):
                return Found(action_name == "store_false", call, self.source(call))
            return UNKNOWN  # required, or None until given on the command line
        found = self.resolve(keywords["default"], depth + 1)
        if found is UNKNOWN:
            return UNKNOWN
        value = found.value
        kind = keywords.get("type")
        if isinstance(value, str) and isinstance(kind, ast.Name) and kind.id in _TYPE_CONVERSIONS:
            try:  # argparse passes a string default through `type`
                value = _TYPE_CONVERSIONS[kind.id](value)
            except ValueError:
                return UNKNOWN
        return Found(value, call, self.source(call))

    # -- other expressions ------------------------------------------------------------------

    def _subscript(self, node: ast.Subscript, depth: int) -> Found | Any:
        key = self.resolve(node.slice, depth + 1)
        if key is UNKNOWN:
            return UNKNOWN
        container = node.value
        if isinstance(key.value, str):
            entries = self.entries(container, depth + 1)
            if entries is None or key.value not in entries:
                return UNKNOWN
            return _with_origin(entries[key.value], self)
        if isinstance(key.value, int) and not isinstance(key.value, bool):
            found = self.resolve(container, depth + 1)
            if found is UNKNOWN or not isinstance(found.value, (list, tuple)) or not -len(found.value) <= key.value < len(found.value):
                return UNKNOWN
            return Found(found.value[key.value], node, found.origin)
        return UNKNOWN

    def _arithmetic(self, node: ast.BinOp, depth: int) -> Found | Any:
        function = _OPERATORS.get(type(node.op))
        left = self.resolve(node.left, depth + 1)
        right = self.resolve(node.right, depth + 1)
        if function is None or left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        a, b = left.value, right.value
        if isinstance(node.op, ast.Add) and isinstance(a, list) and isinstance(b, list):
            return Found(a + b, node, _joined_origin([left, right]))
        if not (_is_number(a) and _is_number(b)):
            return UNKNOWN
        if isinstance(node.op, ast.Pow) and (abs(b) > 64 or abs(a) > 2**32):
            return UNKNOWN  # no huge numbers from hostile input
        try:
            value = function(a, b)
        except (ZeroDivisionError, OverflowError, ValueError):
            return UNKNOWN
        return Found(value, node, _joined_origin([left, right]))

    def _call(self, node: ast.Call, depth: int) -> Found | Any:
        """``"a,b".split(",")``, ``int(x)``/``float(x)`` and ``list(...)`` of known values."""
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "split" and len(node.args) <= 1 and not node.keywords:
            text = self.resolve(func.value, depth + 1)
            sep = self.resolve(node.args[0], depth + 1) if node.args else Found(None, node)
            if text is UNKNOWN or sep is UNKNOWN or not isinstance(text.value, str) or not isinstance(sep.value, (str, type(None))):
                return UNKNOWN
            if sep.value == "":
                return UNKNOWN
            return Found(text.value.split(sep.value), node, text.origin)
        if isinstance(func, ast.Name) and func.id in ("int", "float", "list", "tuple") and len(node.args) == 1 and not node.keywords:
            if self._binding_of(func):  # shadowed by the script
                return UNKNOWN
            inner = self.resolve(node.args[0], depth + 1)
            if inner is UNKNOWN:
                return UNKNOWN
            try:
                value = {"int": int, "float": float, "list": list, "tuple": tuple}[func.id](inner.value)
            except (TypeError, ValueError, OverflowError):
                return UNKNOWN
            return Found(value, node, inner.origin)
        return UNKNOWN

    def segment(self, node: ast.AST) -> str:
        """The source text of ``node`` (``ast.get_source_segment`` splits the whole file on every call)."""
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if not 0 <= first <= last < len(self.lines):
            return ""
        if first == last:
            return self.lines[first].encode()[node.col_offset : node.end_col_offset].decode(errors="replace")
        head = self.lines[first].encode()[node.col_offset :].decode(errors="replace")
        tail = self.lines[last].encode()[: node.end_col_offset].decode(errors="replace")
        return "\n".join([head, *self.lines[first + 1 : last], tail])

    def source(self, node: ast.AST) -> str:
        """The first line of ``node``'s source, stripped and shortened, for a provenance message."""
        line = self.lines[node.lineno - 1].strip() if 0 < node.lineno <= len(self.lines) else ""
        line = line.split("  #")[0].rstrip()
        return line if len(line) <= 80 else line[:77] + "..."


def _assigned_value(binding: ast.AST, name: str) -> ast.AST | None:
    """The expression a plain ``name = ...`` / ``name: T = ...`` / ``(name := ...)`` assigns; None for other bindings."""
    if isinstance(binding, ast.Assign):
        if all(isinstance(t, ast.Name) and t.id == name for t in binding.targets):
            return binding.value
        return None
    if isinstance(binding, ast.AnnAssign) and isinstance(binding.target, ast.Name) and binding.value is not None:
        return binding.value
    if isinstance(binding, ast.NamedExpr) and binding.target.id == name:
        return binding.value
    return None


def _unpacked(binding: ast.AST, name: str) -> tuple[ast.AST, int] | None:
    """(source, index) for ``a, name = source``."""
    if isinstance(binding, ast.Assign) and len(binding.targets) == 1 and isinstance(binding.targets[0], ast.Tuple):
        for index, element in enumerate(binding.targets[0].elts):
            if isinstance(element, ast.Starred):
                return None
            if isinstance(element, ast.Name) and element.id == name:
                return binding.value, index
    return None


def _field_default(value: ast.AST) -> ast.AST | None:
    """A class attribute's default: the value itself, or ``field(default=...)`` / ``default_factory=lambda: ...``."""
    if isinstance(value, ast.Call) and _called_name(value) in _FIELD_CALLS:
        for keyword in value.keywords:
            if keyword.arg == "default":
                return keyword.value
            if keyword.arg == "default_factory":
                factory = keyword.value
                if isinstance(factory, ast.Lambda):
                    return factory.body
                if isinstance(factory, ast.Name) and factory.id in ("list", "dict"):
                    return ast.copy_location(ast.List(elts=[], ctx=ast.Load()) if factory.id == "list" else ast.Dict(keys=[], values=[]), factory)
                return None
        if _called_name(value) == "Field" and value.args and not (isinstance(value.args[0], ast.Constant) and value.args[0].value is Ellipsis):
            return value.args[0]  # pydantic's Field(8, ...)
        return None
    return value


def _argparse_dest(call: ast.Call) -> str | None:
    """argparse's dest: ``dest=``, else the first long option with dashes made underscores, else the short one."""
    for keyword in call.keywords:
        if keyword.arg == "dest":
            return keyword.value.value if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str) else None
    options = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not options or len(options) != len(call.args):
        return None
    long = [o for o in options if o.startswith("--")]
    chosen = long[0][2:] if long else options[0].lstrip("-")
    return chosen.replace("-", "_") or None


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _is_call_to(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _joined_origin(parts: list[Found]) -> str:
    origins = [p.origin for p in parts if p.origin]
    return "; ".join(dict.fromkeys(origins))


def _with_origin(found: Found, resolver: Resolver) -> Found:
    """A value reached through a definition elsewhere: keep where it was written and that line's source."""
    return found if found.origin else Found(found.value, found.node, resolver.source(found.node))
