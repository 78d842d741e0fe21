"""API-wide behaviour: every error is JSON with a message and a machine code."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, parsers


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, held to Django's DATA_UPLOAD_MAX_MEMORY_SIZE.

    DRF reads the body as a stream, which bypasses Django's own check of that limit: without this, a client could
    make the server read and parse a body of any size before the graph's 2 MB rule ever looked at it.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
            stream = io.BytesIO(body)
        return super().parse(stream, media_type, parser_context)


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
