def register(router):
    """Lifecycle endpoints are registered here."""
