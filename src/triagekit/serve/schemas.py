"""Request and response bodies of the routing service (pydantic): the OpenAPI schema is generated from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Ticket",
    "PredictBatchRequest",
    "HeadResult",
    "PredictResponse",
    "PredictBatchResponse",
    "ReviewItem",
    "ReviewResponse",
    "FeedbackRequest",
    "FeedbackResponse",
    "HeadDrift",
    "DriftResponse",
    "Health",
    "Ready",
    "ErrorResponse",
    "Overview",
    "clean_text",
]


def clean_text(value: str) -> str:
    """Drop NUL characters (PostgreSQL text cannot hold them) and reject lone surrogates (not encodable as UTF-8,
    so neither the tokenizer, the database nor the JSON response could take them)."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"invalid unicode: unpaired surrogate at position {exc.start}") from None
    return value


Text = Annotated[str, AfterValidator(clean_text)]
ClientId = Union[
    Annotated[str, Field(max_length=200), AfterValidator(clean_text)],
    Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)],
]


class Ticket(BaseModel):
    """One ticket: its text fields (``subject``/``body``, or the router's own ``text_fields`` by name), or ``text``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"id": "T-1001", "subject": "Invoice charged twice", "body": "My card was billed twice."}]
        },
    )

    id: Optional[ClientId] = Field(None, description="Your ticket id, echoed back and stored with the prediction.")
    subject: Optional[Text] = None
    body: Optional[Text] = None
    text: Optional[Text] = Field(None, description="The whole ticket as one string (used when no text field is set).")
    top_k: Optional[int] = Field(None, ge=1, le=1000, description="Alternatives per head (default 3).")

    @model_validator(mode="after")
    def _extra_fields_are_text(self) -> "Ticket":
        for key, value in (self.model_extra or {}).items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"field {key!r}: extra fields are text fields and must be strings")
            if isinstance(value, str):
                self.model_extra[key] = clean_text(value)
        return self

    def fields(self) -> dict[str, str]:
        """The text-bearing fields that were given (for the model input and the log)."""
        out = {k: v for k, v in (("subject", self.subject), ("body", self.body), ("text", self.text)) if v}
        out.update({k: v for k, v in (self.model_extra or {}).items() if isinstance(v, str) and v})
        return out


class PredictBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Ticket] = Field(..., min_length=1, description="Tickets to route (at most the server's limit).")
    top_k: Optional[int] = Field(None, ge=1, le=1000, description="Default ``top_k`` for items that give none.")


class LabelScore(BaseModel):
    label: str
    p: float


class HeadResult(BaseModel):
    """A single-label head gives ``label``/``confidence``/``top_k``; a multi-label head ``labels``/``scores``."""

    label: Optional[str] = None
    confidence: Optional[float] = None
    top_k: Optional[list[LabelScore]] = None
    labels: Optional[list[str]] = None
    scores: Optional[dict[str, float]] = None
    requires_review: bool
    review_reasons: Optional[list[str]] = Field(
        None, description="Why the head needs a human: low_confidence and/or out_of_scope (empty: it does not)."
    )
    out_of_scope: Optional[bool] = Field(
        None, description="The head's detector says the ticket fits none of its classes (heads with a detector)."
    )
    oos_score: Optional[float] = Field(None, description="The detector's score; above its threshold: out of scope.")


class PredictResponse(BaseModel):
    id: Optional[ClientId] = Field(None, description="Your id, or the prediction id when you gave none.")
    prediction_id: str = Field(..., description="Quote this in POST /feedback.")
    heads: dict[str, HeadResult]
    requires_review: bool = Field(..., description="True when any head is below its review threshold.")
    model_version: str
    inference_ms: float = Field(..., description="Time of the model call that served this ticket.")


class PredictBatchResponse(BaseModel):
    items: list[PredictResponse]
    model_version: str


class ReviewItem(BaseModel):
    prediction_id: str
    id: Optional[str] = None
    created_at: str
    inputs: dict[str, Any]
    heads: dict[str, Any]
    model_version: str


class ReviewResponse(BaseModel):
    items: list[ReviewItem]
    count: int


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(clean_text)]
    head: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_text)]
    correct_label: Union[
        Annotated[str, Field(min_length=1, max_length=500), AfterValidator(clean_text)],
        list[Annotated[str, Field(min_length=1, max_length=500), AfterValidator(clean_text)]],
    ] = Field(..., description="The right label; a list of tags for a multi-label head.")


class FeedbackResponse(BaseModel):
    prediction_id: str
    head: str
    correct_label: Union[str, list[str]]
    recorded: bool = True


class HeadDrift(BaseModel):
    psi_label: Optional[float] = Field(None, description="PSI of the predicted-label distribution.")
    psi_confidence: Optional[float] = Field(None, description="PSI of the 10-bin confidence histogram.")
    psi_oos: Optional[float] = Field(None, description="PSI of the out-of-scope flag (heads with a detector).")
    oos_rate: Optional[float] = Field(None, description="Share of the window flagged out of scope.")
    oos_rate_reference: Optional[float] = Field(None, description="Share of the reference flagged out of scope.")
    status: Literal["ok", "alert", "insufficient_data"]


class DriftResponse(BaseModel):
    status: Literal["ok", "alert", "insufficient_data"]
    n: int = Field(..., description="Predictions in the current window.")
    window: int
    threshold: float
    reference: Optional[str] = Field(None, description="Where the reference distribution came from.")
    reason: Optional[str] = None
    heads: dict[str, HeadDrift]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: Optional[str] = None
    reason: Optional[str] = None


class Overview(BaseModel):
    """Counts over the whole shared prediction log: the same whichever replica answers."""

    predictions: int
    requires_review: int = Field(..., description="Predictions with a head below its review threshold.")
    awaiting_review: int = Field(..., description="Of those, the ones with no feedback yet (GET /review).")
    feedback: int = Field(..., description="Feedback rows recorded.")
    model_version: Optional[str] = Field(None, description="The model this replica serves.")


class ErrorResponse(BaseModel):
    detail: Any
