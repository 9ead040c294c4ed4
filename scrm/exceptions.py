from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def _flatten(detail):
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            return [str(item) for item in detail]
        return [_flatten(item) for item in detail]
    return [str(detail)]


def error_body(status_code, code, message, fields=None):
    body = {"error": {"status": status_code, "code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


def exception_handler(exc, context):
    """Every error, whatever raised it, answers {"error": {status, code, message[, fields]}}."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    code = getattr(exc, "default_code", "error")
    fields = None
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        if isinstance(detail, dict):
            fields = _flatten(detail)
            message = _("The request has invalid fields.")
            non_field = fields.get("non_field_errors")
            if non_field and len(fields) == 1:
                message = " ".join(non_field) if isinstance(non_field[0], str) else message
        else:
            message = " ".join(_flatten(detail)) if detail else _("Invalid request.")
    else:
        if isinstance(detail, dict):
            message = " ".join(" ".join(v) if isinstance(v, list) else str(v) for v in detail.values())
        elif isinstance(detail, list):
            message = " ".join(str(v) for v in detail)
        else:
            message = str(detail) if detail else str(exc)
        if hasattr(detail, "code") and detail.code:
            code = detail.code
    response.data = error_body(response.status_code, code, message, fields)
    return response
