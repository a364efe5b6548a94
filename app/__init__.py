


def version() -> str:
    """This build's version (the installed package's metadata), as ``posterm --version``,
    the cashier app's status line, the settlement report and the backups show it."""
    from importlib import metadata
    try:
        return metadata.version("posterm")
    except metadata.PackageNotFoundError:
        return "unknown"
