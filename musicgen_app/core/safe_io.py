"""The file boundary: every file the app reads or writes goes through these helpers.

Reading (:func:`read_capped`): the path must name a regular file (a symlink to one is fine); a
device node (``/dev/zero``, ``/dev/urandom``), a named pipe (FIFO), a socket or a folder is refused
with one line before anything is opened, and the file is opened with ``O_NONBLOCK`` and checked
again, so that nothing can hang on a pipe swapped in meanwhile. The bytes are read in chunks with a
hard cap that does not trust ``st_size`` (which is 0 for devices, pipes and many ``/proc`` files):
reading stops at ``max_bytes + 1`` bytes.

Writing (:func:`write_file_atomic`): the target must not exist, or be a regular file (a folder or a
device node such as ``/dev/null`` is refused, never replaced: :func:`check_writable_target`). The
data goes to a temporary file ``.<name>.<pid>.<random>.tmp`` beside the target, is flushed and
fsync'ed, and is renamed over the target. Temporary files left by a save that was killed (their
process is gone, or is a zombie its parent has not collected yet) are removed by the next save of
the same file (:func:`remove_stale_temps`) and at start (the autosave folder).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import time
import uuid
from pathlib import Path

from musicgen_app.errors import MusicgenError

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
# A leftover without our process id in its name (written by an older version) is removed when older.
LEGACY_TEMP_AGE_S = 600.0
_TEMP_SUFFIX = ".tmp"
# ".<name>.<pid>.<32 hex>.tmp" (this version) or ".<name>.<8 chars>.tmp" (mkstemp, older versions)
# or ".<name>.<32 hex>.tmp" (an older version's backup link)
_TEMP_TAIL = re.compile(r"^(?:(?P<pid>\d{1,10})\.[0-9a-f]{32}|[a-z0-9_]{8}|[0-9a-f]{32})$")


def describe_kind(mode: int) -> str:
    """What a file of ``st_mode`` is, in words (``"a named pipe (FIFO)"``, ``"a folder"``...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def _os_error(path: Path, exc: OSError | ValueError, error: type[MusicgenError], verb: str) -> MusicgenError:
    if isinstance(exc, ValueError):  # e.g. a NUL byte in the name
        return error(f"{verb} {path}: the file name is not valid ({exc})")
    if isinstance(exc, FileNotFoundError):
        return error(f"{path} does not exist")
    if isinstance(exc, PermissionError):
        if verb == "cannot read":
            return error(f"{path} cannot be read (permission denied)")
        return error(f"{verb} {path} (permission denied)")
    if isinstance(exc, NotADirectoryError):
        return error(f"{path} does not exist (a part of the path is a file, not a folder)")
    return error(f"{verb} {path}: {exc.strerror or exc}")


def _not_regular(path: Path, mode: int, what: str, error: type[MusicgenError]) -> MusicgenError:
    kind = describe_kind(mode)
    if stat.S_ISDIR(mode):
        return error(f"{path} is a folder, not a {what}")
    linked = False
    with contextlib.suppress(OSError, ValueError):
        linked = path.is_symlink()
    verb = "links to" if linked else "is"
    return error(f"{path} {verb} {kind}, not a {what}: this app reads only ordinary files")


def check_regular_file(path: str | Path, error: type[MusicgenError], what: str) -> os.stat_result:
    """The ``os.stat`` of ``path`` after checking it is a regular file (a symlink to one counts).

    Anything else (missing, a folder, a device, a FIFO, a socket, a broken link) raises ``error``
    with one line naming the file; ``what`` is e.g. ``"MIDI file"``. Nothing is opened.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except (OSError, ValueError) as exc:
        raise _os_error(p, exc, error, "cannot read") from exc
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(p, st.st_mode, what, error)
    return st


def over_cap_error(
    size: int, max_bytes: int, error: type[MusicgenError], what: str, *, more: bool = False
) -> MusicgenError:
    """The error for a file of ``size`` bytes over the cap (``more``: at least that many)."""
    amount = f"more than {max_bytes / 2**20:.1f}" if more else f"{size / 2**20:.1f}"
    return error(f"the file is {amount} MiB; this app reads {what}s of up to {max_bytes // 2**20} MiB")


def _open_regular(p: Path, error: type[MusicgenError], what: str) -> tuple[int, os.stat_result]:
    """An fd of the regular file ``p`` opened without blocking, and its fstat (checked again)."""
    check_regular_file(p, error, what)
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY"):
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(p, flags)
    except (OSError, ValueError) as exc:
        raise _os_error(p, exc, error, "cannot read") from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _os_error(p, exc, error, "cannot read") from exc
    if not stat.S_ISREG(st.st_mode):  # swapped for something else since the check
        os.close(fd)
        raise _not_regular(p, st.st_mode, what, error)
    return fd, st


def read_capped(path: str | Path, max_bytes: int, error: type[MusicgenError], what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Every failure (missing, a folder, a device, a FIFO, a socket, unreadable, over ``max_bytes``)
    raises ``error`` with one line that names the file; ``what`` is e.g. ``"MIDI file"``. The cap
    counts the bytes actually read (reading stops at ``max_bytes + 1``), not ``st_size``.
    """
    p = Path(path)
    fd, st = _open_regular(p, error, what)
    try:
        if st.st_size > max_bytes:
            raise over_cap_error(st.st_size, max_bytes, error, what)
        parts: list[bytes] = []
        total = 0
        # the first read takes the whole file as it stands (one allocation), and a byte more
        want = min(st.st_size, max_bytes) + 1
        while total <= max_bytes:
            chunk = os.read(fd, min(want, max_bytes + 1 - total))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            want = READ_CHUNK
        if total > max_bytes:
            raise over_cap_error(total, max_bytes, error, what, more=True)
    except OSError as exc:
        raise _os_error(p, exc, error, "cannot read") from exc
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_head(path: str | Path, n: int, error: type[MusicgenError], what: str) -> bytes:
    """The first ``n`` bytes (or fewer) of the regular file ``path``; refuses like :func:`read_capped`."""
    p = Path(path)
    fd, _ = _open_regular(p, error, what)
    try:
        return os.read(fd, n)
    except OSError as exc:
        raise _os_error(p, exc, error, "cannot read") from exc
    finally:
        os.close(fd)


# the name the MIDI and project readers have always used
read_file_capped = read_capped


def writable_target_problem(path: str | Path, what: str = "file") -> str | None:
    """Why ``path`` cannot be (re)written as a regular file, or None when it can.

    Refuses an existing folder, device, FIFO or socket (also through a symlink), an existing file
    we may not write, and a path whose folder does not exist or is not writable.
    """
    p = Path(path)
    if p.name in ("", ".", "..") or str(path).endswith(os.sep):
        return f"{path} names a folder, not a {what}"
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"{path}: cannot write the {what}: {exc.strerror or exc}"
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is {describe_kind(st.st_mode)}; it cannot be replaced by a {what}"
        if not os.access(p, os.W_OK):
            return f"{path}: the {what} is read-only (permission denied)"
    parent = p.parent
    try:
        pst = os.stat(parent)
    except FileNotFoundError:
        return f"cannot write {path}: the folder {parent} does not exist"
    except OSError as exc:
        return f"{path}: cannot use the folder {parent}: {exc.strerror or exc}"
    if not stat.S_ISDIR(pst.st_mode):
        return f"{path}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path}: cannot write into the folder {parent} (permission denied)"
    return None


def check_writable_target(path: str | Path, error: type[MusicgenError], what: str = "file") -> None:
    """Refuse a target that cannot be (re)written as a regular file (a folder, ``/dev/null``, a
    FIFO, a read-only file, a missing or unwritable folder): raises ``error`` with the one line of
    :func:`writable_target_problem`. A missing target in a writable folder is fine."""
    problem = writable_target_problem(path, what)
    if problem:
        raise error(problem)


# -- temporary files ------------------------------------------------------------------------------
def _temp_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{uuid.uuid4().hex}{_TEMP_SUFFIX}"


def _zombie(pid: int) -> bool:
    """Whether process ``pid`` has exited and only waits for its parent to collect it (Linux
    ``/proc``; False where that cannot be read). A zombie still answers ``os.kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            status = fh.read(4096)
    except OSError:
        return False
    fields: dict[bytes, bytes] = {}
    for line in status.splitlines():
        key, _, value = line.partition(b":")
        fields[key] = value.strip()
    # a leader thread that exited while other threads of its process run shows "Z" as well
    return fields.get(b"State", b"")[:1] in (b"Z", b"X") and fields.get(b"Threads") in (b"0", b"1")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be writing (it exists and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or a number we cannot ask about): leave its file
    return not _zombie(pid)


def _is_stale(entry: Path, tail: str, now: float) -> bool:
    m = _TEMP_TAIL.match(tail)
    if m is None:
        return False
    if m.group("pid") is not None:
        pid = int(m.group("pid"))
        return pid != os.getpid() and not _alive(pid)
    try:  # an older version's name, without a process id: stale once old
        return now - entry.lstat().st_mtime > LEGACY_TEMP_AGE_S
    except OSError:
        return False


def remove_stale_temps(folder: str | Path, name: str | None = None) -> int:
    """Remove the temporary files that killed saves left in ``folder`` (of ``name`` only, when given).

    A temporary file belongs to a dead save when the process named in it is gone or a zombie
    (files from older versions, without a process id, when older than :data:`LEGACY_TEMP_AGE_S`).
    Returns how many were removed; never raises.
    """
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        fname = entry.name
        if not (fname.startswith(".") and fname.endswith(_TEMP_SUFFIX)):
            continue
        inner = fname[1 : -len(_TEMP_SUFFIX)]
        if name is not None:
            if not inner.startswith(name + "."):
                continue
            tails = [inner[len(name) + 1 :]]
        else:  # the name may hold dots: try every split
            tails = [inner[i + 1 :] for i, ch in enumerate(inner) if ch == "."]
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        if any(_is_stale(Path(entry.path), tail, now) for tail in tails):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed += 1
    if removed:
        logger.info("removed %d temporary file(s) left by interrupted saves in %s", removed, folder)
    return removed


# -- safe file writing ----------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/file system can fsync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _keep_backup(path: Path, backup: Path) -> None:
    """Atomically make ``backup`` hold what ``path`` holds now."""
    tmp = backup.with_name(_temp_name(backup.name))
    try:
        try:
            os.link(path, tmp)
        except OSError:  # no hard links here (e.g. FAT, some network drives): copy instead
            shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, backup)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # When ``backup`` already was ``path`` (a save killed between its two renames leaves them
    # linked to one file), rename() leaves both names in place and succeeds: remove the temporary
    # name, or it would stay beside the file until this process ends.
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def write_file_atomic(
    path: Path, data: bytes, error: type[MusicgenError], *, backup: Path | None = None
) -> None:
    """Write ``data`` to ``path`` so that a crash at any moment leaves the old file or the new one.

    The target must be missing or a regular file (:func:`check_writable_target`; so is ``backup``).
    Temporary files of earlier saves of ``path`` that were killed are removed first. The data goes
    to a temporary file in the same folder, is flushed and fsync'ed; the old file is kept as
    ``backup`` when one is given (a hard link, or a copy where links are impossible); the
    temporary file is renamed over ``path`` and the folder is fsync'ed. An existing file's
    permissions are kept (new files get 0644). Failures raise ``error`` and change nothing.
    """
    path = Path(path)
    check_writable_target(path, error)
    if backup is not None:
        check_writable_target(backup, error)
    folder = path.parent
    remove_stale_temps(folder, path.name)
    if backup is not None:
        remove_stale_temps(folder, backup.name)
    tmp: Path | None = None
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        tmp = folder / _temp_name(path.name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        if backup is not None and path.exists():
            _keep_backup(path, backup)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise error(f"cannot write {path}: {exc.strerror or exc}") from exc
    _fsync_dir(folder)
