"""OpenAI request shapes (pydantic). Unknown extra fields are ignored; known-but-unsupported ones are refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shuken.errors import InvalidRequest
from shuken.localisable import tr


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Request):
    include_usage: bool = False


class JsonSchemaFormat(_Request):
    name: str = "response"
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def as_dict(self) -> dict:
        if self.type == "json_schema":
            if self.json_schema is None:
                raise InvalidRequest(tr("response_format type json_schema needs a json_schema object."),
                                     param="response_format.json_schema")
            return {"type": "json_schema", "json_schema": {"name": self.json_schema.name,
                                                           "schema": self.json_schema.schema_}}
        return {"type": self.type}


class ContentPart(BaseModel):
    """One OpenAI content part; text parts must carry text, other kinds (images, audio) are ignored by text models."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_parts_have_text(self):
        if self.type == "text" and self.text is None:
            raise ValueError("a text content part needs a 'text' string")
        return self


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def for_template(self) -> dict:
        # Chat templates know system/user/assistant; "developer" is OpenAI's newer name for system.
        role = "system" if self.role == "developer" else self.role
        content: str | list[dict[str, Any]]
        if isinstance(self.content, list):
            content = [part.model_dump(exclude_none=True) for part in self.content]
        else:
            content = self.content if self.content is not None else ""
        message: dict[str, Any] = {"role": role, "content": content}
        if self.name:
            message["name"] = self.name
        return message


class SamplingFields(_Request):
    model: str = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | int | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value):
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    def refuse_unsupported(self) -> None:
        if self.n not in (None, 1):
            raise InvalidRequest(tr("Only n=1 is supported; send several requests for several choices."), param="n")
        if self.logit_bias:
            raise InvalidRequest(tr("logit_bias is not supported by this server."), param="logit_bias")
        if self.logprobs:
            raise InvalidRequest(tr("logprobs are not supported by this server."), param="logprobs")
        if self.stream_options is not None and not self.stream:
            raise InvalidRequest(tr("stream_options is only allowed when stream is true."), param="stream_options")

    @property
    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


# The most passages one retrieval returns, for search and grounded answers alike (the one place it is written).
MAX_K = 50


class KnowledgeOptions(_Request):
    """Shuken extension (`extra_body={"knowledge": ...}`): answer from these collections, with citations."""

    collections: list[str] = Field(min_length=1, max_length=20)
    k: int = Field(default=5, ge=1, le=MAX_K)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    knowledge: KnowledgeOptions | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    top_logprobs: int | None = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.tools:
            raise InvalidRequest(tr("Tool calling is not supported by this server yet."), param="tools")
        if self.top_logprobs:
            raise InvalidRequest(tr("top_logprobs is not supported by this server."), param="top_logprobs")
        if self.max_tokens is not None and self.max_completion_tokens is not None \
                and self.max_tokens != self.max_completion_tokens:
            raise InvalidRequest(tr("max_tokens and max_completion_tokens disagree; send one of them."),
                                 param="max_completion_tokens")


class CompletionRequest(SamplingFields):
    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.echo:
            raise InvalidRequest(tr("echo is not supported by this server."), param="echo")
        if self.suffix:
            raise InvalidRequest(tr("suffix (fill-in-the-middle) is not supported by this server."), param="suffix")
        if self.best_of not in (None, 1):
            raise InvalidRequest(tr("Only best_of=1 is supported."), param="best_of")

    @property
    def single_prompt(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise InvalidRequest(tr("Send one prompt per request (a list of exactly one string is accepted)."),
                                 param="prompt")
        return self.prompt[0]


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1)
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        texts = [self.input] if isinstance(self.input, str) else list(self.input)
        if not texts:
            raise InvalidRequest(tr("input must not be empty."), param="input")
        if len(texts) > 2048:
            raise InvalidRequest(tr("At most 2048 inputs per request."), param="input")
        if any(not text for text in texts):
            raise InvalidRequest(tr("input must not contain empty strings."), param="input")
        return texts
