"""Hypothesis strategies shared by the test suites (wire values, requests, byte-stream chunking)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import strategies as st

# orjson and msgpack both refuse lone surrogates, which no JSON/MessagePack peer can send.
wire_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)

json_scalars = (
    st.none()
    | st.booleans()
    # The full range both codecs carry: i64 min .. u64 max.
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | wire_text
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(wire_text, children, max_size=4)
    ),
    max_leaves=12,
)
"""Any value that survives a JSON or MessagePack round trip unchanged."""

json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    wire_text, json_values, max_size=6
)
"""A request-shaped value: a JSON object / MessagePack map with string keys."""

# Strings for which the §4.1 size estimate is exact: no character JSON would escape.
_unescaped_chars = st.characters(
    min_codepoint=0x20, exclude_categories=["Cs"], exclude_characters='"\\\x7f'
)
unescaped_text = st.text(_unescaped_chars, max_size=12)

estimate_exact_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | unescaped_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(unescaped_text, children, max_size=4)
    ),
    max_leaves=12,
)
"""Values whose compact JSON length equals `estimate_json_size` exactly (no numbers/escapes)."""


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at arbitrary points, as successive socket reads would deliver it."""
    if not data:
        return []
    cuts = draw(st.lists(st.integers(min_value=1, max_value=len(data) - 1), max_size=12))
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]
