from django.utils import timezone


class TenantTimezoneMiddleware:
    """Show times in the tenant's time zone: dates and times in templates and forms use it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return self.get_response(request)
        timezone.activate(tenant.zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
