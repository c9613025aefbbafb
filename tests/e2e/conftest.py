"""End-to-end fixtures: the real agent process, real pjsua2, real SIPp, on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.sip.early_media import early_media, train_fixture_model, write_ulaw
from agent.sip.harness import AgentProcess

KINDS = ("announcement", "ringback", "music", "silence", "busy", "sit_vc")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("sipp") is None:
        pytest.skip("sipp (Debian sip-tester) is not installed")
    pytest.importorskip("pjsua2")
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def model_path(e2e_root: Path) -> Path:
    """A small student trained for the tests on the same sources as their audio.

    The shipped model changes as it is retrained; the SIP path under test must not.
    """
    return train_fixture_model(e2e_root / "student.txt")


@pytest.fixture(scope="session")
def audio(e2e_root: Path) -> dict[str, Path]:
    """µ-law early media of each kind, 6 s (the carrier loops it)."""
    return {k: write_ulaw(e2e_root / f"{k}.ul", early_media(k, 6.0)) for k in KINDS}


#: What a deployment would return from its carriers' finals (tests/e2e/test_passthrough.py).
RETURN_HEADERS = {"return_headers": ["X-Carrier-Ref"]}


def _agent(root: Path, model: Path, name: str, **kw: object) -> AgentProcess:
    agent = AgentProcess(workdir=root / name, model=model, extra_sip=dict(RETURN_HEADERS),
                         **kw)  # type: ignore[arg-type]
    agent.start()
    return agent


@pytest.fixture(scope="session", params=[1, 3], ids=["1-worker", "3-workers-kamailio"])
def workers(request: pytest.FixtureRequest) -> int:
    """Every e2e test runs on one worker and on three behind Kamailio: the dialer must see
    the same thing either way."""
    return int(request.param)


@pytest.fixture(scope="session")
def rewriting_agent(e2e_root: Path, model_path: Path, workers: int):
    """An agent that replaces the carrier's failure code by the inferred one."""
    agent = _agent(e2e_root, model_path, f"rewrite-{workers}", rewrite=True, workers=workers)
    yield agent
    assert agent.stop() == 0


@pytest.fixture(scope="session")
def relaying_agent(e2e_root: Path, model_path: Path, workers: int):
    """An agent that relays the carrier's failure code untouched (the default)."""
    agent = _agent(e2e_root, model_path, f"relay-{workers}", rewrite=False, workers=workers)
    yield agent
    assert agent.stop() == 0
