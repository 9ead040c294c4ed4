"""API registrations of this area (see api_urls.register)."""


def register(router):
    pass
