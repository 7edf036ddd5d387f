from tests.pipelines.conftest import workers  # noqa: F401 (fixture)
