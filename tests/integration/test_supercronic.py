"""`supercronic -test` accepts the shipped schedule and its compressed copy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from smarttrader_cli.ops.cache import bin_dir
from smarttrader_cli.ops.schedule import compress

CRONTAB = Path(__file__).resolve().parents[2] / "crontab" / "smarttrader.crontab"


def supercronic() -> Path:
    path = bin_dir() / "supercronic"
    if not path.is_file():
        if os.environ.get("ST_TESTS_ALLOW_MISSING") == "1":
            pytest.skip(f"{path} missing")
        pytest.fail(f"{path} missing: run `bash scripts/install-deps.sh`", pytrace=False)
    return path


def test_supercronic_accepts_the_schedule() -> None:
    proc = subprocess.run(
        [str(supercronic()), "-test", str(CRONTAB)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_supercronic_accepts_the_compressed_schedule(tmp_path: Path) -> None:
    squeezed = tmp_path / "fast.crontab"
    squeezed.write_text(compress(CRONTAB.read_text()))
    proc = subprocess.run(
        [str(supercronic()), "-test", str(squeezed)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_supercronic_rejects_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.crontab"
    bad.write_text(CRONTAB.read_text() + "61 * * * * st --log-format json bronze tokens\n")
    proc = subprocess.run(
        [str(supercronic()), "-test", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
