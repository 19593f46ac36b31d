"""`--show`: open images in the system's viewer, without waiting for it or leaving it behind.

A viewer runs as long as the user looks at the picture (`xdg-open` often waits for the program
it starts), so the command must not wait for it. Yet a child process still running when Python
drops it is reported on stderr (`ResourceWarning: subprocess N is still running`) and lingers
as a zombie once it ends. So the viewer is started by a shell that puts it in the background
and exits at once: the command waits only for that shell, and the viewer, in a session of its
own, outlives the command and its Ctrl-C. Its output goes to /dev/null, as desktop tools chatter
on stderr, which carries only our errors and warnings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .._imaging import EXTENSIONS, sniff_format

__all__ = ["show_bytes", "show_file"]

# Tried in this order on Linux and the BSDs (Pillow's list): the desktop's own choice first.
_UNIX_VIEWERS = (("xdg-open",), ("display",), ("gm", "display"), ("eog", "-n"), ("xv",))
# Start "$@" in the background, detached from every stream, and return at once.
_DETACH = '"$@" </dev/null >/dev/null 2>&1 &'


def show_file(path: Path) -> bool:
    """Open `path` in the system's image viewer; `False` when there is none."""
    if sys.platform == "win32":
        try:
            os.startfile(path)  # returns at once: no child process of ours
        except OSError:
            return False
        return True
    if sys.platform == "darwin":
        command: tuple[str, ...] | None = ("open",)
    else:
        command = next((viewer for viewer in _UNIX_VIEWERS if shutil.which(viewer[0])), None)
    if command is None:
        return False
    done = subprocess.run(
        ["/bin/sh", "-c", _DETACH, "sh", *command, str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )
    return done.returncode == 0


def show_bytes(data: bytes) -> bool:
    """Open an image that was printed, not saved: from a file in the temporary folder, left
    there for the viewer, which may read it after the command has ended."""
    suffix = EXTENSIONS.get(sniff_format(data[:32]) or "png", ".png")
    handle, name = tempfile.mkstemp(prefix="imagegen-show-", suffix=suffix)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return show_file(Path(name))
