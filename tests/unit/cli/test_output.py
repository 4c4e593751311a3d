"""Tables for people and pipes: natural width off a terminal, dollars to the cent, full
precision in JSON and CSV."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.cli.output import emit

NOISE = "2.5e-09::DOUBLE"  # what subtracting two equal costs leaves behind


def query(config: Path, sql: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), "lake", "query", sql, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_piped_table_keeps_a_long_cell_on_one_line(st_config: Callable[..., Path]) -> None:
    long = "w" * 150  # far past the 80 columns rich assumes without a terminal
    out = query(st_config(), f"SELECT '{long}' AS note, 42 AS n")
    lines = out.splitlines()
    assert sum(long in line for line in lines) == 1
    assert len(lines) == 5  # top rule, header, rule, the row, bottom rule
    assert all(len(line) == len(lines[0]) > 150 for line in lines)


def test_dollar_noise_reads_zero_in_tables_and_stays_exact_in_json_and_csv(
    st_config: Callable[..., Path],
) -> None:
    config = st_config()
    sql = f"SELECT {NOISE} AS unrealized_pnl, -{NOISE} AS total_pnl, {NOISE} AS roi"
    row = query(config, sql).splitlines()[3]
    assert [cell.strip() for cell in row.strip("│").split("│")] == ["0.00", "0.00", "2.5e-09"]
    assert json.loads(query(config, sql, "-f", "json")) == [
        {"unrealized_pnl": 2.5e-09, "total_pnl": -2.5e-09, "roi": 2.5e-09}
    ]
    assert query(config, sql, "-f", "csv").splitlines()[1] == "2.5e-09,-2.5e-09,2.5e-09"


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("realized_pnl", 1234.5678, "1,234.57"),
        ("net_flow_usd", -0.004, "0.00"),
        ("total_bought", 1000.0, "1,000.00"),
        ("current_position_value", 0.1, "0.10"),
        # not amounts of dollars: shown as they always were
        ("price_usd", 1.5e-07, "1.5e-07"),
        ("roi", 0.123456, "0.1235"),
        ("win_rate", 0.5, "0.5"),
        ("size_mb", 1000.0, "1,000"),
        ("score", 0.0, "0"),
        ("amount", 2.5e-09, "2.5e-09"),
    ],
)
def test_tables_round_dollars_to_the_cent_and_leave_other_numbers_alone(
    column: str, value: float, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emit([{column: value}])
    row = capsys.readouterr().out.splitlines()[3]
    assert row.strip("│ ") == shown
