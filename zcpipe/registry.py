"""The one registry every extension point uses: spaces, proxies, datasets, predictors, label formats.

Each entry is declared where it is defined, the same way for every kind (timm style):

    @SPACES.register("nb201")
    def nb201(...): ...

    @PROXIES.register("synflow", scope="layer", pass_name="synflow")
    class Synflow(Proxy): ...

The keywords are the kind's declared attributes (`Registry(..., attrs=...)`): an undeclared one is a
mistake caught at import, a missing one takes the attribute's default. They are set on the entry
(with `name`), so a class reads its own policy as `self.scope`. Built-in entries are imported on the
first look-up by `load`, a function of the room's public module, so importing a registry is cheap and
no entry module imports the module that lists it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from zcpipe.errors import InputError, ZcpipeError

T = TypeVar("T")


class UnknownNameError(InputError, ValueError):
    """No entry is registered under that name; the message names the choices."""


class Registry(Generic[T]):
    """Named entries of one kind: `register`, `get`, `names` (with a filter), `entries`.

    `kind` names the entries in messages ("space", "proxy"); `error` is the exception an unknown name
    raises (a subclass of `UnknownNameError`'s bases the room already uses); `attrs` the declared
    attributes with their defaults; `option` the configuration option that takes the name, which the
    error names so a user knows what to change.
    """

    def __init__(
        self,
        kind: str,
        *,
        error: type[Exception] = UnknownNameError,
        attrs: Mapping[str, Any] | None = None,
        option: str | None = None,
        load: Callable[[], None] | None = None,
    ) -> None:
        self.kind = kind
        self.error = error
        self.attrs = dict(attrs or {})
        self.option = option
        self._load = load
        self._loaded = load is None
        self._entries: dict[str, T] = {}

    def set_loader(self, load: Callable[[], None]) -> None:
        """Name the function that imports the built-in entries (run once, on the first look-up)."""
        self._load, self._loaded = load, False

    def register(self, name: str, **attrs: Any) -> Callable[[T], T]:
        """Decorator (or call on an object) registering it as `name` with the kind's attributes."""
        unknown = sorted(set(attrs) - set(self.attrs))
        if unknown:
            raise TypeError(f"{self.kind} {name!r}: no attribute {', '.join(unknown)} (declared: "
                            f"{', '.join(self.attrs) or 'none'})")  # fmt: skip

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            for key, value in {"name": name, **self.attrs, **attrs}.items():
                setattr(obj, key, value)
            self._entries[name] = obj
            return obj

        return deco

    def _ensure_loaded(self) -> None:
        if not self._loaded and self._load is not None:
            self._loaded = True  # before the call: the entries' modules register while it runs
            self._load()

    def get(self, name: str) -> T:
        """The entry registered as `name`; the kind's error, naming the choices, for any other name."""
        self._ensure_loaded()
        if name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]

    def unknown(self, name: str, choices: list[str] | None = None) -> Exception:
        """The error for an unknown `name`, listing `choices` (default: every registered name)."""
        listed = ", ".join(choices if choices is not None else self.names())
        option = f" (`{self.option}`)" if self.option else ""
        message = f"unknown {self.kind} {name!r}{option}; choose one of: {listed}"
        if issubclass(self.error, ZcpipeError):
            return self.error(message, options=[self.option] if self.option else [])
        return self.error(message)

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """The registered names, sorted; only the entries `where` accepts when given."""
        return [name for name, _ in self.entries(where)]

    def entries(self, where: Callable[[T], bool] | None = None) -> list[tuple[str, T]]:
        """(name, entry) pairs, sorted by name; only those `where` accepts when given."""
        self._ensure_loaded()
        return [(n, e) for n, e in sorted(self._entries.items()) if where is None or where(e)]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)
