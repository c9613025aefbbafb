"""The announcement library: add, remove, match and learn announcements by fingerprint.

A :class:`Library` pairs a persistent :class:`~agent.store.library.LibraryStore` with two
in-memory :class:`~agent.fingerprint.index.HashIndex` objects (known announcements, which
carry a SIP code, and unknown ones, heard on calls but matched to nothing). Each index is
rebuilt whenever the store's generation counter of its kind moves, so an
``early-media-agent library add`` in another process reaches a running agent on its next
lookup.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent import paths
from agent.audio import SAMPLE_RATE, g711
from agent.errors import UserError
from agent.fingerprint.config import FingerprintConfig
from agent.fingerprint.index import Candidate, HashIndex
from agent.fingerprint.landmarks import DEFAULT_PARAMS, LandmarkParams, Landmarks, fingerprint
from agent.labels import LibraryMatch
from agent.store.library import (
    KINDS,
    DuplicateAudioError,
    Entry,
    LibraryStore,
    NewEntry,
    open_store,
)

MIN_ENTRY_SECONDS = 1.0
MIN_ENTRY_HASHES = 20
# Announcements loop: references are fingerprinted with their first seconds appended, so
# a query spanning the end of one loop and the start of the next still lines up at one
# offset.
LOOP_SECONDS = 3.0
# Calibration of the score (bench/fingerprint.py; codecs + 15-dB noise, 10,000 entries):
# the best candidate's evidence alone does not separate — chance alignments in a large
# library reach evidence 20–30 — but its margin over the runner-up does. Looking hashes up
# with their time gap ±1 frame (index.py) raises chance evidence too: announcements not in
# the library in the same synthetic voice as an entry then lead by up to 11, most by 6–9.
# A margin of 8 at half coverage scores 0.5 (7 let 0.58% of 2,400 through, 8 0.46%).
SCORE_MID_MARGIN = 8.0
SCORE_WIDTH = 1.5
SCORE_COVERAGE_WEIGHT = 5.0


def validate_sip_code(code: int) -> int:
    """A SIP failure code: three digits, 400–699."""
    if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 699:
        raise UserError(f"SIP code {code!r}: expected a failure code 400–699")
    return code


def validate_q850(cause: int | None) -> int | None:
    """A Q.850 cause value (1–127) or None."""
    if cause is not None and not 1 <= cause <= 127:
        raise UserError(f"Q.850 cause {cause}: expected 1–127")
    return cause


def audio_sha256(samples: np.ndarray) -> str:
    """Hash of the audio as 16-bit PCM: the same sound read from any file format agrees."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    return hashlib.sha256(pcm.tobytes()).hexdigest()


def score(best: Candidate, runner_up: Candidate | None = None) -> float:
    """Calibrated score in (0, 1) of the best candidate of a query.

    A logistic of the best candidate's lead in evidence over the runner-up (how far it
    stands out from what chance gives every entry of this library) and of its coverage of
    the query (a phrase two announcements share covers only part of it). Evidence counts
    time-consistent hashes with a cap per quarter-second.
    """
    margin = best.evidence - (runner_up.evidence if runner_up is not None else 0)
    z = (margin - SCORE_MID_MARGIN) / SCORE_WIDTH
    z += SCORE_COVERAGE_WEIGHT * (best.coverage - 0.5)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class Library:
    """Announcements with their SIP codes, matched by landmark fingerprints.

    Use :func:`open_library` to get one. Thread-safe: the live agent may match from
    several call threads while another process adds entries.
    """

    def __init__(self, store: LibraryStore, *, config: FingerprintConfig | None = None,
                 params: LandmarkParams = DEFAULT_PARAMS):
        self.store = store
        self.config = config or FingerprintConfig()
        self.params = params
        self._build_locks = {kind: threading.Lock() for kind in KINDS}
        self._indexes: dict[str, tuple[int, HashIndex]] = {}

    @property
    def location(self) -> str:
        return self.store.location

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index(self, kind: str) -> HashIndex:
        gen = self.store.generation(kind)
        cached = self._indexes.get(kind)
        if cached is not None and cached[0] == gen:
            return cached[1]
        lock = self._build_locks[kind]
        # While one thread rebuilds (seconds for a large library), the others keep answering
        # from the previous index instead of waiting.
        if not lock.acquire(blocking=cached is None):
            assert cached is not None
            return cached[1]
        try:
            cached = self._indexes.get(kind)
            if cached is None or cached[0] != gen:
                cached = (gen, self._build(kind=kind))
                self._indexes[kind] = cached
            return cached[1]
        finally:
            lock.release()

    def _build(self, *, kind: str) -> HashIndex:
        stale = []
        items = []
        for entry_id, version, blob in self.store.fingerprints(kind=kind):
            if version == self.params.version:
                items.append((entry_id, Landmarks.from_bytes(blob)))
                continue
            # Hashed with other parameters: re-fingerprint from the kept audio if there is any.
            audio = self.store.audio(entry_id)
            if audio is None:
                stale.append(entry_id)
                continue
            lm = self.fingerprint_looped(g711.ulaw_decode(audio))
            self.store.set_fingerprints(entry_id, version=self.params.version,
                                        data=lm.to_bytes())
            items.append((entry_id, lm))
        if stale:
            raise UserError(
                f"{self.location}: entries {stale[:5]} were fingerprinted with other "
                "parameters and kept no audio; remove and add them again"
            )
        return HashIndex(items)

    def fingerprint(self, samples: np.ndarray) -> Landmarks:
        """Landmarks of ``samples`` with this library's parameters."""
        return fingerprint(samples, self.params)

    def fingerprint_looped(self, samples: np.ndarray,
                           variants: Sequence[np.ndarray] = ()) -> Landmarks:
        """Landmarks of a reference played once and then ``LOOP_SECONDS`` of it again.

        ``variants`` are time-aligned renderings of the same audio (e.g. through a
        telephone codec); their landmarks are merged in, without repeats.
        """
        n_head = int(LOOP_SECONDS * SAMPLE_RATE)
        parts = [self.fingerprint(np.concatenate([x, x[:n_head]])) for x in (samples, *variants)]
        if len(parts) == 1:
            return parts[0]
        pairs = np.unique(
            np.stack([np.concatenate([p.hashes for p in parts]).astype(np.int64),
                      np.concatenate([p.times for p in parts]).astype(np.int64)], axis=1),
            axis=0,
        )
        order = np.argsort(pairs[:, 1], kind="stable")
        return Landmarks(hashes=pairs[order, 0].astype(np.uint32),
                         times=pairs[order, 1].astype(np.int32))

    def entries(self, *, kind: str | None = "known") -> list[Entry]:
        """The library's entries of one kind (``known``, ``unknown``) or all (None)."""
        return self.store.list(kind=kind)

    def _check_new_audio(self, samples: np.ndarray, name: str,
                         variants: Sequence[np.ndarray] = ()) -> Landmarks:
        seconds = samples.size / SAMPLE_RATE
        if seconds < MIN_ENTRY_SECONDS:
            raise UserError(
                f"{name}: too short ({seconds:.2f} s); an announcement needs at least "
                f"{MIN_ENTRY_SECONDS:.1f} s"
            )
        lm = self.fingerprint_looped(samples, variants)
        if len(lm) < MIN_ENTRY_HASHES:
            raise UserError(f"{name}: no usable sound to fingerprint (silent or a pure tone?)")
        return lm

    def add(self, samples: np.ndarray, *, sip_code: int, reason: str,
            q850_cause: int | None = None, carrier: str | None = None, lang: str | None = None,
            name: str | None = None, keep_audio: bool = True,
            check_similar: bool = True,
            variants: Sequence[np.ndarray] | None = None) -> int:
        """Add a known announcement and return its entry id.

        Parameters
        ----------
        samples : numpy.ndarray
            8 kHz mono float audio of the announcement (ideally one full loop).
        sip_code, reason, q850_cause, carrier, lang, name
            What the announcement means and where it comes from.
        keep_audio : bool
            Store the audio (µ-law) too, so the entry can be re-fingerprinted later.
        check_similar : bool
            Refuse audio that already matches an entry (a re-recording of it).
        variants : sequence of numpy.ndarray, optional
            The same audio through telephone codecs (time-aligned); their hashes are
            indexed too. Default: renderings through ``config.index_codecs``.

        Raises
        ------
        UserError
            Bad SIP code or Q.850 cause, too short or silent audio, or the audio (or a copy
            of it) already present, naming the existing entry.
        """
        validate_sip_code(sip_code)
        validate_q850(q850_cause)
        label = name or "audio"
        if not reason.strip():
            raise UserError(f"{label}: a reason text is required")
        if variants is None:
            variants = self._codec_renderings(samples)
        lm = self._check_new_audio(samples, label, variants)
        sha = audio_sha256(samples)
        if check_similar:
            found = self.match(samples)
            if found is not None:
                raise DuplicateAudioError(
                    f"{label}: already in the library as entry {found.entry_id} "
                    f"(matches with score {found.score:.2f})",
                    found.entry_id,
                )
        try:
            return self.store.add(NewEntry(
                kind="known", duration_s=samples.size / SAMPLE_RATE, audio_sha256=sha,
                fingerprints=lm.to_bytes(), fingerprint_version=self.params.version,
                sip_code=sip_code, reason=reason, q850_cause=q850_cause, carrier=carrier,
                lang=lang, name=name, audio=g711.ulaw_encode(samples) if keep_audio else None,
            ))
        except DuplicateAudioError as exc:
            raise DuplicateAudioError(
                f"{label}: the same audio is already in the library as entry "
                f"{exc.existing_id}",
                exc.existing_id,
            ) from None

    def _codec_renderings(self, samples: np.ndarray) -> list[np.ndarray]:
        if not self.config.index_codecs:
            return []
        from agent.corpus.channel import apply_codec

        return [apply_codec(samples, codec) for codec in self.config.index_codecs]

    def remove(self, entry_id: int) -> None:
        """Delete an entry (known or unknown)."""
        self.store.remove(entry_id)

    def best(self, lm: Landmarks, *, kind: str = "known") -> tuple[Candidate, float] | None:
        """The best candidate of ``lm`` among entries of ``kind`` and its score, if any."""
        cands = self._index(kind).query(lm, top=2)
        if not cands:
            return None
        return cands[0], score(cands[0], cands[1] if len(cands) > 1 else None)

    def _as_match(self, cand: Candidate, s: float, detected_s: float) -> LibraryMatch:
        entry = self.store.get(cand.entry_id)
        return LibraryMatch(
            entry_id=entry.id, sip_code=int(entry.sip_code or 0), reason=entry.reason or "",
            score=s, detected_s=detected_s, q850_cause=entry.q850_cause,
            carrier=entry.carrier, lang=entry.lang,
        )

    def match_landmarks(self, lm: Landmarks, *, detected_s: float,
                        min_score: float | None = None) -> LibraryMatch | None:
        """Like :meth:`match` for already computed landmarks."""
        threshold = self.config.threshold if min_score is None else min_score
        found = self.best(lm)
        if found is None or found[1] < threshold:
            return None
        return self._as_match(found[0], found[1], detected_s)

    def match(self, samples: np.ndarray, *, min_score: float | None = None) -> LibraryMatch | None:
        """Identify an announcement from a piece of it (2–3 s is enough).

        Parameters
        ----------
        samples : numpy.ndarray
            8 kHz mono float audio, starting anywhere in the announcement.
        min_score : float, optional
            Overrides ``config.threshold``.

        Returns
        -------
        LibraryMatch or None
            The entry, its SIP code and the calibrated score; ``detected_s`` is the length
            of ``samples``. None if no entry scores at least the threshold.
        """
        return self.match_landmarks(
            self.fingerprint(samples), detected_s=samples.size / SAMPLE_RATE,
            min_score=min_score,
        )

    def record_unknown(self, samples: np.ndarray, *, call_id: str | None = None,
                       carrier: str | None = None) -> int:
        """Keep an announcement that matched nothing, grouping repeats of the same one.

        If it matches an unknown entry already kept, that entry's count goes up; otherwise
        a new unknown entry with its audio (at most ``config.unknown_max_seconds``) is kept.
        Old and surplus unknown entries are dropped per the retention settings.

        Returns
        -------
        int
            The id of the unknown entry this announcement now belongs to.

        Raises
        ------
        UserError
            The audio is shorter than a second or has nothing to fingerprint.
        """
        cfg = self.config
        now = time.time()
        clip = samples[: int(cfg.unknown_max_seconds * SAMPLE_RATE)]
        self._check_new_audio(clip, call_id or "unknown announcement")
        found = self.best(self.fingerprint(clip), kind="unknown")
        if found is not None and found[1] >= cfg.threshold:
            entry_id = found[0].entry_id
            self.store.touch(entry_id, now=now, call_id=call_id)
        else:
            try:
                entry_id = self.store.add(NewEntry(
                    kind="unknown", duration_s=clip.size / SAMPLE_RATE,
                    audio_sha256=audio_sha256(clip),
                    fingerprints=self.fingerprint_looped(clip).to_bytes(),
                    fingerprint_version=self.params.version, carrier=carrier,
                    call_id=call_id, audio=g711.ulaw_encode(clip),
                ))
            except DuplicateAudioError as exc:
                entry_id = exc.existing_id
                self.store.touch(entry_id, now=now, call_id=call_id)
        self.store.prune_unknown(
            max_entries=cfg.unknown_max_entries,
            max_age_s=cfg.unknown_max_age_days * 86400.0, now=now,
        )
        return entry_id

    def label_unknown(self, entry_id: int, *, sip_code: int, reason: str,
                      q850_cause: int | None = None, carrier: str | None = None) -> None:
        """Give an unknown announcement its SIP code: it becomes a known entry.

        ``carrier`` is the carrier that plays it (informational: matching does not depend
        on it); None keeps the carrier it was first heard on, an empty string clears it.
        """
        entry = self._entry_of_kind(entry_id, "unknown")
        self._set_meaning(entry, sip_code=sip_code, reason=reason, q850_cause=q850_cause,
                          carrier=carrier)

    def edit(self, entry_id: int, *, sip_code: int, reason: str,
             q850_cause: int | None = None, carrier: str | None = None) -> None:
        """Change what a known announcement means (code, reason, cause, carrier as in
        :meth:`label_unknown`); later calls that play it get the new code."""
        entry = self._entry_of_kind(entry_id, "known")
        self._set_meaning(entry, sip_code=sip_code, reason=reason, q850_cause=q850_cause,
                          carrier=carrier)

    def unlabel(self, entry_id: int) -> None:
        """Undo a label: a known entry learnt from a call goes back to the unknown queue.

        Entries added from files (``library add``, ``import``) are refused: as unknown
        ones they would fall to the unknown retention; remove them instead.
        """
        entry = self._entry_of_kind(entry_id, "known")
        if entry.call_id is None:
            raise UserError(f"entry {entry_id} was added from a file, not heard on a call; "
                            "remove it instead")
        self.store.unlabel(entry_id, now=time.time())

    def _entry_of_kind(self, entry_id: int, kind: str) -> Entry:
        entry = self.store.get(entry_id)
        if entry.kind != kind:
            raise UserError(f"entry {entry_id} is already a known announcement"
                            if entry.kind == "known" else
                            f"entry {entry_id} is an unknown announcement; label it first")
        return entry

    def _set_meaning(self, entry: Entry, *, sip_code: int, reason: str,
                     q850_cause: int | None, carrier: str | None) -> None:
        validate_sip_code(sip_code)
        validate_q850(q850_cause)
        if not reason.strip():
            raise UserError(f"entry {entry.id}: a reason text is required")
        scope = entry.carrier if carrier is None else (carrier.strip() or None)
        self.store.label(entry.id, sip_code=sip_code, reason=reason.strip(),
                         q850_cause=q850_cause, carrier=scope)

    def unknown_audio(self, entry_id: int) -> np.ndarray | None:
        """The audio kept with an entry, as float samples."""
        data = self.store.audio(entry_id)
        return None if data is None else g711.ulaw_decode(data)


def default_location() -> Path:
    """``agent.paths.data_dir() / "library.sqlite"``."""
    return paths.data_dir() / "library.sqlite"


def open_library(path_or_url: str | Path | None = None, *,
                 config: FingerprintConfig | None = None, check: bool = True) -> Library:
    """Open (creating if needed) the announcement library.

    Parameters
    ----------
    path_or_url : str or Path, optional
        SQLite file or ``postgresql://`` URL; default ``config.library`` or
        ``agent.paths.data_dir() / "library.sqlite"``.
    config : FingerprintConfig, optional
        Threshold and retention settings.
    check : bool
        Check the database's integrity on open.

    Raises
    ------
    UserError
        The file is damaged or not a library (it is left untouched).
    """
    cfg = config or FingerprintConfig()
    location = path_or_url or cfg.library or default_location()
    return Library(open_store(location, check=check), config=cfg)
