"""Reading a request body within limits, before and after decompression."""

from __future__ import annotations

import zlib

from django.http import HttpRequest


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_body(request: HttpRequest, max_bytes: int, max_decoded_bytes: int) -> bytes:
    """The request body, gunzipped when sent with Content-Encoding: gzip.

    Raises BodyError(413) past either limit and BodyError(400/415) for a body
    that cannot be decoded.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BodyError(400, "Content-Length is not a number") from None
    if declared > max_bytes:
        raise BodyError(413, f"body is larger than {max_bytes} bytes")
    data = request.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BodyError(413, f"body is larger than {max_bytes} bytes")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding not in ("gzip", "x-gzip"):
        raise BodyError(415, f"Content-Encoding {encoding[:40]!r} is not supported (use gzip)")
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(data, max_decoded_bytes + 1)
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid gzip: {exc}") from None
    if len(out) > max_decoded_bytes or decoder.unconsumed_tail:
        raise BodyError(413, f"decompressed body is larger than {max_decoded_bytes} bytes")
    if not decoder.eof:
        raise BodyError(400, "gzip body is truncated")
    return out
