"""`Registry[T]`: one per kind of component (layers, activations, optimizers, losses, data sets).

Adding a component is one decorated function or class in the module that holds its kind. The
other names Keras resolves to a component (`"mse"` for the loss `mean_squared_error`, `"acc"`
for the metric `accuracy`) are that registry's aliases, declared beside the component.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from core.errors import UnknownNameError

T = TypeVar("T")


def squash(name: str) -> str:
    return name.replace("_", "").lower()


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def alias(self, name: str, *aliases: str) -> None:
        """Declare other names Keras resolves to the registered `name` (its aliases)."""
        if name not in self._items:
            raise ValueError(f"{self.kind} {name!r} is not registered")
        for alias in aliases:
            if alias in self._items or alias in self._aliases:
                raise ValueError(f"{self.kind} name {alias!r} is registered twice")
            self._aliases[alias] = name

    def unalias(self, name: str) -> str:
        """The registered name `name` is an alias of, or `name` itself."""
        return self._aliases.get(name, name)

    def canonical(self, name: str) -> str:
        """The registered name for `name`, accepting its declared aliases and Keras's class
        spelling (`Conv2D` → `conv2d`). Any other name is refused with the known names.
        """
        name = self.unalias(name)
        if name in self._items:
            return name
        if name[:1].isupper() and "_" not in name:
            for known in self._items:
                if squash(known) == name.lower():
                    return known
        raise UnknownNameError(self.kind, name, self.names())

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
