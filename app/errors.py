"""The app layer's exceptions and the exit code each one means for the CLI (and for the
cashier UI, which shows every error as one line).
"""

EXIT_OK = 0
EXIT_DECLINED = 1      # declined, or a business refusal
EXIT_USAGE = 2         # usage or configuration error
EXIT_UNREACHABLE = 3   # a device or the host cannot be reached
EXIT_INTERNAL = 4      # a bug: details in the log file, never on the cashier's screen


class AppError(Exception):
    """An error the cashier sees as one line; ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_USAGE


class ConfigError(AppError):
    exit_code = EXIT_USAGE


class InputError(AppError):
    exit_code = EXIT_USAGE


class Refused(AppError):
    exit_code = EXIT_DECLINED


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for an error of any layer, or None for a bug. The CLI exits with it;
    the cashier UI picks the hint it shows beside the error's line by it."""
    from hal.errors import DeviceError, DeviceURLError
    from storage.errors import StorageError
    from sync.errors import HostTimeout, HostUnreachable, MacError, SyncError
    if isinstance(exc, AppError):
        return exc.exit_code
    if isinstance(exc, DeviceURLError):
        return EXIT_USAGE
    if isinstance(exc, (DeviceError, HostUnreachable, HostTimeout, MacError)):
        return EXIT_UNREACHABLE
    if isinstance(exc, SyncError):
        return EXIT_DECLINED
    if isinstance(exc, StorageError):
        return EXIT_USAGE
    return None
