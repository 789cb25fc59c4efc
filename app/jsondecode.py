"""JSON text to a value, exactly as ``json.loads`` decodes it, for one small message at a time.

``json.loads`` wraps the C scanner in Python (a decoder method, two whitespace
matches); for a stream's small messages that wrapping costs as much as the
scanning. Text with surrounding whitespace or anything invalid takes the usual
path, so the value and the error are always ``json.loads``'s.
"""

from __future__ import annotations

import json
import json.scanner
from typing import Any

__all__ = ["decode_json"]

_decoder = json.JSONDecoder()
_scan_once = json.scanner.make_scanner(_decoder)  # the C scanner where there is one


def decode_json(text: str) -> Any:
    """The value of ``text``; raises ``ValueError`` (a ``JSONDecodeError``) if it is not JSON."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        end = -1
    if end == len(text):
        return value
    return _decoder.decode(text)  # whitespace around it, or not JSON: json's own answer
