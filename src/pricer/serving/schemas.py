"""The service's request bodies: what a product, an estimate, a batch and a chat look like, checked by pydantic."""

from pydantic import BaseModel, Field, model_validator

from pricer.data.items import MAX_TEXT_CHARS
from pricer.data.text import product_text

MAX_BATCH = 256


class ProductIn(BaseModel):
    """A product as free text, or as the fields of a listing (joined the way curation joins them)."""

    text: str | None = Field(None, description="The product text; or give the fields below.")
    title: str | None = None
    description: str | list[str] | None = None
    features: str | list[str] | None = None
    details: str | dict | None = None

    @model_validator(mode="after")
    def _has_text(self):
        text = self.joined()
        if not text.strip():
            raise ValueError("give a non-empty text, or a title")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text of {len(text):,} characters is over the limit of {MAX_TEXT_CHARS:,}")
        return self

    def joined(self) -> str:
        if self.text is not None:
            return self.text
        return product_text(self.title, self.description, self.features, self.details)


class EstimateIn(BaseModel):
    """The page's form: a product, and optionally the price it is offered at."""

    title: str = ""
    description: str = ""
    offer: float | None = Field(None, gt=0, description="The offered price, for a verdict.")
    k: int = Field(5, ge=0, le=20, description="Nearest known products to show (with --index).")

    @model_validator(mode="after")
    def _has_text(self):
        if not (self.title.strip() or self.description.strip()):
            raise ValueError("give a title or a description")
        return self


class BatchIn(BaseModel):
    items: list[ProductIn] = Field(..., min_length=1, max_length=MAX_BATCH)


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict] | None = None  # a string, or OpenAI's list of content parts

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatIn(BaseModel):
    model: str | None = None
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = None
    stream: bool = False
    stream_options: dict | None = None
