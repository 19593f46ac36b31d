"""`imagegen edit --image PATH --prompt TEXT [--mask PATH]`: PSOpenAI's Request-ImageEdit."""

from __future__ import annotations

from typing import Any

import click

from ._options import IMAGE_PATH, connection_options, output_options, request_options


@click.command()
@click.option(
    "-i",
    "--image",
    "--file",
    "image",
    type=IMAGE_PATH,
    multiple=True,
    required=True,
    metavar="PATH",
    help="Image to edit (repeatable: GPT image models take up to 16 PNG, JPEG or WebP "
    "images under 50 MB; dall-e-2 one square PNG under 4 MB). - reads it from stdin.",
)
@click.option(
    "-p",
    "--prompt",
    required=True,
    metavar="TEXT",
    help="What the edited image should show. - reads prompts from stdin, one per line.",
)
@click.option(
    "--mask",
    type=click.Path(exists=True, dir_okay=False),
    metavar="PATH",
    help="Image the size of the (first) image, usually a PNG. Fully transparent pixels "
    "(alpha = 0) mark the area to edit. A mask without such pixels (no alpha, an opaque "
    "alpha, or a JPEG) is read as black and white, white = edit, and sent as a PNG alpha mask.",
)
@click.option(
    "--markup",
    type=click.Path(exists=True, dir_okay=False),
    metavar="PATH",
    help="GPT Image 2.5 and later: a PNG drawing the size of the (first) image, transparent "
    "where nothing is drawn, laid over it to show what to change. Not with --mask.",
)
@request_options("edits")
@output_options
@connection_options
@click.pass_context
def edit(ctx: click.Context, /, **_: Any) -> None:
    """Edit or extend the --image files as the --prompt says.

    The mask works as OpenAI's: where it is fully transparent (alpha = 0) the image is
    edited, elsewhere it is kept. A mask without fully transparent pixels (a black-and-white
    picture, with or without an opaque alpha channel) is read the way most editors draw it,
    white = edit, and converted for you.
    Without a mask, dall-e-2 edits the image's own transparent pixels.

    Without -o or -f the images are saved in the current folder as
    imagegen-YYYYMMDD-HHMMSS.png and their paths printed.

    \b
    Examples:
      imagegen edit --image room.png --mask window.png --prompt "A window onto the sea" -o room.png
      imagegen edit -i shirt.png -i logo.png -p "Put the logo on the shirt" -o shirt-logo.webp
      imagegen edit -i sunflower.png -p "sunflower" -m dall-e-2 -s 256 -o edit.png
      cat prompts.txt | imagegen edit -i photo.jpg -p - -o variants/photo.jpg
    """
    from ._run import Inputs, read_stdin_image, read_stdin_lines, run

    p = ctx.params
    images: list[Any] = list(p["image"])
    prompt: str = p["prompt"]
    quiet = bool(p.get("quiet"))
    if prompt == "-" and "-" in images:
        raise click.UsageError("Only one of --image and --prompt can be read from stdin ('-').")
    if images.count("-") > 1:
        raise click.UsageError("Only one --image can be read from stdin ('-').")
    images = [read_stdin_image() if image == "-" else image for image in images]
    if prompt == "-":
        prompts = [
            (text, f"line {number} of standard input")
            for number, text in read_stdin_lines("prompts", quiet=quiet)
        ]
    else:
        prompts = [(prompt, "")]
    requests = [
        Inputs(prompt=text, images=images, mask=p.get("mask"), markup=p.get("markup"), where=where)
        for text, where in prompts
    ]
    run(ctx, "edits", requests)
