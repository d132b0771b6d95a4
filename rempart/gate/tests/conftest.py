from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
