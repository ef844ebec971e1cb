"""Rule alerts on pair metrics: the expression parser (no eval), PairRule validation, the
config keys named in errors, and evaluation on the latest point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradelog.analytics.rules import (
    Condition,
    PairRule,
    evaluate,
    parse_expr,
    rules_for_pair,
)
from tradelog.config import Config, ConfigError, load_config
from tradelog.model.events import Severity


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("zscore > 2", Condition("zscore", ">", 2.0)),
        ("abs(zscore) >= 2.5", Condition("zscore", ">=", 2.5, absolute=True)),
        ("correlation<0.5", Condition("correlation", "<", 0.5)),
        ("  adf_pvalue <= 5e-2 ", Condition("adf_pvalue", "<=", 0.05)),
        ("spread < -0.01", Condition("spread", "<", -0.01)),
        ("beta >= 1", Condition("beta", ">=", 1.0)),
        ("abs( spread ) > .5", Condition("spread", ">", 0.5, absolute=True)),
        ("zscore > +3.", Condition("zscore", ">", 3.0)),
    ],
)
def test_parser_accepts(expr: str, expected: Condition) -> None:
    assert parse_expr(expr) == expected


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("zscore = 2", "cannot read"),
        ("zscore => 2", "cannot read"),
        ("zscore == 2", "cannot read"),
        ("zscor > 2", "unknown field 'zscor'"),
        ("abs zscore > 2", "cannot read"),
        ("abs(zscore > 2", "cannot read"),
        ("abs > 2", "abs needs parentheses"),
        ("ABS(zscore) > 2", "cannot read"),
        ("abs(abs(zscore)) > 2", "cannot read"),
        ("zscore >", "cannot read"),
        ("2 < zscore", "cannot read"),
        ("zscore > 2 and beta > 1", "cannot read"),
        ("__import__('os').system('x') > 1", "cannot read"),
        ("zscore > nan", "cannot read"),
        ("zscore > inf", "cannot read"),
        ("zscore > 1e999", "finite"),
        ("", "cannot read"),
    ],
)
def test_parser_rejects(expr: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse_expr(expr)


@given(st.text(max_size=30))
def test_parser_never_raises_anything_but_value_error(text: str) -> None:
    try:
        cond = parse_expr(text)
    except ValueError:
        return
    assert parse_expr(cond.describe()) == cond


@given(
    field=st.sampled_from(["zscore", "spread", "correlation", "beta", "adf_pvalue"]),
    op=st.sampled_from([">", ">=", "<", "<="]),
    threshold=st.floats(allow_nan=False, allow_infinity=False),
    absolute=st.booleans(),
    pad=st.sampled_from(["", " ", "  "]),
)
def test_parser_reads_every_valid_expression(
    field: str, op: str, threshold: float, absolute: bool, pad: str
) -> None:
    lhs = f"abs({pad}{field}{pad})" if absolute else field
    cond = parse_expr(f"{pad}{lhs}{pad}{op}{pad}{threshold!r}{pad}")
    assert cond == Condition(field, op, threshold, absolute)
    assert parse_expr(cond.describe()) == cond


def rule(**kw: Any) -> PairRule:
    fields: dict[str, Any] = {"name": "r1", "a": "BTC", "b": "ETH", "expr": "zscore > 2"}
    fields.update(kw)
    return PairRule(**fields)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"expr": "zscore ~ 2"}, "expr: cannot read"),
        ({"window": 1}, "window: must be between 2 and"),
        ({"b": "BTC"}, "b: must differ from a"),
        ({"a": " "}, "a: must name a symbol"),
        ({"name": "has space"}, "name: must be letters"),
    ],
)
def test_pair_rule_validated_at_construction(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule(**kw)


def test_pair_rule_defaults_and_level() -> None:
    r = msgspec.convert(
        {"name": "x", "a": "A", "b": "B", "expr": "abs(zscore) > 2", "level": "high"}, PairRule
    )
    assert (r.timeframe, r.window, r.level) == ("1m", 20, Severity.HIGH)
    assert r.condition == Condition("zscore", ">", 2.0, absolute=True)


METRICS = {"zscore": -2.6, "spread": 0.004, "correlation": 0.42, "beta": 1.3,
           "adf_pvalue": 0.03}  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "triggered", "value", "threshold"),
    [
        ("abs(zscore) >= 2.5", True, 2.6, 2.5),
        ("zscore > 2", False, -2.6, 2.0),
        ("zscore < -2", True, -2.6, -2.0),
        ("correlation < 0.5", True, 0.42, 0.5),
        ("beta <= 1.3", True, 1.3, 1.3),  # boundary: <= holds at equality
        ("beta < 1.3", False, 1.3, 1.3),  # and < does not
        ("adf_pvalue <= 0.05", True, 0.03, 0.05),
        ("spread > 0.01", False, 0.004, 0.01),
    ],
)
def test_evaluate_on_latest_point(
    expr: str, triggered: bool, value: float, threshold: float
) -> None:
    out = evaluate(rule(expr=expr, level=Severity.HIGH), METRICS)
    assert out["triggered"] is triggered
    assert out["value"] == pytest.approx(value)
    assert out["threshold"] == threshold
    assert out["level"] == "high"
    assert out["reason"] is None


def test_missing_value_never_triggers() -> None:
    out = evaluate(rule(expr="abs(zscore) > 0"), {**METRICS, "zscore": None})
    assert out["triggered"] is False and out["value"] is None
    assert out["reason"] == "zscore is not available"
    out = evaluate(rule(expr="zscore < 1"), {**METRICS, "zscore": float("nan")})
    assert out["triggered"] is False and out["value"] is None


def test_rules_for_pair_keeps_direction() -> None:
    rules = [rule(name="ab"), rule(name="ba", a="ETH", b="BTC"), rule(name="ac", b="SOL")]
    assert [r.name for r in rules_for_pair(rules, "BTC", "ETH")] == ["ab"]
    assert [r.name for r in rules_for_pair(rules, "ETH", "BTC")] == ["ba"]


# ---------------------------------------------------------------------------- config

PAIR_OK = """
[[pairs]]
name = "btc_eth_z"
a = "BTCUSDT"
b = "ETHUSDT"
timeframe = "1s"
window = 30
expr = "abs(zscore) >= 2.5"
level = "high"
"""


def load(tmp_path: Path, text: str) -> Config:
    p = tmp_path / "tradelog.toml"
    p.write_text(text, encoding="utf-8")
    return load_config(p, environ={})


def test_config_reads_pairs(tmp_path: Path) -> None:
    cfg = load(tmp_path, PAIR_OK)
    assert cfg.pairs == [
        PairRule(name="btc_eth_z", a="BTCUSDT", b="ETHUSDT", timeframe="1s", window=30,
                 expr="abs(zscore) >= 2.5", level=Severity.HIGH)
    ]  # fmt: skip
    assert Config().pairs == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (PAIR_OK.replace("abs(zscore)", "abs(zscor)"), "pairs[0].expr: unknown field 'zscor'"),
        (PAIR_OK.replace("window = 30", "window = 1"), "pairs[0].window: must be between 2"),
        (PAIR_OK.replace('"ETHUSDT"', '"BTCUSDT"'), "pairs[0].b: must differ from a"),
        (PAIR_OK.replace('"1s"', '"2m"'), "pairs[0].timeframe:"),
        (PAIR_OK.replace('"high"', '"urgent"'), "pairs[0].level:"),
        (PAIR_OK.replace("expr = ", "exp = "), "pairs[0].exp: unknown key"),
        (PAIR_OK + PAIR_OK, "pairs[1].name: duplicate rule name 'btc_eth_z'"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert message in str(err.value)
