"""How Rust's serde words values, for plugins that must give the same
messages as their Rust twins (the examples' configuration errors, a value
hashed from its JSON text). Plain Python; nothing here runs per event unless
a plugin calls it."""

from __future__ import annotations

import math

__all__ = ["debug_str", "float_text"]


def float_text(value: float) -> str:
    """How serde_json writes a float in a message: shortest digits, fixed
    notation for decimal exponents -5 to 15, else ``1.5e+20``, ``1e-7``."""
    if not math.isfinite(value):
        return repr(value)
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(value)
    sign = "-" if text.startswith("-") else ""
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    significant = all_digits.lstrip("0")
    dec_exp = len(whole) - 1 + (int(exponent) if exponent else 0) - (len(all_digits) - len(significant))
    digits = significant.rstrip("0")
    if -5 <= dec_exp <= 15:
        if len(digits) - 1 <= dec_exp:
            return f"{sign}{digits}{'0' * (dec_exp + 1 - len(digits))}.0"
        if dec_exp >= 0:
            return f"{sign}{digits[: dec_exp + 1]}.{digits[dec_exp + 1 :]}"
        return f"{sign}0.{'0' * (-dec_exp - 1)}{digits}"
    point = f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits
    return f"{sign}{point}e{'+' if dec_exp >= 0 else '-'}{abs(dec_exp)}"


def debug_str(text: str) -> str:
    """Rust's ``{:?}`` of a string (control characters escaped)."""
    out = []
    for c in text:
        if c in _DEBUG_ESCAPES:
            out.append(_DEBUG_ESCAPES[c])
        elif c < " " or "\x7f" <= c <= "\x9f":
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


_DEBUG_ESCAPES = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\"}
