import os

import pytest

from tests.util import SHARED_DATA


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"real media not available: {SHARED_DATA} is absent (it sits beside the repo on dev machines)")
    return SHARED_DATA
