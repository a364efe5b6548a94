"""Device drivers, one module per device family, each implementing one hal interface.

Reached only through :func:`hal.registry.open_device`; each module exposes
``connect(role, url, context)``.
"""
