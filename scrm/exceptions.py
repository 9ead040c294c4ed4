from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"


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


def not_found(request, exception=None):
    """handler404: an API path answers in the error shape, a page path with the 404 page."""
    if request.path.startswith(API_PREFIX):
        message = _("There is no endpoint at %(path)s.") % {"path": request.path}
        return JsonResponse(error_body(404, "not_found", message), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: an API path answers in the error shape, a page path with the 500 page."""
    if request.path.startswith(API_PREFIX):
        message = _("The server failed to answer this request; it was logged.")
        return JsonResponse(error_body(500, "server_error", message), status=500)
    return defaults.server_error(request)
