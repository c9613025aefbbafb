"""Per-second source truth of a corpus file.

A file's class is the class of its source, but a ringback file that starts inside a
cadence gap holds no tone at all until its first burst: a listener, or any classifier
that only hears the past, can only call those seconds silence. The corpus knows where
the first burst is (country, variant and starting phase are in the manifest), so the
whole seconds before it can be scored as what they sound like.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.corpus.manifest import CorpusItem


def first_burst_s(item: CorpusItem, *, plans: dict[str, Any] | None = None) -> float | None:
    """Seconds from the start of a ringback file to its first tone sample.

    Parameters
    ----------
    item : CorpusItem
        A manifest entry; only ringback files built from the tone-plan table have a burst.
    plans : dict, optional
        Tone plans by country (default: :func:`agent.tones.plan.load_tone_plans`).

    Returns
    -------
    float or None
        0.0 when the file starts inside a burst; None for other files, or when the file
        holds no tone at all.
    """
    mix = item.transforms.get("mix", {})
    if item.label != "ringback" or "country" not in mix:
        return None
    from agent.tones.plan import load_tone_plans
    from agent.tones.synth import render

    spec = (plans or load_tone_plans())[mix["country"]].ringback[int(mix["variant"])]
    clean = render(spec, duration_s=item.duration_s, sr=SAMPLE_RATE,
                   phase_s=float(mix["phase_s"]))
    on = np.flatnonzero(clean)
    return float(on[0]) / SAMPLE_RATE if on.size else None


def second_labels(item: CorpusItem, n_seconds: int, *,
                  plans: dict[str, Any] | None = None) -> list[str]:
    """The true class of each whole second of a corpus file.

    Every second is ``item.label``, except that the whole seconds of a ringback file
    before its first burst are ``silence``.
    """
    labels = [item.label] * n_seconds
    start = first_burst_s(item, plans=plans)
    if start is not None:
        for t in range(min(n_seconds, int(start))):
            labels[t] = "silence"
    return labels
