"""The pieces every API endpoint builds on: tenant-scoped viewsets and related fields,
pagination, one error shape, bulk requests and Idempotency-Key replay."""
import functools
import hashlib
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from .exceptions import _flatten, error_body  # noqa: F401 (error_body is part of this module's interface)
from .models import IdempotencyRecord
from .pagination import CursorPagination, StandardPagination  # noqa: F401
from .tenancy import require_tenant


class Conflict(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_conflict"
    default_detail = "This Idempotency-Key was already used with a different request body."


# ---------------------------------------------------------------- tenant-scoped pieces

class TenantRelatedField(serializers.PrimaryKeyRelatedField):
    """Takes the id of another object and finds it only inside the caller's tenant."""

    def __init__(self, model, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs["queryset"] = _LazyQueryset(model)
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.all()


class TenantSlugRelatedField(serializers.SlugRelatedField):
    """Takes a natural key (a store code) and finds it only inside the caller's tenant."""

    def __init__(self, model, slug_field, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs["queryset"] = _LazyQueryset(model)
        super().__init__(slug_field=slug_field, **kwargs)

    def get_queryset(self):
        return self.model.objects.all()


class _LazyQueryset:
    """Placeholder so DRF's 'queryset required' assertion passes; get_queryset() does the work."""

    def __init__(self, model):
        self.model = model

    def all(self):
        return self.model.objects.all()


class TenantViewSetMixin:
    """Scopes every query to the caller's tenant (the manager does) and to what the caller may see."""

    def get_queryset(self):
        require_tenant()
        return super().get_queryset()

    @property
    def staff(self):
        return getattr(self.request._request, "staff", None)

    @property
    def tenant(self):
        return require_tenant()

    def perform_create(self, serializer):
        serializer.save(tenant=self.tenant)


class TenantModelViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create and update; deletion is left out on purpose (history matters)."""


# ---------------------------------------------------------------- idempotency

def idempotent(view_method):
    """Replay the first answer to a request with the same Idempotency-Key.

    The work and the record of its answer commit in one transaction, so a retry after a crash
    either finds the answer or finds nothing done. The same key with another body is a 422.
    """

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view_method(self, request, *args, **kwargs)
        if len(key) > 255:
            raise exceptions.ValidationError({"Idempotency-Key": [_("Must be at most 255 characters.")]})
        tenant = require_tenant()
        scope = f"{request.method} {request.path}"
        fingerprint = hashlib.sha256(request.body).hexdigest()

        def replay(record):
            if record.fingerprint != fingerprint:
                raise Conflict(_("This Idempotency-Key was already used with a different request body."))
            response = Response(record.response, status=record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response

        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if existing is not None:
            return replay(existing)
        try:
            with transaction.atomic():
                response = view_method(self, request, *args, **kwargs)
                if response.status_code < 500:
                    IdempotencyRecord.objects.create(
                        tenant=tenant, scope=scope, key=key, fingerprint=fingerprint,
                        status_code=response.status_code, response=json.loads(json.dumps(response.data, default=str)),
                    )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
            if existing is None:
                raise
            return replay(existing)
        return response

    return wrapper


# ---------------------------------------------------------------- bulk

def read_bulk_items(request):
    """The body of a bulk request: a JSON array of at most BULK_MAX_ITEMS objects."""
    data = request.data
    if not isinstance(data, list):
        raise exceptions.ValidationError(_("The body must be a JSON array of objects."))
    limit = settings.BULK_MAX_ITEMS
    if len(data) > limit:
        raise exceptions.ValidationError(
            _("A bulk request takes at most %(limit)d items; this one has %(count)d.") % {"limit": limit, "count": len(data)}
        )
    if not data:
        raise exceptions.ValidationError(_("The array is empty."))
    return data


def validate_bulk(serializer_class, items, context):
    """Validate each item on its own. Returns (valid [(index, data)], errors {index: fields})."""
    valid, errors = [], {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors[index] = {"non_field_errors": [_("Each item must be a JSON object.")]}
            continue
        serializer = serializer_class(data=item, context=context)
        if serializer.is_valid():
            valid.append((index, serializer.validated_data))
        else:
            errors[index] = _flatten(serializer.errors)
    return valid, errors


def bulk_response(count, outcomes, errors):
    """Answer per item in input order: {id, external_id, status} or {status: error, errors}."""
    results = []
    for index in range(count):
        if index in errors:
            results.append({"index": index, "status": "error", "errors": errors[index]})
        else:
            results.append({"index": index, **outcomes[index]})
    summary = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
    for item in results:
        summary[item["status"]] += 1
    return Response({"summary": summary, "results": results}, status=status.HTTP_200_OK)
