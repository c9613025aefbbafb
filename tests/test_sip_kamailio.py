"""Kamailio's dispatcher config as the agent renders it for a worker pool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.config import build
from agent.sip.config import SipConfig
from agent.sip.kamailio import MODULE_DIRS, dispatcher_list, render_config


def _pool(**kw: object) -> SipConfig:
    return build(SipConfig, {"workers": 3, "listen_port": 5070, "worker_base_port": 6100, **kw},
                 "sip")


def test_dispatcher_lists_every_worker_with_its_call_capacity():
    lines = dispatcher_list(_pool()).splitlines()
    assert lines == [f"1 sip:127.0.0.1:{6100 + i} 0 0 duid=w{i};maxload=2" for i in range(3)]


def test_rendered_config_fills_every_placeholder(tmp_path):
    text = render_config(_pool(), runtime_dir=tmp_path, mpath="/mods")
    assert "listen=udp:127.0.0.1:5070" in text
    assert f'"list_file", "{tmp_path / "dispatcher.list"}"' in text
    assert 'mpath="/mods"' in text
    assert '"fr_inv_timer", 65000)' in text  # carrier_timeout_s (60) + 5 s
    assert "{{" not in text


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
def test_kamailio_accepts_the_rendered_config(tmp_path):
    mpath = next((d for d in MODULE_DIRS if Path(d, "dispatcher.so").exists()), None)
    if mpath is None:
        pytest.skip("no Kamailio module directory")
    cfg = _pool()
    (tmp_path / "dispatcher.list").write_text(dispatcher_list(cfg))
    path = tmp_path / "kamailio.cfg"
    path.write_text(render_config(cfg, runtime_dir=tmp_path, mpath=mpath))
    proc = subprocess.run(["kamailio", "-c", "-f", str(path)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr[-500:]
