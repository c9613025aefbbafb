"""Benchmark of the distilled classifier against its teacher and the source truth.

Run from the checkout (nice it: the machine is shared)::

    C=/work/cache/corpus-voices   # a corpus with many voices (manifest `voice` fields)
    nice -n 10 python bench/classifier.py --corpus $C          # everything, ~5 min
    nice -n 10 python bench/classifier.py --corpus $C --lovo-only \
        --strategies combined,source,teacher,combined+teacher-speech  # labels, same folds
    nice -n 10 python bench/classifier.py --corpus $C --lovo-only \
        --features logmel+periodicity+context,logmel+context,logmel+periodicity-level+context
    nice -n 10 python bench/classifier.py --corpus $C --lovo-only --speech-by engine
    nice -n 10 python bench/classifier.py --corpus $C --speed-only   # timings, ~1 min

First and foremost, leave one voice out (:mod:`agent.distill.folds`,
:mod:`agent.distill.lovo`): each speech voice family and each music source family is a
fold, ringback and silence are held out by corpus group; a student trained as ``train``
trains it on every file outside a fold predicts that fold's files, so pooled, every second
is predicted by a model that never heard its voice or source. Reported against the source
class: per-second macro-F1 (target ≥ 0.97), call accuracy (the streaming decision per
file, target ≥ 0.98), per-class precision/recall with announcement recall (target ≥ 0.97),
the teacher's on the same seconds beside the student's (target: the student's recall at
least as high in every class), per-fold rows, music with vocals and synthetic voices
apart. Teacher labels come from the teacher cache that ``train`` fills. ``--speech-by
engine`` holds out every voice of an engine at once (all Festival voices, learnt from the
recorded ones alone, and the reverse): a kind of voice never heard.

Second, the old split by file (the files of ``models/split.json``, which ``train`` held
out for its report, else :func:`~agent.distill.train.grouped_split`): a student trained on
the other files, scored the same way. Those files share their voices and sources with the
training files, so it measures memory more than generalisation. The shipped model is
trained on every file, so it is not the one scored here.

Third, speed, of the shipped model:

* per-second latency of one stream, features included (target median ≤ 0.2 ms), and its
  ratio to YAMNet classifying the same second in the same run (target ≥ 20×);
* the per-second cost by component (log-mel, periodicity, tree prediction compiled and
  through LightGBM's C API, the streaming rule), min / median / p90 over repetitions;
* throughput of many concurrent streams, in seconds of audio per CPU-second.

Timings are wall-clock on a shared machine: the minimum is the quiet-machine figure, the
median what a loaded one gives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soxr

# Measure this checkout's code, not whichever install of the package is on the path (run
# as a script, only bench/ would be).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.audio.io import load_audio
from agent.classify.model import MODEL_FILE, StudentModel
from agent.classify.rule import RuleState, StreamRule, carry_over, load_classifier_config
from agent.classify.stream import StreamingClassifier
from agent.corpus.manifest import load_manifest
from agent.distill.folds import GROUP_FOLDS, STRATEGIES, fold_names
from agent.distill.lovo import LovoData, lovo_data, lovo_report, split_report
from agent.distill.teachers import SileroVad, YamnetTeacher, make_teacher
from agent.distill.train import STUDENT_FEATURES, grouped_split
from agent.features import seconds_of
from agent.features.context import (
    N_CONTEXT,
    N_PERIODICITY,
    context_from_history,
    log_mel_and_periodicity,
    periodicity_from_power,
)
from agent.features.mel import (
    FRAMES_PER_SECOND_WINDOW,
    N_MELS,
    SpectraBuffers,
    frames_of,
    log_mel_into,
)
from agent.features.modulation import N_MODULATION, new_history, new_work, push_modulation
from agent.labels import LABELS
from agent.paths import MODELS_DIR, cache_dir


def _row(name: str, value: str, target: str = "", verdict: str = "") -> str:
    return f"| {name} | {value} | {target} | {verdict} |"


def _verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"MISSED by {miss}"


def yamnet_one_second(yam: YamnetTeacher, window: np.ndarray) -> np.ndarray:
    """What YAMNet needs to classify one second: resample, log-mel, one 0.96-s patch."""
    mel = yam.log_mel(soxr.resample(window, 8000, yam.SR))
    return yam.patch_logits(mel[: yam.PATCH])


def _inputs(model: StudentModel) -> str:
    return ("log-mel" + (" + summary" if model.layout.summary else "")
            + (" + periodicity" if model.layout.periodicity else "")
            + (" + context" if model.layout.context else "")
            + (" + modulation" if model.layout.modulation else ""))


def _us(ns: np.ndarray) -> str:
    """min / median / p90 of nanosecond timings, in µs."""
    return (f"{ns.min() / 1e3:.1f} / {np.median(ns) / 1e3:.1f} / "
            f"{np.percentile(ns, 90) / 1e3:.1f} µs")


def _components(model: StudentModel, rule: StreamRule, pick: np.ndarray, repeats: int
                ) -> dict[str, np.ndarray]:
    """Each part of a second's work timed in the stream's order, second after second, so
    caches and branch predictors are as cold as in the live path: log-mel (with the power
    spectra), periodicity (from those spectra), the model (compiled if available, and
    LightGBM's C API), the carry-over and the rule, the whole push."""
    lgbm = StudentModel(model.booster, source=model.source, compile_trees=False)
    sc = StreamingClassifier(model, rule=rule)
    state = RuleState(rule)
    history: list[np.ndarray] = []
    carried: list[float] | None = None
    names = ["log-mel", "periodicity", "modulation", "predict", "predict (LightGBM C API)",
             "carry-over + rule",
             "whole push, right after the parts (colder caches)"]
    out = {name: np.empty(repeats * pick.shape[0]) for name in names}
    clock = time.perf_counter_ns
    i = 0
    # The stream's own buffers: log-mel frames view a window, periodicity reads its spectra.
    window = np.zeros((1, 8000), np.float32)
    frames = frames_of(window)
    buffers = SpectraBuffers.for_seconds(1)
    mel = np.empty((1, FRAMES_PER_SECOND_WINDOW, N_MELS), np.float32)
    per_out = np.empty((1, N_PERIODICITY), np.float32)  # all 14: assemble picks the model's
    mod_history, mod_work = new_history(), new_work()
    mod_out = np.empty((1, N_MODULATION), np.float32)
    for _ in range(repeats):
        for w in pick:
            window[0] = w
            t0 = clock()
            log_mel_into(frames, mel, buffers)
            t1 = clock()
            per = (periodicity_from_power(buffers, per_out) if model.layout.periodicity
                   else None)
            t2 = clock()
            if model.layout.modulation:
                push_modulation(mod_history, mel[0], mod_out[0], mod_work)
            t2m = clock()
            feats = mel.reshape(1, -1)
            row = model.layout.assemble(feats, context_from_history(history)[None], per,
                                        mod_out)[0]
            history = [*history[-3:], feats.reshape(-1, 24).max(axis=0)]
            t3 = clock()
            probs = model.predict_one(row)
            t4 = clock()
            lgbm.predict_one(row)
            t5 = clock()
            carried = carry_over(carried, probs.tolist(), rule.persistence)
            k = carried.index(max(carried))
            state.push(i, LABELS[k], carried[k])
            t6 = clock()
            sc.push(w)
            t7 = clock()
            for name, dt in zip(names, (t1 - t0, t2 - t1, t2m - t2, t4 - t3, t5 - t4, t6 - t5,
                                        t7 - t6), strict=True):
                out[name][i] = dt
            i += 1
    return out


def _speed(args: argparse.Namespace, model: StudentModel, rule: StreamRule,
           secs: np.ndarray) -> None:
    """Print the speed rows: latency, ratio to YAMNet, components, throughput."""
    # Latency: one stream, one whole second per push (features, context, model, rule).
    rng = np.random.default_rng(0)
    pick = secs[rng.choice(secs.shape[0], size=min(args.latency_seconds, secs.shape[0]),
                           replace=False)]
    sc = StreamingClassifier(model, rule=rule)
    for w in pick[:20]:
        sc.push(w)
    lat = np.empty(pick.shape[0])
    for i, w in enumerate(pick):
        t0 = time.perf_counter_ns()
        sc.push(w)
        lat[i] = time.perf_counter_ns() - t0
    # The ratio: YAMNet and the student take turns in blocks of 20 seconds, so that whatever
    # else the shared machine is doing weighs on both alike (timed one after the other, a
    # busy spell during either skews the ratio by a factor 1.5 either way), each warm within
    # its block as in a steady run.
    yam = YamnetTeacher()
    yam_lat = np.empty(min(200, pick.shape[0]))
    turn_lat = np.empty(yam_lat.size)
    turns = StreamingClassifier(model, rule=rule)
    for w in pick[-20:]:
        turns.push(w)
    for a in range(0, yam_lat.size, 20):
        for i in range(a, min(a + 20, yam_lat.size)):
            t0 = time.perf_counter_ns()
            yamnet_one_second(yam, pick[i])
            yam_lat[i] = time.perf_counter_ns() - t0
        for i in range(a, min(a + 20, yam_lat.size)):
            t0 = time.perf_counter_ns()
            turns.push(pick[i])
            turn_lat[i] = time.perf_counter_ns() - t0
    full = make_teacher(args.teacher)
    full_lat = np.empty(min(50, pick.shape[0]))
    for i in range(full_lat.size):
        t0 = time.perf_counter_ns()
        full.frame_scores(pick[i])
        full_lat[i] = time.perf_counter_ns() - t0
    vad = SileroVad()
    vad_lat = np.empty(min(50, pick.shape[0]))
    for i in range(vad_lat.size):
        t0 = time.perf_counter_ns()
        vad.frame_scores(pick[i])
        vad_lat[i] = time.perf_counter_ns() - t0
    parts = _components(model, rule, pick, args.repeats)

    # Throughput: S concurrent streams, each its own StreamingClassifier, fed a second each
    # in turn (the live agent's path); and the batch path (one extract + predict for all).
    n_streams = args.streams
    streams = [StreamingClassifier(model, rule=rule) for _ in range(n_streams)]
    rounds = 5
    feed = secs[rng.choice(secs.shape[0], size=(rounds, n_streams))]
    c0 = time.process_time()
    for r in range(rounds):
        for s, stream in enumerate(streams):
            stream.push(feed[r, s])
    cpu = time.process_time() - c0
    per_stream_tput = rounds * n_streams / cpu
    histories = [new_history() for _ in range(n_streams)]
    mod_work = new_work()
    c0 = time.process_time()
    for r in range(rounds):
        feats, periodicity = log_mel_and_periodicity(feed[r])
        context = np.full((n_streams, N_CONTEXT), -100.0, np.float32)
        modulation = None
        if model.layout.modulation:  # each stream's own history, as live
            modulation = np.empty((n_streams, N_MODULATION), np.float32)
            for s_i in range(n_streams):
                push_modulation(histories[s_i], feats[s_i].reshape(-1, N_MELS),
                                modulation[s_i], mod_work)
        model.predict_proba(model.layout.assemble(feats, context, periodicity, modulation))
    cpu_b = time.process_time() - c0
    batch_tput = rounds * n_streams / cpu_b

    med = float(np.median(lat)) / 1e6
    turn_med = float(np.median(turn_lat)) / 1e6
    quiet = float(np.min(turn_lat)) / 1e6
    yam_med = float(np.median(yam_lat)) / 1e6
    yam_min = float(np.min(yam_lat)) / 1e6
    ratio = yam_med / turn_med
    trees = "compiled trees" if model.compiled is not None else "LightGBM C API (not compiled)"
    print(_row(f"per-second latency, one stream, features included (median; {trees})",
               f"{1000 * med:.1f} µs (p90 {np.percentile(lat, 90) / 1e3:.1f} µs)", "≤ 200 µs",
               _verdict(med <= 0.2, f"{1000 * (med - 0.2):.1f} µs")))
    print(_row("YAMNet per second (resample + log-mel + one patch), median / min",
               f"{1000 * yam_med:.1f} / {1000 * yam_min:.1f} µs"))
    print(_row("student per second in the same blocks, median / min",
               f"{1000 * turn_med:.1f} / {1000 * quiet:.1f} µs"))
    print(_row("speed ratio YAMNet / student, taking turns (medians)", f"{ratio:.1f}×", "≥ 20×",
               _verdict(ratio >= 20,
                        f"a factor {20 / ratio:.1f} (student must be that much faster)")))
    print(_row("speed ratio YAMNet / student, taking turns (minimums: quiet machine)",
               f"{yam_min / quiet:.1f}×", "≥ 20×",
               _verdict(yam_min / quiet >= 20,
                        f"a factor {20 * quiet / yam_min:.1f} (student must be that much faster)")))
    print(_row("full teacher (YAMNet 4 patches/s + Silero VAD) per second, median",
               f"{np.median(full_lat) / 1e6:.2f} ms "
               f"(VAD alone {np.median(vad_lat) / 1e6:.2f} ms)"))
    print(_row("speed ratio full teacher / student",
               f"{float(np.median(full_lat)) / 1e6 / med:.1f}×"))
    for name, ns in parts.items():
        print(_row(f"  component: {name}, min / median / p90 ({args.repeats} × "
                   f"{pick.shape[0]} s)", _us(ns)))
    print(_row(f"throughput, {n_streams} concurrent streams (per-stream objects)",
               f"{per_stream_tput:.0f} s of audio per CPU-s"))
    print(_row(f"throughput, {n_streams} streams batched (log_mel_and_periodicity + "
               "predict_proba)",
               f"{batch_tput:.0f} s of audio per CPU-s"))


def _lovo(args: argparse.Namespace, rule: StreamRule) -> LovoData:
    """Print the leave-one-voice-out section (:func:`agent.distill.lovo.lovo_report`);
    return the corpus's data, for the file-split section."""
    t0 = time.perf_counter()
    data = lovo_data(args.corpus, teacher=args.teacher, progress=True)
    built = time.perf_counter() - t0
    table, voices = data.table, data.voices
    folds = fold_names(voices, group_folds=args.group_folds, speech_by=args.speech_by)
    families = {lb: len({v.voice for v in voices if v.label == lb}) for lb in LABELS}
    print(f"# classifier benchmark — corpus {args.corpus}: {len(table.ids)} files, "
          f"{len(table)} seconds; " + ", ".join(f"{families[lb]} {lb} families"
                                                for lb in LABELS))
    print()
    print("## Headline: voices and sources never heard (leave one voice out)")
    print()
    print("Each speech voice and each music source is a fold; ringback and silence are held "
          f"out by corpus group in {args.group_folds} folds each. A student trained as `train` "
          "trains it on every file outside a fold predicts that fold's files; pooled, every "
          f"second is predicted by a model that never heard its voice or source. Features and "
          f"cached teacher labels of the corpus built in {built:.0f} s.")
    print()
    recipes = [(args.strategies[0], args.features[0])]
    recipes += [(st, args.features[0]) for st in args.strategies[1:]]
    recipes += [(args.strategies[0], fs) for fs in args.features[1:]]

    def log(msg: str) -> None:
        print(f"  fold {msg}", file=sys.stderr)

    t0 = time.perf_counter()
    for line in lovo_report(data, recipes, folds=folds, rule=rule, progress=log):
        print(line, flush=True)
    print()
    print(f"Whole leave-one-voice-out section: {time.perf_counter() - t0 + built:.0f} s.")
    return data


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    ap.add_argument("--model", type=Path, default=MODELS_DIR / MODEL_FILE)
    ap.add_argument("--split", type=Path, default=None,
                    help="split.json naming the held-out files (default: next to the model)")
    ap.add_argument("--teacher", default="yamnet+vad")
    ap.add_argument("--streams", type=int, default=200, help="concurrent streams to simulate")
    ap.add_argument("--latency-seconds", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5,
                    help="passes over the latency seconds for the per-component timings")
    ap.add_argument("--speed-only", action="store_true",
                    help="skip the accuracy part (teachers, agreement, F1): timings only")
    ap.add_argument("--lovo-only", action="store_true",
                    help="only the leave-one-voice-out section (no file split, no timings)")
    ap.add_argument("--strategies", type=_names, default=["combined"],
                    help="label strategies on the folds, comma-separated, the first the "
                         "headline: " + ", ".join(STRATEGIES))
    ap.add_argument("--features", type=_names, default=[STUDENT_FEATURES],
                    help="feature specs on the folds, comma-separated, the first the headline "
                         f"(default {STUDENT_FEATURES}, what train fits; e.g. logmel+context, "
                         "logmel+periodicity-level+context; see agent.distill.folds)")
    ap.add_argument("--group-folds", type=int, default=GROUP_FOLDS,
                    help="folds the ringback and the silence groups are each dealt into")
    ap.add_argument("--speech-by", choices=("voice", "engine"), default="voice",
                    help="announcement folds: one per voice (default), or one per engine "
                         "(human, festival: a kind of voice never heard)")
    args = ap.parse_args(argv)

    model = StudentModel.load(args.model)
    rule = load_classifier_config().rule
    split_file = args.split or args.model.parent / "split.json"
    split = json.loads(split_file.read_text())["test_files"] if split_file.is_file() else []
    items = [i for i in load_manifest(args.corpus) if i.id in set(split)]
    if not args.speed_only:
        data = _lovo(args, rule)
        if args.lovo_only:
            return 0
        test = [i.id for i in items] or [
            data.table.ids[f] for f in np.unique(data.table.file[grouped_split(data.table)])]
        print()
        print("## Secondary: split by file (the same voices and sources in training)")
        print()
        print(f"Held out: {'the files of ' + str(split_file) if items else 'grouped_split'}; "
              "a student trained on the other files, as `train` measures its variants. "
              "These files' voices and music sources are in the training files too, so this "
              "measures memory more than generalisation.")
        print()
        for line in split_report(data, test, (args.strategies[0], args.features[0]),
                                 rule=rule):
            print(line)
        print()
    if not items:
        # The timings need audio; any corpus files serve: take every tenth.
        items = load_manifest(args.corpus)[::10]
    secs = np.concatenate([seconds_of(load_audio(args.corpus / i.path)) for i in items])
    print(f"## Speed — model {args.model} ({_inputs(model)}), {secs.shape[0]} seconds of "
          f"corpus {args.corpus}")
    print()
    print("| measure | value | target | verdict |")
    print("|---|---|---|---|")
    _speed(args, model, rule, secs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
