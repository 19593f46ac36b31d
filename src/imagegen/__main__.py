"""`python -m imagegen` and the `imagegen` console script.

Two costs of a short command that Python pays for nothing, skipped here (bench/startup.py):

- The garbage collector is paused while the command starts: loading the modules a command
  needs makes some hundred thousand objects that live until exit and none that are garbage,
  and the collector walks them again and again as they are made (about 40 collections, 8-12 ms
  of a one-image `generate`). The command resumes it (`imagegen.cli.start_up_done`) once it
  has loaded what it needs and before its work begins: a server or a batch runs for hours.
- The interpreter's teardown: after the exit handlers (logging flushed, worker processes
  stopped, ...), Python frees every object and module one by one, about 7 ms, which the
  operating system does at once when the process ends. A command that makes its images and
  ends (generate, edit, variation: `imagegen.cli.ends_at_once`) ends right after the last exit
  handler registered since `main` began, with its status; the others, and any exit that is not
  the command's own (an uncaught exception), end the usual way. Every file a command writes is
  closed before it returns; nothing is left for the teardown to flush.
"""

import atexit
import gc
import os
import sys


def main() -> None:
    gc.disable()
    status: list[int] = []
    # Registered before any module is imported, so it runs after every other exit handler.
    atexit.register(_end, status)
    from imagegen.cli import ends_at_once
    from imagegen.cli import main as run

    try:
        run()
    except SystemExit as exc:
        if ends_at_once() and (exc.code is None or isinstance(exc.code, int)):
            status.append(exc.code or 0)
        raise


def _end(status: list[int]) -> None:
    if not status:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: let the interpreter report it as it does
        return
    os._exit(status[0])


if __name__ == "__main__":
    main()
