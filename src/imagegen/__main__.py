"""`python -m imagegen` and the `imagegen` console script.

The garbage collector is paused while the command starts: loading the modules a command needs
makes some hundred thousand objects that live until exit and none that are garbage, and the
collector walks them again and again as they are made (about 40 collections, 8-12 ms of a
one-image `generate`). The command resumes it (`imagegen.cli.start_up_done`) once it has
loaded what it needs and before its work begins: a server or a batch runs for hours.
"""

import gc


def main() -> None:
    gc.disable()
    from imagegen.cli import main as run

    run()


if __name__ == "__main__":
    main()
