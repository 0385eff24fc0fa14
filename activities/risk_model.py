"""An optional learned risk model, trained on the user's own labelled refund history.

``refunds risk train`` (``activities.risk_training``) fits it on a CSV of the risk features
plus a 0/1 ``label`` and saves it with joblib, with its format, version and feature names.

The worker loads it when ``REFUNDS_RISK_MODEL`` names the file: the score is
``round(100 * P(abusive))`` and the reasons are the features that raised it most
(coefficient x standardised value, in log-odds). The rules stay the default and the
fallback: a missing, unreadable or incompatible file is logged and ``load`` answers None.

A model file is a pickle: loading one runs code from it. Load only files you trained.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from activities.risk_features import FEATURE_COLUMNS, RiskFeatures
from workflows.currencies import format_amount
from workflows.models import RefundReason

log = logging.getLogger(__name__)

MODEL_FORMAT = "refunds-risk-model"
MODEL_VERSION = 1
REASON_CODES = tuple(reason.value for reason in RefundReason)
NUMERIC_COLUMNS = tuple(column for column in FEATURE_COLUMNS if column != "reason")
# What the model is fed: the numeric columns, then one 0/1 column per reason code.
VECTOR_NAMES = (*NUMERIC_COLUMNS, *(f"reason={code}" for code in REASON_CODES))
_LABELS = {
    "amount": "amount",
    "payment_share": "share of the payment",
    "refunds_30d": "refunds in the last 30 days",
    "refunded_30d": "amount refunded in the last 30 days",
    "refunds_90d": "refunds in the last 90 days",
    "refunded_90d": "amount refunded in the last 90 days",
    "rejections": "earlier rejections",
    "hours_since_payment": "hours since the payment",
    "disputed": "payment disputed",
    "in_flight": "other refunds in flight",
}
_MONEY = {"amount", "refunded_30d", "refunded_90d"}
# A contribution (log-odds) below this is not worth a reason.
_NOTABLE = 0.1


def vector_of(features: RiskFeatures) -> list[float]:
    """The model's input for one refund, in ``VECTOR_NAMES`` order (NaN = unknown)."""
    row = features.as_row()
    numbers = [math.nan if row[c] is None else float(row[c] or 0) for c in NUMERIC_COLUMNS]
    return numbers + [1.0 if features.reason.value == code else 0.0 for code in REASON_CODES]


class RiskModel:
    """A trained model file, loaded and checked; ``score`` answers (score, reasons)."""

    def __init__(self, path: Path, pipeline: Any) -> None:
        self.path = path
        self._pipeline = pipeline

    @property
    def scored_by(self) -> str:
        return f"model:{self.path.name}"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RiskModel | None:
        """The model in ``path``, or None (with a warning naming the file) when unusable."""
        path = Path(path)
        opened = cls._open(path)
        if isinstance(opened, str):
            log.warning("risk model %s %s; scoring by the rules instead", path, opened)
            return None
        return opened

    @classmethod
    def _open(cls, path: Path) -> RiskModel | str:
        """The model, or what is wrong with the file."""
        try:
            import joblib  # type: ignore[import-untyped]
        except ImportError:
            return "cannot be loaded: scikit-learn is not installed (pip install 'refunds[risk]')"
        if not path.is_file():
            return "does not exist"
        try:
            bundle = joblib.load(path)
        except Exception as exc:  # a corrupt pickle raises almost anything
            return f"cannot be read ({type(exc).__name__}: {exc})"
        if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
            return "is not a refunds risk model (train one with: refunds risk train)"
        if bundle.get("version") != MODEL_VERSION:
            return f"has model version {bundle.get('version')!r}; this worker reads {MODEL_VERSION}"
        if bundle.get("features") != list(VECTOR_NAMES):
            return "was trained on other features than this worker computes"
        model = cls(path, bundle.get("pipeline"))
        try:
            model.score(_PROBE)
        except Exception as exc:  # an object that is not the pipeline we save
            return f"cannot score ({type(exc).__name__}: {exc})"
        return model

    def score(self, features: RiskFeatures) -> tuple[int, list[str]]:
        x = [vector_of(features)]
        probability = float(self._pipeline.predict_proba(x)[0][1])
        z = self._pipeline[:-1].transform(x)[0]
        coefficients = self._pipeline[-1].coef_[0]
        raised = sorted(
            (
                (float(coefficient * value), name)
                for name, coefficient, value in zip(VECTOR_NAMES, coefficients, z, strict=True)
                if not name.startswith("reason=") or name == f"reason={features.reason.value}"
            ),
            reverse=True,
        )
        reasons = [
            f"{_describe(name, features)} (model {weight:+.2f})"
            for weight, name in raised[:3]
            if weight >= _NOTABLE
        ] or ["no feature raised the risk much"]
        score = min(100, max(0, round(100 * probability)))
        return score, [*reasons, f"scored by model {self.path.name}"]


def _describe(name: str, features: RiskFeatures) -> str:
    if name.startswith("reason="):
        return f"reason is {features.reason.value}"
    value = features.as_row()[name]
    if value is None:
        shown = "unknown"
    elif name in _MONEY:
        shown = format_amount(int(value), features.currency)
    elif name == "payment_share":
        shown = f"{float(value):.0%}"
    elif name == "disputed":
        shown = "yes" if value else "no"
    else:
        shown = str(value)
    return f"{_LABELS[name]}: {shown}"


_PROBE = RiskFeatures(
    amount=1000,
    currency="USD",
    payment_share=1.0,
    refunds_30d=0,
    refunded_30d=0,
    refunds_90d=0,
    refunded_90d=0,
    rejections=0,
    hours_since_payment=None,
    reason=RefundReason.OTHER,
    disputed=False,
    in_flight=0,
)
