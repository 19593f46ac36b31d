"""`imagegen variation IMAGE...`: PSOpenAI's Request-ImageVariation, New-ImageVariation."""

from __future__ import annotations

from typing import Any

import click

from ._options import (
    IMAGE_PATH,
    argument_flag,
    argument_values,
    connection_options,
    output_options,
    request_options,
)


@click.command()
@click.argument("image", nargs=-1, type=IMAGE_PATH)
@argument_flag(
    "image",
    "-i",
    "--image",
    "--file",
    type=IMAGE_PATH,
    multiple=True,
    metavar="PATH",
    help="An image to vary, given as a flag (as -Image / -File); repeatable.",
)
@request_options("variations")
@output_options
@connection_options
@click.pass_context
def variation(ctx: click.Context, /, **_: Any) -> None:
    """Make variations of IMAGE: a square PNG under 4 MB for dall-e-2 (the default model;
    retired by OpenAI, served by compatible servers and `imagegen serve`). Several IMAGEs
    make one request each, their files numbered on; - reads one image from stdin.

    Without -o or -f the images are saved in the current folder as
    imagegen-YYYYMMDD-HHMMSS.png and their paths printed.

    \b
    Examples:
      imagegen variation cupcake.png -s 256 -o cupcake2.png
      imagegen variation cupcake.png -n 3 -f url --base-url http://127.0.0.1:8000/v1
      imagegen variation a.png b.png -o variations/v.png
      curl -s https://example.com/cat.png | imagegen variation - -o cat-variation.png
    """
    from ._run import Inputs, read_stdin_image, run

    sources: list[str] = argument_values(ctx, "image")
    if sources.count("-") > 1:
        raise click.UsageError("Only one IMAGE can be read from stdin ('-').")
    requests = [
        Inputs(
            images=[read_stdin_image() if source == "-" else source],
        )
        for source in sources
    ]
    run(ctx, "variations", requests)
