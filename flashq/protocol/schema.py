"""Field types and precomputed schemas: the machinery `commands.normalize` runs on.

A schema is compiled once, at import, into a lookup table (wire key -> canonical name, checker)
and a template dict holding every default, so normalizing a request costs one dict copy plus
one lookup and one type check per key the client actually sent: no reflection per call.

Type rules (PROTOCOL.md conventions): unsigned kinds take a non-negative int in range (bool is
not an int; `1.0` and `"5"` are refused), signed kinds a signed int in range, `null` means
"absent" for every field (the default applies; a required `any` field may be null).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, final

import attrs

from flashq.errors import ProtocolError

Check = Callable[[str, Any], Any]
"""Validate `value` sent under wire key `key`; return the normalized value or raise."""

U64_MAX: Final = 2**64 - 1
U32_MAX: Final = 2**32 - 1


@final
class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


REQUIRED: Final[Any] = _Marker("REQUIRED")
"""Default of a field the client must send."""
EMPTY_LIST: Final[Any] = _Marker("EMPTY_LIST")
"""Default of a list field: a fresh `[]` per request, never a shared one."""


def describe(value: Any) -> str:
    """Short serde-style description of a wire value for diagnostics."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "..."
        return f'string "{text}"'
    if isinstance(value, list | tuple):
        return "a sequence"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, bytes | bytearray):
        return "a byte array"
    return type(value).__name__


def invalid(key: str, value: Any, expected: str, *, what: str = "type") -> ProtocolError:
    """The ProtocolError for `value` under `key` not being an `expected` (serde's wording)."""
    return ProtocolError(f"invalid {what}: {describe(value)}, expected {expected} (field `{key}`)")


# Checker -> (exact type, lo, hi): lets `Schema.build` accept the common case inline, without a
# call (about 15% of a PUSH as the TS SDK sends it). The checker remains the slow path.
_FAST_PATHS: dict[Check, tuple[type, int | None, int | None]] = {}


class _AnyValue:
    """Type no wire value has: makes the inline test fail fast for `any` fields."""


def _integer(lo: int, hi: int, expected: str) -> Check:
    def check(key: str, value: Any) -> int:
        if type(value) is int:
            if lo <= value <= hi:
                return value
        elif isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            raise invalid(key, value, expected, what="value")  # out of range
        raise invalid(key, value, expected)

    check.__qualname__ = check.__name__ = expected
    _FAST_PATHS[check] = (int, lo, hi)
    return check


U64: Final = _integer(0, U64_MAX, "u64")
USIZE: Final = _integer(0, U64_MAX, "usize")
U32: Final = _integer(0, U32_MAX, "u32")
U8: Final = _integer(0, 255, "u8")
I32: Final = _integer(-(2**31), 2**31 - 1, "i32")
I64: Final = _integer(-(2**63), 2**63 - 1, "i64")
ANY: Final = None
"""Any JSON value: no check at all."""


def STR(key: str, value: Any) -> str:  # a type name, like U64
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise invalid(key, value, "a string")


def BOOL(key: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise invalid(key, value, "a boolean")


_FAST_PATHS[STR] = (str, None, None)
_FAST_PATHS[BOOL] = (bool, None, None)


def PROGRESS(key: str, value: Any) -> int:
    """u8, except that a finite float is truncated and clamped to 0..100.

    The TS SDK clamps progress to 0..100 but may send a fraction (PROTOCOL.md §6.2 ★).
    """
    if type(value) is int and 0 <= value <= 255:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return min(max(int(value), 0), 100)
    return U8(key, value)  # type: ignore[no-any-return]


_FAST_PATHS[PROGRESS] = (int, 0, 255)


def capped(check: Check, cap: int) -> Check:
    """`check`, then min(value, cap): for limits the server silently caps."""

    def capped_check(key: str, value: Any) -> Any:
        return min(check(key, value), cap)

    fast = _FAST_PATHS.get(check)
    if fast is not None and fast[1] is not None:
        _FAST_PATHS[capped_check] = (fast[0], fast[1], cap)
    return capped_check


def list_of(item: Check, expected: str) -> Check:
    """A JSON array whose every element passes `item` (elements may not be null)."""
    full = f"a sequence of {expected}"

    def check(key: str, value: Any) -> list[Any]:
        if type(value) is not list:
            if not isinstance(value, list | tuple):
                raise invalid(key, value, full)
            value = list(value)
        changed: list[Any] | None = None
        index = 0
        try:
            for index, element in enumerate(value):
                checked = item(key, element)
                if checked is not element:
                    if changed is None:
                        changed = list(value)
                    changed[index] = checked
        except ProtocolError as exc:
            raise ProtocolError(f"{exc} at index {index}") from None
        return value if changed is None else changed

    return check


def maps_of(
    schema: Schema, expected: str, *, max_items: int | None = None, sparse: bool = False
) -> Check:
    """A JSON array of objects, each normalized by `schema` (PUSHB jobs, FLOW children ...).

    Past `max_items` elements the command does nothing by definition (PUSHB answers `ids: []`,
    KVMSET an error), so the elements are left as sent instead of normalizing, say, the
    millions of `{}` a 16 MiB frame can hold.
    """
    full = f"a sequence of {expected}"

    def check(key: str, value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise invalid(key, value, full)
        if max_items is not None and len(value) > max_items:
            return list(value)
        build = schema.build_sparse if sparse else schema.build
        # An element whose one key takes any value is its own sparse form (no required field
        # can be missing then): `{"data": …}`, nearly every PUSHB element.
        unchecked = schema.unchecked if sparse and not schema._required else frozenset()
        out: list[Any] = []
        append = out.append
        for index, element in enumerate(value):
            if type(element) is not dict and not isinstance(element, Mapping):
                raise invalid(f"{key}[{index}]", element, expected)
            if len(element) == 1 and type(element) is dict and next(iter(element)) in unchecked:
                append(element)
                continue
            try:
                append(build(element))
            except ProtocolError as exc:
                raise ProtocolError(f"{exc} in `{key}[{index}]`") from None
        return out

    return check


_Entry = tuple[str, type, int | None, int | None, Check | None, bool]
"""Lookup entry: canonical name, inline type test (type, lo, hi), checker, is-an-alias."""


@final
@attrs.frozen
class Field:
    """One field of a command: canonical snake_case name, checker, default, wire aliases."""

    name: str
    check: Check | None
    default: Any = REQUIRED
    aliases: tuple[str, ...] = ()


@final
class Schema:
    """A compiled command (or nested object) schema; `build` normalizes one request object."""

    __slots__ = ("_fresh", "_lookup", "_required", "_template", "cmd", "fields", "unchecked")

    def __init__(self, cmd: str | None, fields: Iterable[Field]) -> None:
        self.cmd = cmd
        self.fields: tuple[Field, ...] = tuple(fields)
        template: dict[str, Any] = {} if cmd is None else {"cmd": cmd}
        lookup: dict[str, _Entry] = {}
        for field in self.fields:
            if field.name in template or field.name in lookup:
                raise ValueError(f"{cmd}: duplicate field {field.name}")
            template[field.name] = field.default
            if field.check is None:
                fast: tuple[type, int | None, int | None] = (_AnyValue, None, None)
            else:
                fast = _FAST_PATHS.get(field.check, (_AnyValue, None, None))
            for key in (field.name, *field.aliases):
                lookup[key] = (field.name, *fast, field.check, key != field.name)
        self._template = template
        self._lookup = lookup
        self._required = tuple(f.name for f in self.fields if f.default is REQUIRED)
        self._fresh = tuple(f.name for f in self.fields if f.default is EMPTY_LIST)
        #: Canonical names taking any value: `build_sparse` copies them as they are.
        self.unchecked = frozenset(f.name for f in self.fields if f.check is None)

    @property
    def field_names(self) -> Sequence[str]:
        return tuple(f.name for f in self.fields)

    def build(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Normalize `obj`: defaults applied, aliases renamed, unknown keys dropped.

        Raises:
            ProtocolError: a field has the wrong type or range, or a required one is missing.
        """
        out = self._template.copy()
        lookup = self._lookup
        for key, value in obj.items():
            entry = lookup.get(key)
            if entry is None:
                continue
            name, fast_type, lo, hi, check, is_alias = entry
            if value is None:
                if check is None and not is_alias:
                    out[name] = None  # a required `any` field may be null
                continue
            if is_alias and obj.get(name) is not None:
                continue  # the canonical spelling wins over an alias
            if check is None or (
                type(value) is fast_type and (lo is None or lo <= value <= hi)  # type: ignore[operator]
            ):
                out[name] = value
            else:
                out[name] = check(key, value)
        for name in self._required:
            if out[name] is REQUIRED:
                raise ProtocolError(f"missing field `{name}`")
        for name in self._fresh:
            if out[name] is EMPTY_LIST:
                out[name] = []
        return out

    def build_sparse(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Like `build`, but only the fields the client sent (no defaults filled in).

        For PUSHB elements: a batch of 1 000 `{"data": …}` jobs would otherwise copy a
        22-key template 1 000 times; the engine reads job options with `.get` and applies
        the same defaults itself (`Job.from_push`).
        """
        out: dict[str, Any] = {}
        lookup = self._lookup
        for key, value in obj.items():
            entry = lookup.get(key)
            if entry is None or value is None:
                continue
            name, fast_type, lo, hi, check, is_alias = entry
            if is_alias and obj.get(name) is not None:
                continue
            if check is None or (
                type(value) is fast_type and (lo is None or lo <= value <= hi)  # type: ignore[operator]
            ):
                out[name] = value
            else:
                out[name] = check(key, value)
        for name in self._required:
            if name not in out:
                raise ProtocolError(f"missing field `{name}`")
        return out
