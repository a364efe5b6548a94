"""Any error as one calm line for the cashier, with what to do next.

The class of an error is decided by :func:`app.errors.exit_code_for`, the same function the
CLI's exit codes come from; a bug (no class) is logged with its traceback and shown as one
line that points at the log file.
"""

from __future__ import annotations

import logging

from app.errors import EXIT_DECLINED, EXIT_UNREACHABLE, EXIT_USAGE, exit_code_for

log = logging.getLogger(__name__)

#: exit code -> what to do next (Chinese, English)
NEXT_STEP: dict[int, tuple[str, str]] = {
    EXIT_UNREACHABLE: ("检查主机连接和设备后重试",
                       "check the host link and the devices, then try again"),
    EXIT_DECLINED: ("", ""),
    EXIT_USAGE: ("", ""),
}


#: DiskFull's reason -> the line in Chinese (the English one is the error's own)
_DISK = {"full": "磁盘已满，未写入任何数据：请清理磁盘空间",
         "read-only": "磁盘只读，未写入任何数据：请检查磁盘",
         "I/O error": "磁盘写入失败，未写入任何数据：请检查磁盘"}


def _is_disk_full(exc: BaseException) -> bool:
    from storage.errors import DiskFull
    return isinstance(exc, DiskFull)


def one_line(exc: BaseException, language: str) -> str:
    """The error as one line: what happened and (where it helps) what to do next."""
    code = exit_code_for(exc)
    if code is None:
        log.error("internal error in the cashier app", exc_info=exc)
        return (f"内部错误 {type(exc).__name__}（详见日志文件 posterm.log）"
                if language == "zh" else
                f"internal error {type(exc).__name__} (details in posterm.log)")
    text = " ".join(str(exc).split()) or type(exc).__name__
    disk = _DISK.get(getattr(exc, "reason", "")) if _is_disk_full(exc) else None
    if disk is not None and language == "zh":
        return f"{disk}（posterm doctor）"
    zh, en = NEXT_STEP.get(code, ("", ""))
    hint = zh if language == "zh" else en
    if hint and hint not in text:
        text = f"{text} — {hint}"
    return text
