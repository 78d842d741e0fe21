"""API-wide behaviour: every error is JSON with a message and a machine code."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, parsers
from rest_framework.utils.json import strict_constant

from config import inputs

logger = logging.getLogger(__name__)


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The database is unavailable for a moment; nothing was changed. Try again shortly."
    default_code = "unavailable"
    retry_after = 5


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, held to the limits every client text meets before it goes further (config/inputs.py).

    - The size: DATA_UPLOAD_MAX_MEMORY_SIZE. DRF reads the body as a stream, which bypasses Django's own check of
      that limit: without this, a client could make the server read and parse a body of any size (a 413).
    - The nesting: JSON_MAX_DEPTH levels of arrays and objects, counted before parsing, because Python's parser
      recurses (5,000 `[` were a RecursionError, a 500). A `parse_error`.
    - The text: no NUL and no lone surrogate in any string or key (`"\\u0000"` and `"\\ud800"` are valid JSON that
      PostgreSQL and UTF-8 refuse). An `invalid` error naming the field, as any other bad field: every view gets
      text it can store, whatever it does with it.
    NaN and Infinity stay refused, as DRF's STRICT_JSON does (PostgreSQL's jsonb refuses them too).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = self._read(stream).decode(encoding)
        except UnicodeDecodeError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        limit = settings.JSON_MAX_DEPTH
        if inputs.nesting_depth_exceeds(text, limit):
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {limit} levels of arrays and objects.")
        try:
            data = json.loads(text, parse_constant=strict_constant)
        except ValueError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        bad = inputs.find_bad_text(data)
        if bad is not None:
            field, problem = bad
            raise exceptions.ValidationError({field: [problem]})
        return data

    @staticmethod
    def _read(stream) -> bytes:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        return body


def validation_error_detail(error: DjangoValidationError) -> tuple[str, dict | None]:
    """The message and (for field errors) the per-field messages of a Django ValidationError."""
    if hasattr(error, "error_dict"):
        errors = {field: [str(m) for e in errs for m in e.messages] for field, errs in error.error_dict.items()}
        first = next(iter(errors.items()))
        return f"{first[0]}: {first[1][0]}", errors
    return " ".join(error.messages), None


def exception_handler(exc, context):
    """Shape every API error as {"detail": ..., "code": ..., "errors"?: {...}}."""
    # Imported here, not at the top: DRF's views read DEFAULT_PARSER_CLASSES (this module's JSONParser) when first
    # imported, so a top-level import is circular whenever this module loads first (as in Daphne, where the
    # WebSocket consumer imports validation_error_detail before any view).
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        detail, errors = validation_error_detail(exc)
        exc = exceptions.ValidationError({"detail": detail, **({"errors": errors} if errors else {})})
        response = drf_exception_handler(exc, context)
        response.data = {"detail": detail, "code": "invalid", **({"errors": errors} if errors else {})}
        return response
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, OperationalError | InterfaceError):
        # PostgreSQL is restarting or unreachable: nothing was written (the transaction did not commit), and the
        # client may try again shortly. Logged, since an operator wants to know.
        logger.warning("Database unavailable: %s", exc)
        exc = ServiceUnavailable()
        response = drf_exception_handler(exc, context)
        response["Retry-After"] = str(ServiceUnavailable.retry_after)
        response.data = {"detail": str(exc.detail), "code": exc.default_code}
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        field, messages = next(iter(errors.items())) if errors else ("detail", ["Invalid input."])
        message = messages[0] if isinstance(messages, list) and messages else messages
        response.data = {"detail": f"{field}: {message}", "code": "invalid", "errors": errors}
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"detail": str(detail), "code": code}
    return response
