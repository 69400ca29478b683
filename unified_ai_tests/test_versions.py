"""The Dagster family must be installed at exactly the pinned versions."""

from importlib.metadata import version

import pytest

CORE = ["dagster", "dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared"]
INTEGRATIONS = ["dagster-k8s", "dagster-postgres", "dagster-slack"]


@pytest.mark.parametrize("package", CORE)
def test_core_packages_are_1_13_27(package):
    assert version(package) == "1.13.27"


@pytest.mark.parametrize("package", INTEGRATIONS)
def test_integrations_are_0_29_27(package):
    # An unpinned install resolves 0.11.x integrations from 2021 that import dagster.core.
    assert version(package) == "0.29.27"


def test_pandas_is_below_3():
    assert int(version("pandas").split(".")[0]) == 2
