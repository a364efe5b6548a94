"""The app layer's exceptions and the exit code each one means for the CLI."""

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
