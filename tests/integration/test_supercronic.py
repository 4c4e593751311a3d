"""`supercronic -test` accepts the shipped schedule and its compressed copy."""

from __future__ import annotations

import subprocess
from pathlib import Path

from smarttrader_cli.ops.schedule import compress
from tests.harness import cached_binary

CRONTAB = Path(__file__).resolve().parents[2] / "crontab" / "smarttrader.crontab"


def supercronic() -> Path:
    return cached_binary("supercronic")


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
