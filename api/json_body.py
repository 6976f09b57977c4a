"""JSON request bodies, checked before the route parses them: UTF-8, nesting depth, numbers.

Python's `json` recurses once per level of nesting, so a body of 100,000 `[` would exhaust the
stack. The depth is found by one linear, vectorised pass over the bytes instead: brackets count
only outside strings, and a string ends at the first quote that no backslash escapes.
"""

from __future__ import annotations

import re
import sys

import numpy as np

from api.problems import BodyError

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_QUOTE, _SPACE = ord('"'), np.uint8(ord(" "))


def check_json(body: bytes, *, max_depth: int) -> None:
    """Raise BodyError unless `body` is UTF-8, nested at most `max_depth` deep, and holds no
    integer longer than Python will convert. Syntax is left to the parser: this only makes sure
    that parsing is safe."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(
            f"the body is not UTF-8 (byte 0x{body[e.start]:02x})",
            "body_not_utf8",
            *_at(body, e.start),
        ) from e
    # Escapes are two bytes (`\"`, `\\`, `\u...` starts with one): blank each out, same length.
    text = np.frombuffer(_ESCAPE.sub(b"  ", body), dtype=np.uint8)
    in_string = np.logical_xor.accumulate(text == _QUOTE)
    code = np.where(in_string, _SPACE, text)
    opens = (code == ord("[")) | (code == ord("{"))
    closes = (code == ord("]")) | (code == ord("}"))
    depth = np.cumsum(opens.view(np.int8) - closes.view(np.int8), dtype=np.int32)
    too_deep = np.flatnonzero(depth > max_depth)
    if too_deep.size:
        raise BodyError(
            f"the body is nested deeper than {max_depth} levels (EPOCHAL_MAX_BODY_DEPTH)",
            "body_too_deep",
            *_at(body, int(too_deep[0])),
        )
    if digits := sys.get_int_max_str_digits():
        long_number = re.search(rb"[0-9]{%d}" % (digits + 1), code.tobytes())
        if long_number:
            raise BodyError(
                f"a number in the body has more than {digits} digits",
                "body_number_too_long",
                *_at(body, long_number.start()),
            )


def _at(body: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in bytes) of `offset`."""
    line_start = body.rfind(b"\n", 0, offset) + 1
    return body.count(b"\n", 0, offset) + 1, offset - line_start + 1
