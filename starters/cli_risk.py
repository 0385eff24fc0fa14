"""``refunds risk``: train the optional learned risk model on your own labelled history."""

from __future__ import annotations

from pathlib import Path

import click

from activities.risk_features import FEATURE_COLUMNS
from activities.risk_training import RiskModelUnavailable, TrainingDataError
from activities.risk_training import train as train_model
from starters.cli_support import emit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def risk() -> None:
    """Risk scoring: the rules score by default; a model trained here can replace them."""


@risk.command(
    epilog=(
        "FILE.csv has a header with the columns "
        + ", ".join(FEATURE_COLUMNS)
        + " and label (0 legitimate, 1 abusive); reason holds a reason code, disputed 0/1, "
        "hours_since_payment may be empty. Point the worker at the model with "
        "REFUNDS_RISK_MODEL=FILE."
    )
)
@click.option(
    "--data",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Labelled refund history (CSV).",
)
@click.option(
    "--out",
    default="risk-model.joblib",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to save the model.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def train(data: Path, out: Path, as_json: bool) -> None:
    """Train a risk model on labelled refunds, check it on a holdout, save it."""
    try:
        report = train_model(data, out)
    except (TrainingDataError, RiskModelUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    emit(
        {
            "rows": report.rows,
            "labels": {"0": report.legitimate, "1": report.abusive},
            "holdout": {
                "rows": report.holdout_rows,
                "accuracy": round(report.accuracy, 4),
                "auc": round(report.auc, 4),
            },
            "saved_to": str(report.saved_to),
        },
        as_json,
        "\n".join(
            [
                f"read {report.rows} rows from {data}",
                f"labels: {report.legitimate} legitimate (0), {report.abusive} abusive (1)",
                f"holdout of {report.holdout_rows} rows: accuracy {report.accuracy:.3f}, "
                f"AUC {report.auc:.3f}",
                f"model saved to {report.saved_to} (set REFUNDS_RISK_MODEL={report.saved_to})",
            ]
        ),
    )


if __name__ == "__main__":
    risk()
