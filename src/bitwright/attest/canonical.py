"""Canonical JSON (RFC 8785, JCS): the one byte form in which bitwright signs and digests JSON."""

from __future__ import annotations

from typing import Any

import rfc8785

from bitwright.errors import UsageError

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    """Serialize ``obj`` as RFC 8785 canonical JSON (UTF-8, sorted keys, no whitespace).

    Args:
        obj: plain JSON data: dicts with string keys, lists, tuples, str, int, float,
            bool, None.

    Returns:
        The canonical bytes; equal data always gives equal bytes.

    Raises:
        UsageError: a value has no canonical JSON form: an integer beyond +-(2**53 - 1)
            (I-JSON, e.g. a 64-bit seed), NaN or infinity.
        ValueError: ``obj`` holds something that is not JSON data, such as a non-string
            key or an arbitrary object (a bug of the caller).
    """
    try:
        return bytes(rfc8785.dumps(obj))
    except rfc8785.IntegerDomainError as exc:
        raise UsageError(
            f"cannot write canonical JSON (RFC 8785): {exc}",
            hint="keep integers within +-(2**53 - 1), e.g. use a smaller seed, "
            "or record the value as a string",
        ) from exc
    except rfc8785.FloatDomainError as exc:
        raise UsageError(
            f"cannot write canonical JSON (RFC 8785): {exc}",
            hint="NaN and infinity have no JSON form; record them as strings",
        ) from exc
