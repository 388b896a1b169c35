import pytest

import mmcore
from mmcore.check import check_invariants


@pytest.fixture
def machine():
    def make(**kw):
        kw.setdefault("memory", "256MiB")
        return mmcore.Machine(mmcore.Config(**kw))
    return make


@pytest.fixture
def checked():
    """Yields the invariant checker, to be called after every operation."""
    return check_invariants
