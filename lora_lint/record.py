"""``Record``: plain value classes for the static path, declared like dataclasses.

``dataclasses`` imports ``inspect`` and ``exec``s code for every class: about 9 ms of a
``lora-lint check`` whose whole budget above Python and PyYAML is ~10 ms. A record
declares its fields with annotations and defaults exactly as a dataclass does; mutable
defaults (lists, dicts, sets) are copied per instance, as ``default_factory`` would.
Records compare and hash by value, and ``replace`` makes a changed copy.

A record made by the hundred (a model's modules) may list its fields in ``__slots__``
and set them in a plain ``__init__`` instead, with the defaults in its signature: the
generic ``__init__`` below costs a few microseconds per instance.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R", bound="Record")

_MISSING = object()
_MUTABLE = (list, dict, set)


class Record:
    """Base class: subclasses list their fields as annotations (``name: type = default``)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            slots = vars(klass).get("__slots__", ())
            for name in vars(klass).get("__annotations__", {}):
                if name.startswith("_") or str(vars(klass)["__annotations__"][name]).startswith(("ClassVar", "typing.ClassVar")):
                    continue
                if name not in fields:
                    fields.append(name)
                value = vars(klass).get(name, _MISSING)
                if value is not _MISSING and name not in slots and not isinstance(value, (property, classmethod, staticmethod)):
                    defaults[name] = value
        cls._fields = tuple(fields)
        cls._defaults = defaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes {len(self._fields)} fields, got {len(args)}")
        values = dict(zip(self._fields, args))
        for name, value in kwargs.items():
            if name not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__} got {name!r} twice")
            values[name] = value
        for name in self._fields:
            if name not in values:
                if name not in self._defaults:
                    raise TypeError(f"{type(self).__name__} missing field {name!r}")
                default = self._defaults[name]
                values[name] = default.copy() if isinstance(default, _MUTABLE) else default
            object.__setattr__(self, name, values[name])
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed, as ``dataclasses.replace`` does."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)


def replace(record: R, **changes: Any) -> R:
    """``dataclasses.replace`` for records."""
    return record.replace(**changes)
