"""host.py: one answer to "is this loopback" and "can this directory be written"."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarttrader_cli.config.schema import BirdeyeConfig
from smarttrader_cli.errors import ConfigError
from smarttrader_cli.host import dir_problem, dir_state, is_loopback, is_loopback_url
from smarttrader_cli.ops.doctor import WARN, run_checks
from smarttrader_cli.sources.birdeye import BirdeyeClient
from tests.harness import write_config


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.8.0.2", True),
        ("0.0.0.0", False),
        ("api.helius.xyz", False),
        ("10.0.0.5", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_doctor_and_the_birdeye_client_agree_on_another_loopback_address(
    tmp_path: Path,
) -> None:
    """Defect: for http://127.0.0.2 doctor said a missing key was fine (loopback) while
    BirdeyeClient refused to start without one."""
    url = "http://127.0.0.2:8765"
    assert is_loopback_url(url)
    BirdeyeClient(BirdeyeConfig(base_url=url), None)  # no ConfigError
    config = write_config(tmp_path, {"birdeye.base_url": url})
    check = next(r for r in run_checks(config, env={}) if r.check == "birdeye key")
    assert check.status == WARN and "loopback" in check.detail
    with pytest.raises(ConfigError, match="BIRDEYE_API_KEY"):
        BirdeyeClient(BirdeyeConfig(base_url="http://128.0.0.2:8765"), None)


def test_dir_problem_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "a" / "b"
    assert dir_problem(missing) is None and dir_state(missing) == "can be created"
    assert not (tmp_path / "a").exists()
    assert dir_problem(tmp_path) is None and dir_state(tmp_path) == "writable"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert dir_problem(blocker) == "exists but is not a directory"
    assert dir_problem(blocker / "below") == f"does not exist and {blocker} is not writable"
