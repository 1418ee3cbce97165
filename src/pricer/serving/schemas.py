"""The service's request bodies: what a product, an estimate, a batch and a chat look like, checked by pydantic."""

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pricer.data.items import MAX_PRICE, MAX_TEXT_CHARS
from pricer.data.text import product_text

MAX_BATCH = 256


# A text that is not blank: some character other than ASCII white space. The same pattern in the OpenAPI document and
# in the checks, so every request the document allows is one the service answers.
NOT_BLANK = r"[^ \t\n\r\f\v]"
MAX_TITLE_CHARS = 2_000  # the body joined after the title is cut at CEILING_CHARS, so a product text stays short

Listed = str | list[str] | None


def _whole_number(value):
    """An int, or a float without a fraction (JSON Schema's integers include 19.0); never a string or a bool."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def _one_of_required(*names: str) -> dict:
    """JSON Schema: at least one of the fields given as a string that is not blank."""
    return {"anyOf": [{"required": [n], "properties": {n: {"type": "string", "pattern": NOT_BLANK}}} for n in names]}


class ProductIn(BaseModel):
    """A product as free text, or as the fields of a listing (joined the way curation joins them): a text or a title."""

    model_config = ConfigDict(strict=True, json_schema_extra=_one_of_required("text", "title"))

    text: str | None = Field(None, max_length=MAX_TEXT_CHARS, json_schema_extra={"pattern": NOT_BLANK},
                             description="The product text; or give the fields below.")
    title: str | None = Field(None, max_length=MAX_TITLE_CHARS, json_schema_extra={"pattern": NOT_BLANK})
    description: Listed = None
    features: Listed = None
    details: str | dict[str, str | int | float | bool | None] | None = None

    @model_validator(mode="after")
    def _has_text(self):
        if not any(value is not None and re.search(NOT_BLANK, value) for value in (self.text, self.title)):
            raise ValueError("give a non-empty text, or a title")
        for name in ("text", "title"):
            if getattr(self, name) is not None and not re.search(NOT_BLANK, getattr(self, name)):
                raise ValueError(f"the {name} is blank: give it with some text, or leave it out")
        return self

    def joined(self) -> str:
        if self.text is not None:
            return self.text
        return product_text(self.title, self.description, self.features, self.details) or self.title


class EstimateIn(BaseModel):
    """The page's form: a product (a title or a description), and optionally the price it is offered at."""

    model_config = ConfigDict(strict=True, json_schema_extra=_one_of_required("title", "description"))

    title: str = Field("", max_length=MAX_TITLE_CHARS)
    description: str = Field("", max_length=MAX_TEXT_CHARS)
    offer: float | None = Field(None, gt=0, le=MAX_PRICE, description="The offered price, for a verdict.")
    k: WholeNumber = Field(5, ge=0, le=20, description="Nearest known products to show (with --index).")

    @model_validator(mode="after")
    def _has_text(self):
        if not (re.search(NOT_BLANK, self.title) or re.search(NOT_BLANK, self.description)):
            raise ValueError("give a title or a description")
        return self

    def joined(self) -> str:
        return product_text(self.title, self.description) or f"{self.title} {self.description}".strip()


class BatchIn(BaseModel):
    model_config = ConfigDict(strict=True)

    items: list[ProductIn] = Field(..., min_length=1, max_length=MAX_BATCH)


class ContentPart(BaseModel):
    """One part of an OpenAI message's content; only text parts are read."""

    model_config = ConfigDict(strict=True, extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True)

    role: str
    content: str | list[ContentPart] | None = None  # a string, or OpenAI's list of content parts

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatIn(BaseModel):
    model_config = ConfigDict(strict=True)

    model: str | None = None
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: WholeNumber | None = None
    stream: bool = False
    stream_options: dict | None = None


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error answer: `detail` is one line, or for a request the schema refuses, the list of what is wrong."""

    detail: str | list[ValidationIssue]


# /v1/price/file reads its body itself: the OpenAPI document says what it takes.
FILE_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/jsonl": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
}}}
