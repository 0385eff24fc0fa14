"""Training the learned risk model: ``refunds risk train --data FILE.csv [--out FILE]``.

The CSV's header names the risk features (``activities.risk_features.FEATURE_COLUMNS``) and a
``label``: 0 legitimate, 1 abusive. ``reason`` holds a reason code, ``disputed`` 0/1,
``hours_since_payment`` may be empty (unknown). The model is a standardised logistic
regression (scikit-learn, the ``risk`` extra), measured on a stratified 25% holdout, then
refitted on every row and saved with joblib beside its format, version and feature names,
which ``RiskModel.load`` checks.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activities.risk_features import FEATURE_COLUMNS
from activities.risk_model import (
    MODEL_FORMAT,
    MODEL_VERSION,
    NUMERIC_COLUMNS,
    REASON_CODES,
    VECTOR_NAMES,
)

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}
_MIN_ROWS_PER_LABEL = 2
_MIN_ROWS = 10


class TrainingDataError(ValueError):
    """The training data cannot be used; one line that says what and where."""


class RiskModelUnavailable(RuntimeError):
    """scikit-learn (the ``risk`` extra) is not installed."""


def read_training_csv(path: Path) -> tuple[list[list[float]], list[int]]:
    """Rows and labels of a training CSV; every problem is a ``TrainingDataError``."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            records = list(reader)
    except FileNotFoundError:
        raise TrainingDataError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainingDataError(f"cannot read {path}: {exc}") from None
    missing = [column for column in (*FEATURE_COLUMNS, "label") if column not in header]
    if missing:
        raise TrainingDataError(f"{path} lacks the column(s) {', '.join(missing)}")
    if not records:
        raise TrainingDataError(f"{path} has no data rows")
    rows, labels = [], []
    for line, record in enumerate(records, start=2):
        rows.append(_vector_of_record(path, line, record))
        labels.append(_label_of(path, line, record.get("label") or ""))
    counts = {label: labels.count(label) for label in (0, 1)}
    if 0 in counts.values():
        only = 0 if counts[0] else 1
        raise TrainingDataError(
            f"{path}: every label is {only}; the model needs both 0 (legitimate) "
            "and 1 (abusive) examples"
        )
    if len(rows) < _MIN_ROWS or min(counts.values()) < _MIN_ROWS_PER_LABEL:
        raise TrainingDataError(
            f"{path}: too few rows to train and check a model ({counts[0]} labelled 0, "
            f"{counts[1]} labelled 1; need {_MIN_ROWS} rows and {_MIN_ROWS_PER_LABEL} of each)"
        )
    return rows, labels


def _vector_of_record(path: Path, line: int, record: dict[str, str | None]) -> list[float]:
    numbers: list[float] = []
    for column in NUMERIC_COLUMNS:
        text = (record.get(column) or "").strip().lower()
        if column == "disputed":
            if text not in _TRUE | _FALSE:
                raise TrainingDataError(
                    f"{path} line {line}: disputed must be 0 or 1, got {text!r}"
                )
            numbers.append(1.0 if text in _TRUE else 0.0)
        elif text == "" and column == "hours_since_payment":
            numbers.append(math.nan)
        else:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise TrainingDataError(
                    f"{path} line {line}: {column} must be a number, got {text!r}"
                )
            numbers.append(value)
    reason = (record.get("reason") or "").strip().lower()
    if reason not in REASON_CODES:
        raise TrainingDataError(
            f"{path} line {line}: reason {reason!r} is not one of {', '.join(REASON_CODES)}"
        )
    return numbers + [1.0 if reason == code else 0.0 for code in REASON_CODES]


def _label_of(path: Path, line: int, text: str) -> int:
    text = text.strip().lower()
    if text in {"1", "true"}:
        return 1
    if text in {"0", "false"}:
        return 0
    raise TrainingDataError(
        f"{path} line {line}: label must be 0 (legitimate) or 1 (abusive), got {text!r}"
    )


@dataclass(frozen=True)
class TrainReport:
    rows: int
    abusive: int  # rows labelled 1
    legitimate: int  # rows labelled 0
    holdout_rows: int
    accuracy: float  # on the holdout, by a model fitted on the rest
    auc: float
    saved_to: Path


def train(data: Path, out: Path) -> TrainReport:
    """Fit on ``data``, measure on a stratified 25% holdout, save the model refitted on all."""
    try:
        import joblib  # type: ignore[import-untyped]
        import sklearn  # type: ignore[import-untyped]
        from sklearn.metrics import accuracy_score, roc_auc_score  # type: ignore[import-untyped]
        from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
    except ImportError as exc:
        raise RiskModelUnavailable(
            f"training needs scikit-learn ({exc.name} is missing): pip install 'refunds[risk]'"
        ) from exc
    rows, labels = read_training_csv(data)
    x_fit, x_test, y_fit, y_test = train_test_split(
        rows, labels, test_size=0.25, random_state=0, stratify=labels
    )
    probability = _pipeline().fit(x_fit, y_fit).predict_proba(x_test)[:, 1]
    pipeline = _pipeline().fit(rows, labels)
    bundle = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "features": list(VECTOR_NAMES),
        "pipeline": pipeline,
        "trained_at": datetime.now(UTC).isoformat(),
        "rows": len(rows),
        "sklearn": sklearn.__version__,
    }
    partial = out.with_name(f".{out.name}.partial")
    try:
        joblib.dump(bundle, partial)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise TrainingDataError(f"cannot write the model to {out}: {exc.strerror}") from None
    return TrainReport(
        rows=len(rows),
        abusive=sum(labels),
        legitimate=len(labels) - sum(labels),
        holdout_rows=len(y_test),
        accuracy=float(accuracy_score(y_test, probability >= 0.5)),
        auc=float(roc_auc_score(y_test, probability)),
        saved_to=out,
    )


def _pipeline() -> Any:
    from sklearn.impute import SimpleImputer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )
