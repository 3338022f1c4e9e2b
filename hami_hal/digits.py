"""Plain decimal digits, the one test for "this text is a non-negative integer" on input from outside.

``str.isdigit()`` is true for '¹', '²' and other Unicode digits that ``int()`` rejects (ValueError instead
of the caller's one-line error) and for '٣' that ``int()`` reads as 3. Annotations, env values, tool output
and config files carry plain ASCII 0-9, so anything else is refused at the same place as any other bad value.
"""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """True for a non-empty string of ASCII 0-9 only."""
    return bool(text) and text.isascii() and text.isdigit()
