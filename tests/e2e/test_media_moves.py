"""A carrier that moves its early media (a second 183 or an UPDATE with a new SDP, as when
its ringback generator hands over to an announcement server; or a forking proxy whose
second branch's 183 brings the media): the dialer keeps hearing it
and the analysis keeps analysing it (issue 14, item 5). Before the fix both gave the
ringback's 480 and the dialer heard dead air from the move on."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from agent.sip.harness import place_call

SILENT_ULAW = {0xFF, 0x7F, 0xFE, 0x7E}


def _audible(payload: bytes) -> bool:
    """An RTP packet whose µ-law payload is not (near) silence."""
    body = payload[12:]
    return sum(b not in SILENT_ULAW for b in body) > len(body) // 2


@pytest.mark.parametrize("carrier", ["carrier_media_moves.xml", "carrier_update_moves.xml",
                                     "carrier_forked.xml"],
                         ids=["second-183", "update", "fork"])
def test_media_that_moves_is_followed_by_bridge_and_analysis(rewriting_agent, audio,
                                                             tmp_path, carrier):
    (tmp_path / "second.ul").write_bytes(audio["sit_vc"].read_bytes())
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtp.settimeout(0.2)
    packets: list[tuple[float, bytes]] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                packets.append((time.monotonic(), rtp.recv(2048)))
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        result = place_call(rewriting_agent, workdir=tmp_path, carrier=carrier,
                            audio=audio["ringback"], final_code=480, early_ms=3000,
                            dialer="dialer_listen.xml",
                            dialer_args=("-key", "dialer_rtp", str(rtp.getsockname()[1])))
    finally:
        done.set()
        listener.join()
        rtp.close()
    assert result.call_id and result.record
    # The SIT and announcement after the move decide the call: 404, not the ringback's
    # 480 the first stream gave.
    assert result.code == 404, (result.code, result.record.get("inferred"))
    assert result.final.header("x-carrier-final-code") == "480"
    labels = [s["label"] for s in result.record["seconds"]]
    assert labels[-2:] != ["silence", "silence"], labels
    # The dialer hears the second stream: audio in the last 2 s before the final, not
    # dead air.
    assert packets, "no RTP reached the dialer"
    end = packets[-1][0]
    late = [p for t, p in packets if end - 2.0 <= t <= end - 0.2]
    assert late, "no RTP in the last 2 s"
    audible = sum(_audible(p) for p in late)
    assert audible >= len(late) // 4, f"{audible} of {len(late)} late packets audible"
