"""rempart.lib.identifiers.validate_rpps: 11 digits with a Luhn key (python-stdnum has no RPPS module)."""

from __future__ import annotations

import random

import pytest

from rempart.lib.identifiers import InvalidIdentifier, rpps_check_digit, validate_rpps

from .test_lib_identifiers import assert_value_hidden


def luhn_key(body: str) -> str:
    """The Luhn key computed independently of the code under test: double every second digit from the right."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # the key will sit to the right: these digits are doubled
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return str((10 - total % 10) % 10)


def synthetic_rpps(rng: random.Random) -> str:
    body = "10" + "".join(rng.choice("0123456789") for _ in range(8))
    return body + luhn_key(body)


RNG = random.Random(13)
VALID = [synthetic_rpps(RNG) for _ in range(50)]


def test_the_key_is_the_luhn_key():
    assert luhn_key("1000000001") == "7"  # 10000000017, the claims cases' prescriber
    assert all(rpps_check_digit(value[:10]) == value[10] for value in VALID)


@pytest.mark.parametrize("value", VALID[:10])
def test_valid_numbers_are_returned_as_11_digits(value):
    assert validate_rpps(value) == value
    spaced = f"{value[:1]} {value[1:6]} {value[6:]}"
    assert validate_rpps(spaced) == value
    assert validate_rpps("8" + value) == value  # the IdNPS form Pro Santé Connect returns


def test_every_single_digit_error_is_caught():
    for value in VALID[:10]:
        for position in range(11):
            for digit in "0123456789":
                if digit == value[position]:
                    continue
                wrong = value[:position] + digit + value[position + 1 :]
                with pytest.raises(InvalidIdentifier, match="check key"):
                    validate_rpps(wrong)


def test_adjacent_swaps_are_caught_except_09_and_90():
    for value in VALID:
        for position in range(10):
            a, b = value[position], value[position + 1]
            if a == b or {a, b} == {"0", "9"}:
                continue
            swapped = value[:position] + b + a + value[position + 2 :]
            with pytest.raises(InvalidIdentifier):
                validate_rpps(swapped)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "length"),
        ("1000000001", "length"),
        ("100000000177", "length"),  # 12 digits not in the IdNPS form
        ("8100000000177", "length"),
        ("1000000001A", "format"),
        ("10000000-17", "format"),
        ("١٠٠٠٠٠٠٠٠١٧", "format"),  # Arabic-Indic digits: str.isdigit() would take them
        ("１００００００００１７", "format"),  # full-width digits
        ("80000000001" + "7", "check key"),  # IdNPS whose RPPS part has a wrong key
    ],
)
def test_malformed_numbers_say_why_without_the_value(value, words):
    with pytest.raises(InvalidIdentifier, match=words) as caught:
        validate_rpps(value)
    if value:
        assert_value_hidden(caught.value, value)


@pytest.mark.parametrize("value", [None, 10000000017, b"10000000017"])
def test_values_that_are_not_text_are_invalid(value):
    with pytest.raises(InvalidIdentifier):
        validate_rpps(value)  # type: ignore[arg-type]
