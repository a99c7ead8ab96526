"""Read a framework's config keys from its source code with :mod:`ast`: never imported, never run.

A framework accepts the fields of its argument dataclasses (LLaMA-Factory, TRL, PEFT,
transformers' ``TrainingArguments``) or pydantic models (axolotl), and its builders take
their signature's parameters (torchtune). All of these are written in the class or
function body, so reading the syntax tree gives them without importing the framework
(which would pull in torch). The same reader builds the bundled schemas
(``scripts/regenerate_schemas.py``, on a throw-away install of a stated version) and reads
the schema of a framework installed beside lora-lint.
"""

from __future__ import annotations

import ast
import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class SchemaSourceError(Exception):
    """The source does not have the shape the schema is read from (a class is missing)."""


class SourceTree:
    """The Python files of some top-level packages, read on demand.

    ``roots`` maps a top-level package name to its folder (``{"transformers": ".../transformers"}``).
    ``used`` collects every file read, so a cache can be keyed by them.
    """

    def __init__(self, roots: dict[str, str]) -> None:
        self.roots = roots
        self.used: set[str] = set()
        self._trees: dict[str, ast.Module | None] = {}
        self._files: dict[str, list[str]] = {}

    def file_of(self, module: str) -> str | None:
        """The file of a dotted module name, when it is inside one of the roots."""
        top, _, rest = module.partition(".")
        root = self.roots.get(top)
        if root is None:
            return None
        base = os.path.join(root, *rest.split(".")) if rest else root
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
        return None

    def tree(self, module: str) -> ast.Module | None:
        if module not in self._trees:
            path = self.file_of(module)
            tree = None
            if path is not None:
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read(), path)
                self.used.add(path)
            self._trees[module] = tree
        return self._trees[module]

    def modules_defining(self, name: str, package: str) -> list[str]:
        """Modules of ``package`` whose text defines ``class name`` (found by text, parsed later)."""
        pattern = re.compile(rf"^\s*class {re.escape(name)}\b", re.MULTILINE)
        return [module for module, path in self._modules(package) if pattern.search(_read(path))]

    def _modules(self, package: str) -> list[tuple[str, str]]:
        if package not in self._files:
            root = self.roots[package]
            found = []
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
                for file in sorted(files):
                    if file.endswith(".py"):
                        relative = os.path.relpath(os.path.join(folder, file), root)[:-3].replace(os.sep, ".")
                        module = package if relative == "__init__" else f"{package}.{relative.removesuffix('.__init__')}"
                        found.append((module, os.path.join(folder, file)))
            self._files[package] = found
        return [(module, path) for module, path in self._files[package]]

    def find_class(self, name: str, package: str, hint: str = "") -> tuple[str, ast.ClassDef]:
        """The module and definition of class ``name`` in ``package``, preferring modules containing ``hint``."""
        modules = self.modules_defining(name, package)
        modules.sort(key=lambda module: (hint not in module, module.count("."), module))
        for module in modules:
            node = self.class_in(module, name)
            if node is not None:
                return module, node
        raise SchemaSourceError(f"class {name} not found in {package}")

    def class_in(self, module: str, name: str) -> ast.ClassDef | None:
        tree = self.tree(module)
        if tree is None:
            return None
        for node in _walk_top(tree):
            if isinstance(node, ast.ClassDef) and node.name == name:
                return node
        return None

    def resolve(self, module: str, name: str) -> tuple[str, ast.ClassDef] | None:
        """Where the class called ``name`` inside ``module`` is defined, following its imports."""
        node = self.class_in(module, name)
        if node is not None:
            return module, node
        tree = self.tree(module)
        for imported in _walk_top(tree) if tree is not None else ():
            if isinstance(imported, ast.Assign) and isinstance(imported.value, ast.Name):
                if any(isinstance(t, ast.Name) and t.id == name for t in imported.targets):
                    found = self.resolve(module, imported.value.id)  # `Base = Seq2SeqTrainingArguments`
                    if found is not None:
                        return found
                continue
            if not isinstance(imported, ast.ImportFrom):
                continue
            for alias in imported.names:
                if (alias.asname or alias.name) != name:
                    continue
                source = _absolute(module, imported, self.file_of(module) or "")
                top = source.partition(".")[0]
                if top not in self.roots:
                    continue
                found = self.resolve(source, alias.name) if self.file_of(source) else None
                if found is None:  # re-exported lazily (transformers' __init__): search the package
                    try:
                        found = self.find_class(alias.name, top, hint=source)
                    except SchemaSourceError:
                        continue
                return found
        return None

    def fields(self, module: str, node: ast.ClassDef) -> list[str]:
        """Init fields of a dataclass or pydantic model, bases first (dataclass order), with aliases.

        A field redefined in a subclass keeps its first position, as :mod:`dataclasses` does.
        Names from bases outside the roots (``BaseModel``, a package not installed) add nothing.
        """
        names: list[str] = []
        for base in reversed(node.bases):
            found = self._base(module, base)
            if found is not None and found[1] is not node:
                names.extend(self.fields(*found))
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                if _is_classvar(statement.annotation) or not _in_init(statement.value):
                    continue
                names.append(statement.target.id)
                names.extend(_aliases(statement.value))
        return list(dict.fromkeys(names))

    def _base(self, module: str, base: ast.expr) -> tuple[str, ast.ClassDef] | None:
        """A base class written ``Name`` (resolved through the module's imports) or ``package.Name``."""
        if isinstance(base, ast.Name):
            return self.resolve(module, base.id)
        if isinstance(base, ast.Attribute):
            dotted = ast.unparse(base.value)
            if dotted.partition(".")[0] in self.roots:
                try:
                    return self.find_class(base.attr, dotted.partition(".")[0], hint=dotted)
                except SchemaSourceError:
                    return None
        return None

    def field_defaults(self, module: str, node: ast.ClassDef) -> dict[str, object]:
        """Literal defaults of a dataclass's fields (``x: int = 3`` or ``field(default=3)``), bases first."""
        defaults: dict[str, object] = {}
        for base in reversed(node.bases):
            found = self._base(module, base)
            if found is not None and found[1] is not node:
                defaults.update(self.field_defaults(*found))
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
                value = _call_keywords(statement.value).get("default", statement.value)
                try:
                    defaults[statement.target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
        return defaults

    def class_fields(self, name: str, package: str, hint: str = "") -> list[str]:
        return self.fields(*self.find_class(name, package, hint))

    def functions(self, module: str) -> Iterator[ast.FunctionDef]:
        tree = self.tree(module)
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.FunctionDef):
                yield node

    def package_modules(self, package: str, pattern: str) -> list[str]:
        """Dotted names of the package's modules matching the regular expression ``pattern``."""
        return [module for module, _ in self._modules(package) if re.search(pattern, module)]

    def string_returns(self, module: str, method: str) -> list[str]:
        """Constant strings returned by every function or method called ``method`` in ``module``."""
        tree = self.tree(module)
        found = []
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.FunctionDef) and node.name == method:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and isinstance(inner.value, ast.Constant) and isinstance(inner.value.value, str):
                        found.append(inner.value.value)
        return found


def signature(function: ast.FunctionDef) -> tuple[dict[str, object], list[str]]:
    """(parameters with a literal default -> that default, parameters without a default) of a function."""
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    defaults: dict[str, object] = {}
    required: list[str] = []
    offset = len(positional) - len(arguments.defaults)
    pairs = [(arg, arguments.defaults[i - offset] if i >= offset else None) for i, arg in enumerate(positional)]
    pairs += list(zip(arguments.kwonlyargs, arguments.kw_defaults))
    for arg, default in pairs:
        if default is None:
            required.append(arg.arg)
            continue
        try:
            defaults[arg.arg] = ast.literal_eval(default)
        except ValueError:
            defaults[arg.arg] = None  # a non-literal default (a constant's name): known to exist, value unread
    return defaults, required


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _walk_top(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements at module level, including those under ``if``/``try`` (conditional imports)."""
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            children = [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                children.extend(handler.body)
            stack.extend(reversed(children))


def _absolute(module: str, node: ast.ImportFrom, path: str) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_classvar(annotation: ast.expr) -> bool:
    text = annotation.value if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str) else ast.unparse(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _call_keywords(value: ast.expr | None) -> dict[str, ast.expr]:
    if isinstance(value, ast.Call):
        return {keyword.arg: keyword.value for keyword in value.keywords if keyword.arg}
    return {}


def _in_init(value: ast.expr | None) -> bool:
    """False for ``field(init=False)`` / ``Field(init=False)`` / ``PrivateAttr(...)``: not a key users write."""
    if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("PrivateAttr"):
        return False
    init = _call_keywords(value).get("init")
    return not (isinstance(init, ast.Constant) and init.value is False)


def _aliases(value: ast.expr | None) -> list[str]:
    """Other names a pydantic field accepts: ``alias=``, ``validation_alias=`` (also ``AliasChoices(...)``)."""
    names = []
    for key in ("alias", "validation_alias"):
        alias = _call_keywords(value).get(key)
        if isinstance(alias, ast.Constant) and isinstance(alias.value, str):
            names.append(alias.value)
        elif isinstance(alias, ast.Call):
            names.extend(arg.value for arg in alias.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    return names
