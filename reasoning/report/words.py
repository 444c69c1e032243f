"""The report's words: numbers, values, parameters and filters as short text, HTML escaping,
URLs without their credentials, the names of metrics and families, and what a card's outputs
mean (`ReportTask`: titles and units)."""

from __future__ import annotations

import html
import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reasoning.booleans import as_text
from reasoning.schemas import And, Comparison, Filter, ModelCard, Not, Or

MAX_LABEL = 42

LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss", "mean_kl"})
METRIC_NAMES = {
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "accuracy": "accuracy",
    "log_loss": "log loss",
    "roc_auc": "ROC AUC",
    "f1_macro": "F1 (macro)",
    "agreement": "agreement (same class as the teacher)",
    "mean_kl": "mean KL(teacher ‖ student)",
    "gradient_cosine": "gradient cosine",
}
FAMILY_NAMES = {
    "linear": "linear model",
    "gam": "GAM (generalized additive model)",
    "decision_tree": "decision tree",
    "xgboost": "XGBoost",
    "random_forest": "random forest",
    "mlp": "MLP (neural network)",
}
KIND_NAMES = {"reasoning_fit": "reasoning fit", "model_fit": "model fit"}
OPS = {"in": "in", "not_in": "not in", "is_null": "is null", "is_not_null": "is not null"}


def esc(value: Any) -> str:
    """Any value as HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def fmt_number(value: Any) -> str:
    """A number shortly: four significant digits, integers whole, no exponent below 1e6."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return as_text(value)
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return "∞" if value > 0 else ("−∞" if value < 0 else "NaN")
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e6 or size < 1e-3:
        return f"{value:.4g}"
    digits = max(0, 3 - math.floor(math.log10(size)))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_signed(value: float) -> str:
    """A contribution: signed (a true minus sign), zero bare."""
    if value == 0:
        return "0"
    return ("+" if value > 0 else "−") + fmt_number(abs(value))


def fmt_value(value: Any) -> str:
    """A cell of an example row or a filter: timestamps at midnight shown as dates."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return as_text(value)
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, str):
        return _short_timestamp(value)
    return json.dumps(value, default=str)


def _short_timestamp(text: str) -> str:
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T00:00:00(\.0+)?(Z|[+-]00:00)?", text)
    return match.group(1) if match else text


def clip_text(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_param(value: Any) -> str:
    """A hyperparameter value: numbers short, anything else as JSON."""
    if isinstance(value, bool | int | float) or value is None:
        return fmt_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_param(v)}" for k, v in params.items()) or "(defaults)"


def _column_ref(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


def _literal(value: Any) -> str:
    """A filter value: plain words bare (as in `listed_at >= 2020-01-01`), others quoted."""
    if isinstance(value, str):
        plain = value and re.fullmatch(r"[\w.:+-]+", value) and value.lower() not in (
            "true", "false", "null", "and", "or", "not", "in")
        return value if plain else json.dumps(value, ensure_ascii=False)
    return fmt_value(value)


def filter_text(flt: Filter | None) -> str:
    """A filter as one readable expression; compound parts in parentheses."""
    if flt is None:
        return ""
    if isinstance(flt, Comparison):
        col, op = _column_ref(flt.col), flt.op.value
        if op in ("is_null", "is_not_null"):
            return f"{col} {OPS[op]}"
        if op in ("in", "not_in"):
            values = flt.value if isinstance(flt.value, list) else [flt.value]
            return f"{col} {OPS[op]} ({', '.join(_literal(v) for v in values)})"
        return f"{col} {op} {_literal(flt.value)}"
    if isinstance(flt, Not):
        return f"not ({filter_text(flt.filter)})"
    if isinstance(flt, And | Or):
        joiner = " and " if isinstance(flt, And) else " or "
        parts = [filter_text(f) for f in flt.filters]
        if len(parts) == 1:
            return parts[0]
        return joiner.join(
            p if isinstance(f, Comparison | Not) else f"({p})"
            for p, f in zip(parts, flt.filters, strict=True)
        )
    return str(flt)


def safe_url(url: Any) -> str:
    """A URL without its user info or query values, either of which may be a credential (a
    token is often passed as the user name)."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "(unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(f"{p.split('=', 1)[0]}=…" for p in parts.query.split("&") if p)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def created_text(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def level_text(value: Any) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, bool):
        return as_text(value)
    return clip_text(str(value), 30)


class ReportTask:
    """What the card's outputs mean, for titles and axis labels."""

    def __init__(self, card: ModelCard) -> None:
        self.classification = (
            card.task.task_kind == "classification" if card.task is not None
            else card.classes is not None
        )
        self.label = card.task.label_column if card.task is not None else None
        self.classes = list(card.classes or [])
        self.multiclass = self.classification and len(self.classes) > 2
        target = self.label if self.label is not None else "the teacher's output"
        if not self.classification:
            self.unit = target
            self.shape_unit = target
            self.importance_unit = target
        elif self.multiclass:
            self.unit = "score"
            self.shape_unit = "class score"
            self.importance_unit = "score of the predicted class"
        else:
            positive = level_text(self.classes[1]) if len(self.classes) > 1 else "class 1"
            self.unit = "log-odds"
            self.shape_unit = f"log-odds of {positive}"
            self.importance_unit = "log-odds of the predicted class"

    def title(self, card: ModelCard) -> str:
        family = FAMILY_NAMES.get(card.family, card.family)
        if not self.classification:
            what = f"regression of {self.label}" if self.label else "regression"
        else:
            levels = " / ".join(level_text(c) for c in self.classes)
            of = f" of {self.label}" if self.label else ""
            what = f"classification{of} ({levels})" if levels else f"classification{of}"
        return f"{family}: {what}"
