"""pytest fixtures for the stand-in NVML. Import them into a test module::

    from nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401

``fake_nvml`` is a :class:`FakeNvml` already active in this process (pynvml talks to the
stub), configured with one GPU on the real clock; call ``fake_nvml.configure(count=8)``
etc. ``fake_nvml.subprocess_env()`` gives the environment for a child process.
"""

from __future__ import annotations

import pytest

from .build import FakeNvml, StubUnavailable, build_stub


@pytest.fixture(scope="session")
def nvml_stub_lib(tmp_path_factory):
    """Path of the built stub library (skips when there is no C compiler)."""
    try:
        return build_stub(tmp_path_factory.mktemp("nvml-stub"))
    except StubUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture
def fake_nvml(nvml_stub_lib, tmp_path):
    fake = FakeNvml(nvml_stub_lib, tmp_path / "fake_nvml.conf")
    fake.configure(count=1)
    with fake.activated():
        yield fake
