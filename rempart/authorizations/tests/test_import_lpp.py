"""`rempart import-lpp`: a checked file is installed and wins; a bad one is refused whole, naming its problems."""

import pytest
from django.core.management import CommandError, call_command

from rempart.authorizations import catalogue


@pytest.fixture(autouse=True)
def own_var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    catalogue.default_catalogue.cache_clear()
    yield
    catalogue.default_catalogue.cache_clear()


def test_a_valid_catalogue_is_installed_and_used(tmp_path, capsys):
    shipped = catalogue.DEFAULT_PATH.read_text(encoding="utf-8")
    updated = tmp_path / "new.csv"
    updated.write_text(
        shipped.replace("Monture classe A (100 % santé), 16 ans et plus", "Monture A adulte"),
        encoding="utf-8",
    )
    call_command("import_lpp", str(updated))
    assert "installed" in capsys.readouterr().out
    catalogue.default_catalogue.cache_clear()
    assert (
        catalogue.default_catalogue().data_version
        != catalogue.load_catalogue(catalogue.DEFAULT_PATH).data_version
    )


def test_a_bad_catalogue_is_refused_with_its_lines(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    lines = catalogue.DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(";OPTI;", ";DENT;")
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match="nothing installed"):
        call_command("import_lpp", str(bad))
    assert "line 4" in capsys.readouterr().err
    assert not catalogue.installed_path().exists()
