"""`imagegen generate PROMPT`: PSOpenAI's Request-ImageGeneration, PSAI's Get-OAIImageGeneration."""

from __future__ import annotations

from typing import Any

import click

from ._options import (
    argument_flag,
    argument_values,
    connection_options,
    output_options,
    request_options,
)


@click.command()
@click.argument("prompt", required=False)
@argument_flag(
    "prompt", "-p", "--prompt", metavar="TEXT", help="The prompt, given as a flag (as -Prompt)."
)
@request_options("generations")
@output_options
@connection_options
@click.pass_context
def generate(ctx: click.Context, /, **_: Any) -> None:
    """Create images from a text PROMPT (max 32,000 characters; dall-e-2: 1,000, dall-e-3:
    4,000), given as the argument or with -p/--prompt. PROMPT given as - reads prompts from
    stdin, one per line, one request each.

    Without -o or -f the images are saved in the current folder as
    imagegen-YYYYMMDD-HHMMSS.png (never replacing a file) and their paths printed.
    Only the flags you give are sent, besides the model. Every value is checked against the
    model's rules before anything is sent.

    \b
    Examples:
      imagegen generate "A cute baby lion" -o lion.png
      imagegen generate "Delicious ramen" -n 3 -s 1536x1024 -q high -o ramen.jpg
      imagegen generate "A fox" --stream --partial-images 2 -o fox.png
      imagegen generate "A logo" --background transparent -f base64 > logo.b64
      cat prompts.txt | imagegen generate - -o out/picture.png
      imagegen generate "A lion" --engine placeholder -o lion.png   # no server, no key
      imagegen generate "A lion" -m dall-e-3 --style natural -f url --base-url http://127.0.0.1:8000/v1
    """
    from ._run import Inputs, read_stdin_lines, run

    given = argument_values(ctx, "prompt")
    if len(given) > 1:
        raise click.UsageError("The prompt was given twice, as PROMPT and with --prompt.", ctx)
    prompt: str = given[0]
    if prompt == "-":
        lines = read_stdin_lines("prompts", quiet=bool(ctx.params.get("quiet")))
        requests = [
            Inputs(prompt=text, where=f"line {number} of standard input") for number, text in lines
        ]
    else:
        requests = [Inputs(prompt=prompt)]
    run(ctx, "generations", requests)
