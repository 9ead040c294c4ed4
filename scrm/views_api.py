
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from . import services
from .api import TenantModelViewSet, TenantViewSetMixin
from .auth import CanManageApiKeys, CanManageSettings
from .filters import StaffFilterSet, StoreFilterSet
from .models import ApiKey, Staff, Store
from .serializers import ApiKeyCreatedSerializer, ApiKeySerializer, StaffSerializer, StoreSerializer


class StoreViewSet(TenantModelViewSet):
    """Stores (门店) of the brand."""

    serializer_class = StoreSerializer
    permission_classes = [CanManageSettings]
    queryset = Store.objects.unscoped().none()
    filterset_class = StoreFilterSet

    def get_queryset(self):
        return Store.objects.all()


class StaffViewSet(TenantModelViewSet):
    """Staff: owners, operators, store managers and guides, each with a login."""

    serializer_class = StaffSerializer
    permission_classes = [CanManageSettings]
    queryset = Staff.objects.unscoped().none()
    filterset_class = StaffFilterSet

    def get_queryset(self):
        return Staff.objects.select_related("user").prefetch_related("stores")

    def _check_owner_rights(self, role, target=None):
        """Only an owner (or the brand's API key) makes an owner or changes one."""
        staff = self.staff
        if staff is None or staff.role == Staff.Role.OWNER:
            return
        if role == Staff.Role.OWNER or (target is not None and target.role == Staff.Role.OWNER):
            raise PermissionDenied(_("Only an owner may create or change an owner."))

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        self._check_owner_rights(data.get("role"))
        serializer.instance = services.create_staff(
            self.tenant, data.pop("username"), data.pop("password"), data.pop("name", ""),
            data.pop("role", Staff.Role.GUIDE), stores=data.pop("stores", ()), **data,
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        username = data.pop("username", None)
        staff = serializer.instance
        self._check_owner_rights(data.get("role"), target=staff)
        if username and username != staff.user.username:
            staff.user.username = username
            staff.user.save(update_fields=["username"])
        services.update_staff(staff, **data)


class ApiKeyViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """API keys. The secret is in the create answer only; revoke instead of deleting."""

    serializer_class = ApiKeySerializer
    permission_classes = [CanManageApiKeys]
    queryset = ApiKey.objects.unscoped().none()

    def get_queryset(self):
        return ApiKey.objects.all()

    @extend_schema(responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = ApiKey.generate(self.tenant, serializer.validated_data["name"], created_by=self.staff)
        key.key = secret
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = services.revoke_api_key(self.get_object())
        return Response(ApiKeySerializer(key).data)
