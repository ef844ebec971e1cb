"""``[surveillance]`` in the config file: defaults from DESIGN §4, overrides, errors that
name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelog.config import ConfigError, load_config


def test_defaults_are_the_design_values(tmp_path: Path) -> None:
    s = load_config(None, environ={}).surveillance
    assert s.enabled and s.publish.nats_url is None and s.publish.webhook_url is None
    assert (s.wash_trade.match_window_s, s.wash_trade.ratio_threshold) == (1.0, 0.8)
    assert (s.spoofing.lookback_s, s.spoofing.size_multiple, s.spoofing.book_multiple,
            s.spoofing.max_fill_ratio) == (15.0, 10.0, 1.0, 0.05)  # fmt: skip
    assert (s.cancel_ratio.cancel_ratio, s.cancel_ratio.order_to_trade) == (0.9, 15.0)
    assert (s.pump_dump.min_rise, s.pump_dump.rise_window_s, s.pump_dump.volume_multiple,
            s.pump_dump.min_fall) == (0.15, 600.0, 3.0, 0.10)  # fmt: skip
    assert (s.volume_spike.multiple, s.volume_spike.trailing_minutes) == (3.0, 60)
    assert (s.price_anomaly.max_return, s.price_anomaly.max_robust_z) == (0.15, 6.0)
    assert s.concentration.max_share == 0.6


def test_toml_and_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        """
[surveillance.spoofing]
lookback_s = 10.0

[surveillance.risk]
daily_loss_limits = { mm = 5000.0 }
position_limits = [ { strategy = "mm", max_abs = 5.0 } ]
rules = [ { name = "big_order", metric = "order_notional", threshold = 1e6 } ]

[surveillance.publish]
nats_url = "nats://127.0.0.1:4222"
""",
        encoding="utf-8",
    )
    s = load_config(cfg, environ={"TRADELOG_SURVEILLANCE_VOLUME_SPIKE_MULTIPLE": "4"}).surveillance
    assert s.spoofing.lookback_s == 10.0 and s.volume_spike.multiple == 4.0
    assert s.risk.daily_loss_limits == {"mm": 5000.0}
    assert s.risk.position_limits[0].max_abs == 5.0
    assert s.risk.rules[0].op == ">"
    assert s.publish.nats_url == "nats://127.0.0.1:4222"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[surveillance.spoofing]\nlookbak_s = 1\n", "surveillance.spoofing.lookbak_s"),
        ('[surveillance.publish]\nwebhook_url = "ftp://x"\n', "webhook_url"),
        ('[surveillance.risk]\nrules = [ { name = "a b", metric = "position", threshold = 1 } ]\n',
         "risk rule name"),
        ('[surveillance.risk]\nrules = [ { name = "r", metric = "pnl", threshold = 1 } ]\n',
         "surveillance.risk.rules[0].metric"),
    ],
)  # fmt: skip
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(cfg, environ={})
