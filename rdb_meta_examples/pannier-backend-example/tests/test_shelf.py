"""The whole test of the shelf backend: pannier's conformance kit."""

import pytest
from pannier.testing.backend_suite import BackendConformance


class TestShelf(BackendConformance):
    @pytest.fixture
    def make_backend(self, tmp_path):
        return f"shelf://{tmp_path}"
