"""rempart.lib.crypto: AES-GCM field encryption with key rotation, and keyed blind indexes."""

from __future__ import annotations

import base64
import os

import pytest

from rempart.lib.crypto import BLIND_INDEX_SIZE, DecryptionError, FieldCipher, Keyring, field_cipher

NIR = "185077512345659"
IBAN = "FR7630006000011234567890189"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


K1, K2, K3 = (os.urandom(32) for _ in range(3))
BIK = b64(os.urandom(32))


def cipher(data_keys: str, active: str | None = None, bik: str = BIK) -> FieldCipher:
    return FieldCipher(Keyring.parse(data_keys, bik, active))


def assert_hidden(exc: BaseException, *values: str) -> None:
    for value in values:
        assert value not in str(exc)
        assert value not in repr(exc)
        assert value.encode() not in repr(exc).encode()


def test_round_trip_and_randomised_ciphertexts():
    c = cipher(f"1:{b64(K1)}")
    first, second = c.encrypt("nir", NIR), c.encrypt("nir", NIR)
    assert first != second  # a fresh nonce each time: equal values do not give equal ciphertexts
    assert NIR.encode() not in first
    assert c.decrypt("nir", first) == NIR
    assert c.decrypt("nir", memoryview(second)) == NIR  # as read back from the database
    assert c.decrypt("iban", c.encrypt("iban", IBAN)) == IBAN
    assert c.decrypt("nir", c.encrypt("nir", "")) == ""
    assert c.decrypt("nir", c.encrypt("nir", "Élodie ß 漢字")) == "Élodie ß 漢字"


def test_old_ciphertexts_still_open_after_rotation():
    old = cipher(f"1:{b64(K1)}")
    sealed = old.encrypt("nir", NIR)
    assert old.key_id_of(sealed) == 1

    rotated = cipher(f"1:{b64(K1)},2:{b64(K2)}")  # key 2 is active: the highest id
    assert rotated.keyring.active_id == 2
    assert rotated.decrypt("nir", sealed) == NIR
    fresh = rotated.encrypt("nir", NIR)
    assert rotated.key_id_of(fresh) == 2
    assert rotated.decrypt("nir", fresh) == NIR
    with pytest.raises(DecryptionError):  # the old keyring cannot read what the new key sealed
        old.decrypt("nir", fresh)

    pinned = cipher(f"1:{b64(K1)},2:{b64(K2)}", active="1")
    assert pinned.key_id_of(pinned.encrypt("nir", NIR)) == 1

    retired = cipher(f"2:{b64(K2)}")  # key 1 removed: its ciphertexts no longer open
    with pytest.raises(DecryptionError) as info:
        retired.decrypt("nir", sealed)
    assert_hidden(info.value, NIR)


def test_same_key_id_with_another_key_does_not_open():
    sealed = cipher(f"1:{b64(K1)}").encrypt("nir", NIR)
    with pytest.raises(DecryptionError):
        cipher(f"1:{b64(K3)}").decrypt("nir", sealed)


@pytest.mark.parametrize("position", [0, 1, 2, 13, 14, 20, -1])
def test_tampered_ciphertexts_are_refused_without_the_value(position):
    c = cipher(f"1:{b64(K1)},2:{b64(K2)}")
    sealed = bytearray(c.encrypt("nir", NIR))
    sealed[position] ^= 0x01
    with pytest.raises(DecryptionError) as info:
        c.decrypt("nir", bytes(sealed))
    assert_hidden(info.value, NIR)
    assert info.value.__cause__ is None or NIR not in str(info.value.__cause__)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01\x01" + bytes(20), b"\x02\x01" + bytes(40)])
def test_truncated_or_foreign_blobs_are_refused(blob):
    with pytest.raises(DecryptionError):
        cipher(f"1:{b64(K1)}").decrypt("nir", blob)


def test_field_name_is_bound_to_the_ciphertext():
    c = cipher(f"1:{b64(K1)}")
    sealed = c.encrypt("nir", NIR)
    with pytest.raises(DecryptionError) as info:
        c.decrypt("iban", sealed)  # a NIR ciphertext replayed into an IBAN column
    assert_hidden(info.value, NIR)
    with pytest.raises(DecryptionError):
        c.decrypt("nir", c.encrypt("iban", NIR))


def test_blind_index_is_deterministic_keyed_and_per_field():
    c = cipher(f"1:{b64(K1)}")
    index = c.blind_index("nir", NIR)
    assert len(index) == BLIND_INDEX_SIZE
    assert c.blind_index("nir", NIR) == index
    assert cipher(f"2:{b64(K2)}").blind_index("nir", NIR) == index  # independent of the data keys
    assert c.blind_index("iban", NIR) != index
    assert c.blind_index("nir", NIR[:-2] + "00") != index
    assert cipher(f"1:{b64(K1)}", bik=b64(os.urandom(32))).blind_index("nir", NIR) != index
    assert NIR.encode() not in index
    # the field and the value are separated: ("ni", "r" + value) is not ("nir", value)
    assert c.blind_index("ni", "r" + NIR) != index


def test_fingerprint_is_deterministic_and_separates_parts():
    c = cipher(f"1:{b64(K1)}")
    assert c.fingerprint("a", "b") == c.fingerprint("a", "b")
    assert c.fingerprint("a", "b") != c.fingerprint("ab", "")
    assert c.fingerprint("a", "b") != c.fingerprint("b", "a")


@pytest.mark.parametrize(
    ("data_keys", "bik", "active"),
    [
        (f"1:{b64(os.urandom(16))}", BIK, None),  # 16-byte key
        (f"0:{b64(K1)}", BIK, None),  # id 0
        (f"256:{b64(K1)}", BIK, None),  # id above 255
        (f"a:{b64(K1)}", BIK, None),  # id not a number
        (f"{b64(K1)}", BIK, None),  # no id
        ("", BIK, None),
        (f"1:{b64(K1)}", BIK, "2"),  # active key not listed
        (f"1:{b64(K1)}", b64(os.urandom(16)), None),  # short blind index key
        (f"1:{b64(K1)}", "", None),
        ("1:not base64!", BIK, None),
    ],
)
def test_keyring_rejects_bad_keys(data_keys, bik, active):
    with pytest.raises(ValueError) as info:  # noqa: PT011
        Keyring.parse(data_keys, bik, active)
    # the error must not echo key material
    for part in data_keys.split(","):
        secret = part.partition(":")[2]
        if len(secret) > 8:
            assert secret not in str(info.value)
    if len(bik) > 8:
        assert bik not in str(info.value)


def test_keyring_parse_accepts_spaces_and_picks_highest_id():
    ring = Keyring.parse(f" 3:{b64(K3)} , 1:{b64(K1)}", BIK)
    assert ring.active_id == 3
    assert set(ring.keys) == {1, 3}


def test_configured_cipher_round_trips():
    c = field_cipher()
    assert c.decrypt("nir", c.encrypt("nir", NIR)) == NIR
    assert field_cipher() is c
