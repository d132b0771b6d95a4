import pytest
from rempart.registry import rights_format as fmt
from rempart.registry.tests import test_rights_fuzz as fz
from rempart.registry.tests.test_rights_fuzz import base  # noqa

def _old_small_int(column, text, low, high, default=None):
    if not text and default is not None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise fmt.RowError(column, "x")
    return int(text)

@pytest.mark.parametrize("n", range(3))
def test_power(monkeypatch, base, insurer, tmp_path, n):
    monkeypatch.setattr(fmt, "_small_int", _old_small_int)
    fz.test_fuzzed_rows(base=base, insurer=insurer, tmp_path=tmp_path)
