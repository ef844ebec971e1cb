"""Config of the network sources and sinks: errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelog.config import ConfigError, load_config


def load(tmp_path: Path, text: str) -> object:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return load_config(p, environ={})


def test_nats_source_and_sink_parse(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
[[sources]]
name = "bus"
type = "nats"
[sources.nats]
stream = "LOGS"
subject = "engine.>"

[[sinks]]
name = "out"
[sinks.nats]
subject_prefix = "tradelog.events"
""",
    )
    src = cfg.sources[0]  # type: ignore[attr-defined]
    assert src.nats.stream == "LOGS" and src.nats.durable == "tradelog"
    assert cfg.sinks[0].nats.stream == "TRADELOG_EVENTS"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[sources]]\nname = "b"\ntype = "nats"\n', "sources[0].nats: a nats source needs"),
        ('[[sources]]\nname = "b"\ntype = "binance"\n', "sources[0].binance: a binance source"),
        (
            '[[sources]]\nname = "b"\ntype = "file"\npath = "x"\n[sources.nats]\n'
            'stream = "S"\nsubject = "a"\n',
            'sources[0].nats: only for type = "nats"',
        ),
        (
            '[[sources]]\nname = "b"\ntype = "nats"\n[sources.nats]\nstream = "a.b"\n'
            'subject = "x"\n',
            "sources[0].nats",
        ),
        (
            '[[sources]]\nname = "b"\ntype = "binance"\n[sources.binance]\nsymbols = []\n',
            "sources[0].binance",
        ),
        (
            '[[sources]]\nname = "b"\ntype = "binance"\n[sources.binance]\n'
            'symbols = ["BTCUSDT"]\nstreams = ["kline"]\n',
            "sources[0].binance.streams",
        ),
        ('[[sinks]]\nname = "o"\n[sinks.nats]\nsubject_prefix = "a.>"\n', "sinks[0].nats"),
    ],
)
def test_bad_network_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert message in str(err.value)
