"""API-wide behaviour: every error is JSON with a message and a machine code."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def validation_error_detail(error: DjangoValidationError) -> tuple[str, dict | None]:
    """The message and (for field errors) the per-field messages of a Django ValidationError."""
    if hasattr(error, "error_dict"):
        errors = {field: [str(m) for e in errs for m in e.messages] for field, errs in error.error_dict.items()}
        first = next(iter(errors.items()))
        return f"{first[0]}: {first[1][0]}", errors
    return " ".join(error.messages), None


def exception_handler(exc, context):
    """Shape every API error as {"detail": ..., "code": ..., "errors"?: {...}}."""
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
