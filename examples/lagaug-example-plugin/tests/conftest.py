"""Make the example plugin importable and give the contract test a manager that knows it.

Installed with ``pip install -e examples/lagaug-example-plugin``, the plugin is found through its
entry point and these tests need nothing; run from a lagaug checkout without installing it, this
conftest adds it by hand.
"""

import pytest
from jitter_support import example_plugins


@pytest.fixture
def plugins():
    return example_plugins()
