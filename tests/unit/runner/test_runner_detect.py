"""Choosing a sandbox: the strongest that works, or a clear error for the one asked for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bitwright.errors import OperationalError
from bitwright.model import SandboxKind
from bitwright.runner import BubblewrapSandbox, NoSandbox, detect_sandbox
from bitwright.runner._bubblewrap import probe_bubblewrap
from bitwright.runner._weak import probe_unshare


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A PATH without bwrap or unshare, with the probes' memory cleared around the test."""
    monkeypatch.setenv("PATH", "/nonexistent")
    probe_bubblewrap.cache_clear()
    probe_unshare.cache_clear()
    yield
    probe_bubblewrap.cache_clear()
    probe_unshare.cache_clear()


def test_bubblewrap_is_preferred_when_it_works(bwrap: BubblewrapSandbox) -> None:
    assert detect_sandbox().kind is SandboxKind.BUBBLEWRAP
    assert detect_sandbox(SandboxKind.BUBBLEWRAP).kind is SandboxKind.BUBBLEWRAP


@pytest.mark.usefixtures("no_tools")
def test_without_tools_the_run_is_unsealed_and_says_so() -> None:
    sandbox = detect_sandbox()
    assert isinstance(sandbox, NoSandbox)
    report = sandbox.report(strict=True)
    assert not (report.network_cut or report.repo_read_only or report.undeclared_hidden)


@pytest.mark.usefixtures("no_tools")
def test_asking_for_a_missing_bubblewrap_says_how_to_get_it() -> None:
    with pytest.raises(OperationalError, match="bubblewrap") as err:
        detect_sandbox(SandboxKind.BUBBLEWRAP)
    assert "apt-get install bubblewrap" in err.value.hint
