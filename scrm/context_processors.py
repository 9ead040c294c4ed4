def tenant(request):
    return {
        "tenant": getattr(request, "tenant", None),
        "staff": getattr(request, "staff", None),
    }
