"""Config dataclasses: JSON round trip, --set coercion, one-line errors for bad keys and values."""

from dataclasses import dataclass

import pytest

from lagaug.core.config import apply_overrides, config_from_dict, config_to_dict, parse_overrides
from lagaug.core.errors import ConfigError


@dataclass
class Cfg:
    size: int = 3
    rate: float = 0.5
    flag: bool = False
    name: str = "a"
    box: tuple[int, ...] | None = None


def test_overrides_are_coerced_to_field_types():
    cfg = apply_overrides(Cfg(), parse_overrides(["size=8", "rate=1e-3", "flag=yes", "name=b", "box=1,2,3,4"]))
    assert cfg == Cfg(size=8, rate=0.001, flag=True, name="b", box=(1, 2, 3, 4))
    assert apply_overrides(cfg, {"box": "none"}).box is None


def test_json_round_trip():
    cfg = Cfg(size=5, box=(1, 2))
    assert config_from_dict(Cfg, config_to_dict(cfg)) == cfg


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"--set: unknown key 'sise' for Cfg; valid keys: size, rate, flag, name, box"):
        apply_overrides(Cfg(), {"sise": "3"})


@pytest.mark.parametrize("pair,message", [
    ("size=three", "--set size: expected int, got 'three'"),
    ("flag=maybe", "--set flag: expected true or false, got 'maybe'"),
    ("rate=fast", "--set rate: expected float, got 'fast'"),
])
def test_bad_values_name_the_key(pair, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Cfg(), parse_overrides([pair]))


def test_pair_without_equals_is_rejected():
    with pytest.raises(ConfigError, match=r"--set 'size': expected key=value"):
        parse_overrides(["size"])
