"""The pieces every API endpoint builds on: tenant-scoped viewsets and related fields,
pagination, one error shape, bulk requests and Idempotency-Key replay."""
import functools
import hashlib
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import (
    OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer, inline_serializer,
)
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

# Key of the serializer context under which a bulk request keeps the related objects it looked up.
RELATED_CACHE = "related_cache"


class _CachedLookup:
    """Looks a value up once per bulk request: a batch of 1,000 orders names a few stores."""

    def to_internal_value(self, data):
        cache = self.context.get(RELATED_CACHE)
        if cache is None:
            return super().to_internal_value(data)
        key = (type(self).__name__, self.model._meta.label, getattr(self, "slug_field", "pk"), str(data))
        if key not in cache:
            try:
                cache[key] = super().to_internal_value(data)
            except serializers.ValidationError as exc:
                cache[key] = exc
        found = cache[key]
        if isinstance(found, serializers.ValidationError):
            raise serializers.ValidationError(found.detail)
        return found


class TenantRelatedField(_CachedLookup, serializers.PrimaryKeyRelatedField):
    """Takes the id of another object and finds it only inside the caller's tenant."""

    def __init__(self, model, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs["queryset"] = _LazyQueryset(model)
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.all()


class TenantSlugRelatedField(_CachedLookup, serializers.SlugRelatedField):
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
            stored = record.response
            # Kept as JSON text: a jsonb object would come back with its keys reordered.
            data = json.loads(stored) if isinstance(stored, str) else stored
            response = Response(data, status=record.status_code)
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
                        status_code=response.status_code, response=json.dumps(response.data, default=str),
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
    """Validate each item on its own. Returns (valid [(index, data)], errors {index: fields}).

    One serializer validates every item, as DRF's ListSerializer does: building a serializer's
    fields costs more than validating an item. Related objects named by the items (a store code,
    a guide id) are looked up once per batch, not once per item.
    """
    serializer = serializer_class(context={**context, RELATED_CACHE: {}})
    valid, errors = [], {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors[index] = {"non_field_errors": [_("Each item must be a JSON object.")]}
            continue
        serializer.initial_data = item
        try:
            valid.append((index, serializer.run_validation(item)))
        except exceptions.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            errors[index] = _flatten(detail)
    return valid, errors


def bulk_response(items, outcomes, errors):
    """Answer per item in input order: {index, id, external_id, status} or {index, external_id, status:
    error, errors}; an item in error names its external_id when it had one, so it can be found."""
    results = []
    for index, item in enumerate(items):
        if index in errors:
            external_id = item.get("external_id") if isinstance(item, dict) else None
            named = {"external_id": external_id} if isinstance(external_id, str) and external_id else {}
            results.append({"index": index, **named, "status": "error", "errors": errors[index]})
        else:
            results.append({"index": index, **outcomes[index]})
    summary = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
    for item in results:
        summary[item["status"]] += 1
    return Response({"summary": summary, "results": results}, status=status.HTTP_200_OK)


# ---------------------------------------------------------------- schema pieces shared by the endpoints

ErrorSerializer = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "status": serializers.IntegerField(help_text=gettext_lazy("The HTTP status code.")),
                "code": serializers.CharField(help_text=gettext_lazy("A stable code, e.g. invalid, not_found.")),
                "message": serializers.CharField(help_text=gettext_lazy("What went wrong, in the caller's language.")),
                "fields": serializers.DictField(
                    required=False,
                    help_text=gettext_lazy("Messages by field name (nested for nested fields), when fields were wrong."),
                ),
            },
        )
    },
)

BulkResponseSerializer = inline_serializer(
    "BulkResponse",
    {
        "summary": serializers.DictField(
            child=serializers.IntegerField(), help_text=gettext_lazy("Items by status: created, updated, unchanged, error.")
        ),
        "results": serializers.ListField(
            child=serializers.DictField(),
            help_text=gettext_lazy(
                "One answer per item in input order: index, id, external_id and status, or status error with "
                "errors by field."
            ),
        ),
    },
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description=gettext_lazy(
        "Any unique string, at most 255 characters. A retry with the same key and body answers the first answer "
        "again and does nothing; the same key with another body is a 422."
    ),
)


def error_response(description, status_code, code, message, fields=None):
    """An OpenAPI response in the one error shape, with an example."""
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[OpenApiExample(code, value=error_body(status_code, code, message, fields))],
    )


INVALID_RESPONSE = error_response(
    gettext_lazy("Invalid fields."), 400, "invalid", "The request has invalid fields.",
    {"mobile": ["Not a valid mobile number."]},
)
BULK_INVALID_RESPONSE = error_response(
    gettext_lazy("Malformed JSON, a body that is not an array, or more items than allowed."), 400, "invalid",
    "A bulk request takes at most 1000 items; this one has 1200.",
)
IDEMPOTENCY_CONFLICT_RESPONSE = error_response(
    gettext_lazy("The Idempotency-Key was used before with another body."), 422, "idempotency_conflict",
    "This Idempotency-Key was already used with a different request body.",
)


@extend_schema_serializer(many=False)  # the batch example is the whole array already: do not wrap it again
class BatchSerializer(serializers.ListSerializer):
    """The body of a bulk request in the schema: a JSON array of items."""


def bulk_schema(item_serializer, batch_example, answer_example, description):
    """The schema of a POST .../bulk/ action: an array of items in, an answer per item out."""
    return extend_schema(
        description=description,
        request=BatchSerializer(child=item_serializer()),
        responses={200: BulkResponseSerializer, 400: BULK_INVALID_RESPONSE, 422: IDEMPOTENCY_CONFLICT_RESPONSE},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("A batch", value=batch_example, request_only=True),
            OpenApiExample("Per-item answer", value=answer_example, response_only=True),
        ],
    )
