"""A roster row's phones: a read-only ``Mapping[PhoneType, str | None]`` in 48 bytes.

A dict of three entries is 224 bytes; a million-row roster holds a million of them (each
shared by the row and its user), so this is the largest single thing the reader keeps.
The keys are the file's phone columns (``types``, one tuple shared by every row); a value
is the number in Graph's form, or None for a blank or unusable cell. It compares equal to
a dict with the same items, and reads like one (``get``, ``[]``, ``items``, ``in``).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, overload

from provision.model import PhoneType

__all__ = ["SLOT", "RowPhones"]

# Where each phone type is kept (the reader fills the slots in this order too).
SLOT = {PhoneType.MOBILE: 0, PhoneType.ALTERNATE_MOBILE: 1, PhoneType.OFFICE: 2}


class RowPhones(Mapping[PhoneType, "str | None"]):
    __slots__ = ("_types", "_mobile", "_alternate", "_office")

    _types: tuple[PhoneType, ...]
    _mobile: str | None
    _alternate: str | None
    _office: str | None

    def __init__(self, types: tuple[PhoneType, ...], mobile: str | None, alternate: str | None, office: str | None) -> None:
        self._types = types
        self._mobile = mobile
        self._alternate = alternate
        self._office = office

    def _value(self, slot: int) -> str | None:
        return self._mobile if slot == 0 else self._alternate if slot == 1 else self._office

    def __getitem__(self, key: PhoneType) -> str | None:
        if key not in self._types:
            raise KeyError(key)
        return self._value(SLOT[key])

    @overload
    def get(self, key: PhoneType, /) -> str | None: ...
    @overload
    def get(self, key: PhoneType, default: Any, /) -> Any: ...
    def get(self, key: PhoneType, default: Any = None, /) -> Any:
        if key not in self._types:
            return default
        return self._value(SLOT[key])

    def __contains__(self, key: object) -> bool:
        return key in self._types

    def __iter__(self) -> Iterator[PhoneType]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def keys(self) -> KeysView[PhoneType]:
        return KeysView(self)

    def items(self) -> ItemsView[PhoneType, str | None]:
        return ItemsView(self)

    def values(self) -> ValuesView[str | None]:
        return ValuesView(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowPhones) and other._types == self._types:
            return (self._mobile, self._alternate, self._office) == (other._mobile, other._alternate, other._office)
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a dict

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (RowPhones, (self._types, self._mobile, self._alternate, self._office))
