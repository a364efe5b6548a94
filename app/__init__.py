import functools


@functools.cache
def version() -> str:
    """This build's version (the installed package's metadata), as ``posterm --version``,
    the cashier app's status line, the settlement report and the backups show it; read
    once a process (the status line is drawn again every 15 seconds)."""
    from importlib import metadata
    try:
        return metadata.version("posterm")
    except metadata.PackageNotFoundError:
        return "unknown"
