"""`shuken chat`: a terminal conversation with a local model, in-process."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Optional

import typer

from shuken.cli.common import app, err, services
from shuken.config import Settings
from shuken.errors import ShukenError


@app.command()
def chat(
    model: Annotated[Optional[str], typer.Option(help="Chat model (default: the configured default).")] = None,
    system: Annotated[Optional[str], typer.Option(help="A system prompt.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest reply, in tokens.")] = 512,
):
    """A quick terminal conversation with a local model (in-process; no server needed). Ctrl-D to leave."""
    from shuken.engines.base import GenerationRequest, SamplingParams, TextDelta

    settings = Settings(parallel_sequences=1)
    with services(settings) as svc:
        svc.registry.seed_bundled(show_progress=True)
        name = model or settings.default_model
        messages = [{"role": "system", "content": system}] if system else []

        async def converse():
            engine = await svc.host.engine_for(name, "chat")
            err.print(f"Chatting with [bold]{name}[/bold]. Ctrl-D to leave.")
            try:
                while True:
                    try:
                        line = await asyncio.to_thread(err.input, "you> ")  # prompts on stderr: stdout is the reply
                    except EOFError:
                        break
                    if not line.strip():
                        continue
                    messages.append({"role": "user", "content": line})
                    generation = await engine.submit(GenerationRequest(
                        params=SamplingParams(max_tokens=max_tokens, temperature=0.7), messages=messages))
                    reply = []
                    async for event in generation:
                        if isinstance(event, TextDelta):
                            reply.append(event.text)
                            sys.stdout.write(event.text)
                            sys.stdout.flush()
                    sys.stdout.write("\n")
                    messages.append({"role": "assistant", "content": "".join(reply)})
            finally:
                await svc.host.close()

        try:
            asyncio.run(converse())
        except ShukenError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from None
