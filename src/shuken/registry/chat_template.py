"""Render a model's Jinja chat template in an immutable sandbox.

Templates come from model files, i.e. from whoever published the model, so they are untrusted code:
the sandbox blocks attribute access to Python internals (`__class__`, `__globals__`, ...) and
mutation of the objects passed in. A blocked call or mutation raises UnsafeChatTemplate; a blocked
attribute that is only printed renders as empty text. Either way no Python internals are reached.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from shuken.errors import InvalidRequest
from shuken.localisable import tr


class UnsafeChatTemplate(InvalidRequest):
    code = "unsafe_chat_template"


class ChatTemplateFailed(InvalidRequest):
    code = "chat_template_error"


def _raise_exception(message: str) -> None:
    # HF templates call raise_exception() to reject conversations they do not support.
    raise ChatTemplateFailed(tr("The model's chat template rejected the conversation: %(message)s", message=message),
                             param="messages")


MAX_REPEAT = 100_000  # longest string or list a template may build with `*`
MAX_POWER = 1_000  # largest exponent for `**`


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Also refuses arithmetic that would eat memory or time: `'a' * 10**9` freezes a server otherwise.

    (Jinja's sandbox already caps range() at 100,000 items.)
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponent {right} is larger than {MAX_POWER}")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) \
                        and len(sequence) * count > MAX_REPEAT:
                    raise SecurityError(f"repetition would build {len(sequence) * count} items")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=32)
def _compile(source: str):
    env = _BoundedSandbox(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"], autoescape=False
    )
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def render_chat_prompt(
    template: str,
    messages: list[dict],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    try:
        return _compile(template).render(
            messages=messages,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
    except SecurityError as exc:
        raise UnsafeChatTemplate(tr(
            "The model's chat template tried an operation the sandbox forbids (%(error)s); it was not run. "
            "Replace the model file, or use /v1/completions with your own prompt.", error=str(exc),
        )) from exc
    except ChatTemplateFailed:
        raise
    except TemplateError as exc:
        raise ChatTemplateFailed(tr("The model's chat template failed to render: %(error)s", error=str(exc))) from exc
    except Exception as exc:  # templates are model-supplied code: e.g. {{ 1 + 'a' }} raises TypeError
        raise ChatTemplateFailed(tr("The model's chat template failed to render (%(kind)s: %(error)s).",
                                    kind=type(exc).__name__, error=str(exc))) from exc


def check_chat_template(template: str) -> str:
    """'ok', or why the template cannot be used; run when a model is added."""
    try:
        render_chat_prompt(template, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    except UnsafeChatTemplate as exc:
        return f"blocked: {exc.message}"
    except ChatTemplateFailed as exc:
        return f"error: {exc.message}"
    return "ok"
