"""rempart.lib.identifiers: NIR, SIREN/SIRET, FINESS, IBAN/BIC, AMC numbers and lunar dates."""

from __future__ import annotations

import traceback

import pytest
from stdnum import luhn

from rempart.lib.identifiers import (
    InvalidIdentifier,
    LunarDate,
    finess_check_digit,
    nir_check_key,
    validate_amc_number,
    validate_bic,
    validate_finess,
    validate_iban,
    validate_nir,
    validate_siren,
    validate_siret,
)


def nir_key(body: str) -> str:
    """The NIR key computed independently of the code under test (Corsica: 2A -> 19, 2B -> 18)."""
    digits = body.upper().replace("2A", "19", 1) if body[5:7].upper() == "2A" else body
    digits = digits.upper().replace("2B", "18", 1) if body[5:7].upper() == "2B" else digits
    return f"{97 - int(digits) % 97:02d}"


def full_nir(body: str) -> str:
    return body + nir_key(body)


def assert_value_hidden(exc: BaseException, value: str) -> None:
    """Neither the message, the repr, nor the printed exception (nor a chained one) may repeat the value."""
    text = "".join(traceback.format_exception_only(exc))
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None
    for form in {value, value.replace(" ", ""), value.strip()}:
        if len(form) >= 5:
            assert form not in str(exc)
            assert form not in repr(exc)
            assert form not in text


# ---------------------------------------------------------------------------------------------- NIR

VALID_NIRS = [
    full_nir("1850775123456"),
    full_nir("2991299001002"),  # born abroad (department 99)
    full_nir("255082A012345"),  # Corsica, 2A
    full_nir("164012B001010"),  # Corsica, 2B
    full_nir("7850775123456"),  # temporary number (NIA)
]


@pytest.mark.parametrize("nir", VALID_NIRS)
def test_valid_nirs_are_accepted_and_normalised(nir):
    assert validate_nir(nir) == nir
    assert validate_nir(nir.lower()) == nir
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    assert validate_nir(spaced) == nir


def test_corsica_key_is_computed_with_2a_and_2b_replaced():
    a = full_nir("255082A012345")
    b = full_nir("255082B012345")
    assert a[-2:] != b[-2:]  # 2A and 2B give different keys
    assert validate_nir(a) == a
    assert validate_nir(b) == b
    with pytest.raises(InvalidIdentifier, match="check key"):
        validate_nir(a[:-2] + b[-2:])
    read_as_20 = f"{97 - int('255082' + '0' + '012345') % 97:02d}"  # the key if 2A were read as 20
    with pytest.raises(InvalidIdentifier, match="check key"):
        validate_nir("255082A012345" + read_as_20)


def test_nir_check_key_helper_agrees_with_the_official_rule():
    for nir in VALID_NIRS:
        assert nir_check_key(nir[:13]) == nir[13:]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("185077512345600", "check key"),  # wrong key
        (full_nir("1850775123456")[:-1], "length"),  # 14 characters
        (full_nir("1850775123456") + "1", "length"),  # 16 characters
        ("1850775123456", "length"),  # no key
        ("", "length"),
        ("985077512345659", "format"),  # sex digit 9 does not exist
        ("18507751234A659", "format"),  # letter outside the department
        ("185072C123456" + "00", "format"),  # 2C is no department
        ("1850775\u0661\u0662345659", "format"),  # non-ASCII digits
    ],
)
def test_invalid_nirs_are_rejected_without_the_value_in_the_message(value, reason):
    with pytest.raises(InvalidIdentifier, match=reason) as info:
        validate_nir(value)
    assert_value_hidden(info.value, value)


def test_invalid_nir_error_has_no_chained_cause_showing_the_value():
    value = "185077512345600"
    with pytest.raises(InvalidIdentifier) as info:
        validate_nir(value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# ---------------------------------------------------------------------------------------------- SIREN / SIRET


def test_siren():
    assert validate_siren("552 008 443") == "552008443"
    with pytest.raises(InvalidIdentifier, match="check key") as info:
        validate_siren("552008444")
    assert_value_hidden(info.value, "552008444")
    with pytest.raises(InvalidIdentifier, match="length"):
        validate_siren("55200844")
    with pytest.raises(InvalidIdentifier, match="format"):
        validate_siren("55200844A")


def test_siret():
    assert validate_siret("732 829 320 00074") == "73282932000074"
    with pytest.raises(InvalidIdentifier, match="check key") as info:
        validate_siret("73282932000075")
    assert_value_hidden(info.value, "73282932000075")
    with pytest.raises(InvalidIdentifier, match="length"):
        validate_siret("7328293200007")


def _la_poste(valid: bool) -> str:
    """A La Poste establishment SIRET: digit sum a multiple of 5 (valid) or not, and never Luhn-valid."""
    for nic in range(1, 99999):
        siret = f"356000000{nic:05d}"
        if (sum(map(int, siret)) % 5 == 0) == valid and not luhn.is_valid(siret):
            return siret
    raise AssertionError("unreachable")


def test_la_poste_sirets_follow_their_own_rule():
    good, bad = _la_poste(valid=True), _la_poste(valid=False)
    assert validate_siret(good) == good  # Luhn fails, but La Poste's digit-sum rule holds
    with pytest.raises(InvalidIdentifier, match="check key"):
        validate_siret(bad)
    assert validate_siret("35600000000048")  # La Poste's head office (Luhn)


# ---------------------------------------------------------------------------------------------- FINESS


@pytest.mark.parametrize("first_eight", ["75000001", "13078312", "97100052", "2A000001", "2B000123"])
def test_finess_with_its_check_digit_is_valid(first_eight):
    finess = first_eight + finess_check_digit(first_eight)
    assert validate_finess(finess) == finess
    assert validate_finess(finess.lower()) == finess
    wrong = first_eight + str((int(finess[-1]) + 1) % 10)
    with pytest.raises(InvalidIdentifier, match="check key") as info:
        validate_finess(wrong)
    assert_value_hidden(info.value, wrong)


def test_finess_check_digit_is_luhn_on_the_digits():
    assert finess_check_digit("75000001") == luhn.calc_check_digit("75000001")
    assert finess_check_digit("2A000001") == luhn.calc_check_digit("20000001")


@pytest.mark.parametrize(
    ("value", "reason"),
    [("7500000", "length"), ("7500000123", "length"), ("7500A0012", "format"), ("2C0000011", "format")],
)
def test_finess_shape(value, reason):
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_finess(value)


# ---------------------------------------------------------------------------------------------- IBAN / BIC

IBAN_FR = "FR7630006000011234567890189"
IBAN_DE = "DE89370400440532013000"


def test_iban_is_normalised():
    assert validate_iban("FR76 3000 6000 0112 3456 7890 189") == IBAN_FR
    assert validate_iban(IBAN_DE) == IBAN_DE


@pytest.mark.parametrize(
    "value",
    [
        "FR7630006000011234567890188",
        "FR76300060000112345678901",
        "XX7630006000011234567890189",
        "",
        "FR76 3000 6000 0112 3456 7890 18A",
    ],
)
def test_invalid_iban_without_the_value_in_the_message(value):
    with pytest.raises(InvalidIdentifier, match="IBAN") as info:
        validate_iban(value)
    assert_value_hidden(info.value, value)


def test_bic():
    assert validate_bic("BNPAFRPP") == "BNPAFRPP"
    assert validate_bic("BNPAFRPPXXX", IBAN_FR) == "BNPAFRPPXXX"
    assert validate_bic("DEUTDEFF", IBAN_DE) == "DEUTDEFF"
    with pytest.raises(InvalidIdentifier, match="country"):
        validate_bic("DEUTDEFF", IBAN_FR)
    with pytest.raises(InvalidIdentifier, match="BIC"):
        validate_bic("BNPA")
    with pytest.raises(InvalidIdentifier, match="BIC"):
        validate_bic("BNPAZZPP")  # no such country


# ---------------------------------------------------------------------------------------------- AMC number


def test_amc_number():
    assert validate_amc_number("046709591") == "046709591"
    for bad in ("04670959", "0467095910", "04670959A", "", " 46709591", "\u0660\u0664\u0666709591"):
        with pytest.raises(InvalidIdentifier):
            validate_amc_number(bad)


# ---------------------------------------------------------------------------------------------- lunar dates


@pytest.mark.parametrize(
    ("text", "expected", "lunar"),
    [
        ("1975-00-00", LunarDate(1975, None, None), True),
        ("1975-04-00", LunarDate(1975, 4, None), True),
        ("1975-04-13", LunarDate(1975, 4, 13), False),
        ("2000-02-29", LunarDate(2000, 2, 29), False),
        ("1880-01-01", LunarDate(1880, 1, 1), False),
    ],
)
def test_lunar_dates_are_parsed(text, expected, lunar):
    parsed = LunarDate.parse(text)
    assert parsed == expected
    assert parsed.is_lunar is lunar
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "1975-00-04",  # day without month
        "1975-13-01",
        "1975-02-30",
        "1900-02-29",  # not a leap year
        "1975-04-31",
        "1975-04-32",
        "1879-12-31",  # before 1880
        "75-04-01",
        "1975/04/01",
        "1975-4-1",
        "",
        "1975-04-01 ",
        "\u0661\u0669\u0667\u0665-04-01",  # non-ASCII digits
    ],
)
def test_impossible_or_malformed_dates_are_rejected(text):
    with pytest.raises(ValueError):  # noqa: PT011 - the reason is checked by the import tests
        LunarDate.parse(text)
