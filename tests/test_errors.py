"""One helper turns a pydantic error into the one-line message every layer shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from whichbin.contract import BINS, DEEPLENS_BINS, DEEPLENS_NAMES, Correction, DeepLensMessage
from whichbin.errors import ConfigError, validation_message
from whichbin.rules import load_rules


class _Flags(BaseModel):
    min_side: int = 32


def _error(model: type[BaseModel], data: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value


def test_message_names_source_key_and_problem() -> None:
    e = _error(_Flags, {"min_side": "big"})
    assert validation_message(e, "cfg.yaml").startswith("cfg.yaml: min_side: Input should be")
    assert validation_message(e, "cfg.yaml", prefix=("data",)).startswith("cfg.yaml: data.min_side")
    assert validation_message(e, flag=True).startswith("--min-side: Input should be")
    whole = _error(_Flags, [1, 2])
    assert validation_message(whole, "cfg.yaml").startswith("cfg.yaml: (top level): ")
    assert validation_message(whole, flag=True, top="flags").startswith("flags: ")
    assert "\n" not in validation_message(e, "cfg.yaml")


def test_bad_json_payload_is_named_as_the_payload() -> None:
    with pytest.raises(ValidationError) as info:
        Correction.model_validate_json(b"{not json")
    msg = validation_message(info.value, "whichbin/cam/correction", top="payload")
    assert msg.startswith("whichbin/cam/correction: payload: Invalid JSON")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("threshold: 2\nbins: {compost: [apple]}\n", r"invalid rule pack: threshold: .*1"),
        ("bins: [unclosed\n", r"invalid rule pack: while parsing"),
    ],
)
def test_rule_pack_error_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"rules\.yaml: " + expected) as info:
        load_rules(bad)
    assert "\n" not in str(info.value)


def test_deeplens_names_cover_the_bins_both_ways() -> None:
    assert set(DEEPLENS_NAMES) == set(BINS)
    for bin_, name in DEEPLENS_NAMES.items():
        assert DEEPLENS_BINS[name] == bin_
        assert DeepLensMessage(object=name).object == name
