"""PEC tests through the API use the incidents' population (two insurers of synthetic people)."""

from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
