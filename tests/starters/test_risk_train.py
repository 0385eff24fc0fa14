"""The learned risk path: `refunds risk train` on generated history, the model loaded and used,
and the rules taking over (with a warning) whenever the model file cannot be used."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import asyncpg
import joblib  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from temporalio.testing import ActivityEnvironment

from activities.risk import RiskActivities, RiskFeatures, RiskModel, RiskPolicy, assess
from activities.risk_features import FEATURE_COLUMNS
from starters.cli_risk import risk
from tests.activities.test_risk import QUIET, order
from workflows.models import RefundReason

REASONS = [reason.value for reason in RefundReason]


def write_history(path: Path, rows: int = 400, seed: int = 7, **fixed: object) -> Path:
    """Labelled refunds where abuse follows frequent refunds, rejections and 'not received'."""
    rng = random.Random(seed)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[*FEATURE_COLUMNS, "label"])
        writer.writeheader()
        for _ in range(rows):
            refunds_30d = rng.choice([0, 0, 0, 1, 1, 2, 3, 5])
            rejections = rng.choice([0, 0, 0, 0, 1, 2])
            reason = rng.choice(REASONS)
            amount = rng.randint(500, 80_000)
            logit = -3.0 + 1.1 * refunds_30d + 1.4 * rejections
            logit += 1.5 if reason == "product_not_received" else 0.0
            row = {
                "amount": amount,
                "payment_share": round(rng.uniform(0.1, 1.0), 2),
                "refunds_30d": refunds_30d,
                "refunded_30d": refunds_30d * rng.randint(1000, 9000),
                "refunds_90d": refunds_30d + rng.randint(0, 2),
                "refunded_90d": refunds_30d * 9000 + rng.randint(0, 20_000),
                "rejections": rejections,
                "hours_since_payment": "" if rng.random() < 0.1 else round(rng.uniform(0, 900), 1),
                "reason": reason,
                "disputed": int(rng.random() < 0.05),
                "in_flight": rng.choice([0, 0, 0, 1]),
                "label": int(rng.random() < 1 / (1 + math.exp(-logit))),
            }
            writer.writerow(row | fixed)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A model trained by the real command line, in its own process."""
    folder = tmp_path_factory.mktemp("risk")
    data = write_history(folder / "history.csv")
    out = folder / "model.joblib"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUNDS_")}
    command = [sys.executable, "-m", "starters.cli_risk", "train"]
    done = subprocess.run(
        [*command, "--data", str(data), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


ABUSIVE = dataclasses.replace(
    QUIET, refunds_30d=5, refunds_90d=6, rejections=2, reason=RefundReason.PRODUCT_NOT_RECEIVED
)


def test_train_reports_rows_labels_holdout_and_where_it_saved(
    trained: tuple[Path, dict[str, object]],
) -> None:
    out, report = trained
    assert report["rows"] == 400
    labels = report["labels"]
    assert isinstance(labels, dict) and labels["0"] + labels["1"] == 400
    assert min(labels.values()) > 40
    holdout = report["holdout"]
    assert isinstance(holdout, dict) and holdout["rows"] == 100
    assert holdout["auc"] > 0.75 and holdout["accuracy"] > 0.7
    assert report["saved_to"] == str(out) and out.is_file()


def test_train_prints_a_summary(tmp_path: Path) -> None:
    data = write_history(tmp_path / "h.csv", rows=120)
    out = tmp_path / "m.joblib"
    result = CliRunner().invoke(risk, ["train", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"read 120 rows from {data}"
    assert lines[1].startswith("labels: ") and "legitimate (0)" in lines[1]
    assert lines[2].startswith("holdout of 30 rows: accuracy ") and "AUC " in lines[2]
    assert lines[3].startswith(f"model saved to {out}")


def test_the_model_loads_back_and_scores_with_its_reasons(
    trained: tuple[Path, dict[str, object]],
) -> None:
    out, _ = trained
    model = RiskModel.load(out)
    assert model is not None
    high, reasons = model.score(ABUSIVE)
    low, _ = model.score(QUIET)
    assert high > 70 > 20 > low
    assert reasons[-1] == "scored by model model.joblib"
    assert 1 <= len(reasons) <= 4
    assert any(reason.startswith("refunds in the last 30 days: 5 (model +") for reason in reasons)

    assessment = assess(ABUSIVE, RiskPolicy(), model)
    assert assessment.scored_by == "model:model.joblib"
    assert assessment.score == high
    assert f"score {high} reaches the review score 40" in assessment.reasons


async def test_the_risk_activity_scores_with_the_model(
    trained: tuple[Path, dict[str, object]], ledger_db: asyncpg.Pool
) -> None:
    model = RiskModel.load(trained[0])
    activities = RiskActivities(ledger_db, RiskPolicy(), model)
    assessment = await ActivityEnvironment().run(activities.score_refund, order("m-1", 3000))
    assert assessment.scored_by == "model:model.joblib"
    assert "scored by model model.joblib" in assessment.reasons
    score = await ledger_db.fetchval(
        "SELECT risk_score FROM refund_requests WHERE request_id = 'm-1'"
    )
    assert score == assessment.score


# -- the rules are the fallback ----------------------------------------------------------------


async def test_a_corrupt_model_file_falls_back_to_the_rules_with_a_warning(
    tmp_path: Path, ledger_db: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = tmp_path / "corrupt.joblib"
    corrupt.write_bytes(b"\x80\x04this is not a pickle")
    with caplog.at_level(logging.WARNING, logger="activities.risk_model"):
        model = RiskModel.load(corrupt)
    assert model is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert str(corrupt) in record.getMessage()
    assert "cannot be read" in record.getMessage()
    assert "scoring by the rules instead" in record.getMessage()

    activities = RiskActivities(ledger_db, RiskPolicy(), model)
    assessment = await ActivityEnvironment().run(activities.score_refund, order("c-1", 3000))
    assert assessment.scored_by == "rules"


def _rewritten(trained: Path, target: Path, **changes: object) -> Path:
    bundle = joblib.load(trained)
    joblib.dump(bundle | changes, target)
    return target


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp, _: tmp / "absent.joblib", "does not exist"),
        (
            lambda tmp, _: joblib.dump({"weights": [1, 2]}, tmp / "other.joblib")[0],
            "is not a refunds risk model",
        ),
        (
            lambda tmp, src: _rewritten(src, tmp / "v9.joblib", version=9),
            "has model version 9",
        ),
        (
            lambda tmp, src: _rewritten(src, tmp / "f.joblib", features=["amount"]),
            "other features",
        ),
        (
            lambda tmp, src: _rewritten(src, tmp / "p.joblib", pipeline="not a pipeline"),
            "cannot score",
        ),
    ],
)
def test_an_unusable_model_file_is_named_with_its_problem(
    make: object,
    problem: str,
    tmp_path: Path,
    trained: tuple[Path, dict[str, object]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = Path(make(tmp_path, trained[0]))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="activities.risk_model"):
        assert RiskModel.load(path) is None
    [record] = caplog.records
    assert str(path) in record.getMessage() and problem in record.getMessage()


def test_a_model_failing_while_scoring_falls_back_to_the_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = RiskModel(tmp_path / "broken.joblib", pipeline=object())
    with caplog.at_level(logging.WARNING, logger="activities.risk"):
        assessment = assess(dataclasses.replace(QUIET, disputed=True), RiskPolicy(), broken)
    assert assessment.scored_by == "rules"
    assert assessment.reasons[0] == "payment is disputed (+30)"
    assert "broken.joblib failed to score" in caplog.text


# -- clear one-line errors from the command ----------------------------------------------------


def _train(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(risk, ["train", *args])
    return result.exit_code, result.output.strip()


def test_a_missing_data_file_is_one_line(tmp_path: Path) -> None:
    code, output = _train("--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m"))
    assert (code, output) == (1, f"Error: no such file: {tmp_path / 'nope.csv'}")


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    data = tmp_path / "h.csv"
    data.write_text("amount,payment_share,label\n100,0.5,1\n")
    code, output = _train("--data", str(data), "--out", str(tmp_path / "m"))
    assert code == 1 and "\n" not in output
    assert output.startswith(f"Error: {data} lacks the column(s) refunds_30d, refunded_30d,")
    assert output.endswith("in_flight")


def test_a_single_class_label_is_refused(tmp_path: Path) -> None:
    data = write_history(tmp_path / "h.csv", rows=50, label=0)
    out = tmp_path / "m.joblib"
    code, output = _train("--data", str(data), "--out", str(out))
    assert code == 1 and "\n" not in output
    assert output == (
        f"Error: {data}: every label is 0; the model needs both 0 (legitimate) "
        "and 1 (abusive) examples"
    )
    assert not out.exists()


def test_a_bad_value_names_its_line_and_column(tmp_path: Path) -> None:
    data = write_history(tmp_path / "h.csv", rows=30)
    lines = data.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "lots", 1)
    data.write_text("\n".join(lines) + "\n")
    code, output = _train("--data", str(data), "--out", str(tmp_path / "m"))
    assert (code, output) == (1, f"Error: {data} line 6: amount must be a number, got 'lots'")


def test_features_write_the_training_columns() -> None:
    row = ABUSIVE.as_row()
    assert list(row) == list(FEATURE_COLUMNS)
    assert row["reason"] == "product_not_received"
    assert isinstance(ABUSIVE, RiskFeatures)
