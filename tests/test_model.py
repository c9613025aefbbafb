"""The student model file: loading, bad files, and the fast single-row path."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from agent.classify import compiled
from agent.classify.model import InputLayout, StudentModel, feature_names
from agent.distill.train import TrainParams, fit
from agent.errors import UserError
from agent.features import N_FEATURES
from agent.features.context import N_CONTEXT


def _model(rng: np.random.Generator, layout: InputLayout, *,
           compile_trees: bool | None = None) -> StudentModel:
    x = rng.normal(-60, 15, (400, layout.n_features)).astype(np.float32)
    y = np.arange(400) % 4
    x[np.arange(400), y * 5] += 40.0  # each class lights up its own feature
    booster = fit(x, y, layout=layout, params=TrainParams(num_rounds=20))
    return StudentModel(booster, compile_trees=compile_trees)


LAYOUTS = [InputLayout(), InputLayout(context=True), InputLayout(summary=True),
           InputLayout(periodicity=True, context=True),
           InputLayout(summary=True, periodicity=True, context=True)]


@pytest.mark.parametrize("compile_trees", [True, False])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_single_row_and_batch_paths_match_lightgbm(rng: np.random.Generator,
                                                   layout: InputLayout,
                                                   compile_trees: bool) -> None:
    model = _model(rng, layout, compile_trees=compile_trees)
    assert model.layout == layout and model.uses_context is layout.context
    assert (model.compiled is not None) is compile_trees
    x = rng.normal(-60, 20, (25, model.n_features)).astype(np.float32)
    reference = model.booster.predict(x, num_threads=1)
    batch = model.predict_proba(x)
    one = np.stack([model.predict_one(row) for row in x])
    assert batch.shape == (25, 4)
    np.testing.assert_allclose(one, reference, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(batch, reference, rtol=1e-6, atol=1e-9)


def test_compiled_trees_follow_lightgbm_on_missing_values_and_zeros(
        rng: np.random.Generator, tmp_path: Path) -> None:
    # NaN in training gives NaN-branch nodes; zero_as_missing gives zero-branch nodes.
    x = rng.normal(0, 1, (400, 12)).astype(np.float32)
    y = np.arange(400) % 4
    x[np.arange(400), y] += 2.0
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.15] = 0.0
    probe = x[:60].copy()
    probe[:20, :6] = np.nan
    probe[20:40, :6] = 0.0
    for zero_as_missing in (False, True):
        booster = lgb.train({"objective": "multiclass", "num_class": 4, "verbosity": -1,
                             "zero_as_missing": zero_as_missing, "min_data_in_leaf": 5},
                            lgb.Dataset(x, label=y), num_boost_round=10)
        text = booster.model_to_string()
        types = {(int(v) >> 2) & 3 for line in text.splitlines()
                 if line.startswith("decision_type=") for v in line.split("=")[1].split()}
        assert (1 if zero_as_missing else 2) in types  # the branch under test is there
        trees = compiled.CompiledTrees(compiled.compile_trees(text, cache=tmp_path),
                                       n_features=12, n_classes=4)
        got = np.stack([trees.predict_into(row).copy() for row in probe])
        np.testing.assert_allclose(got, booster.predict(probe), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(trees.predict_batch(probe), got, rtol=0, atol=0)


def test_compiled_trees_read_nan_as_zero_where_training_saw_none(
        rng: np.random.Generator, tmp_path: Path) -> None:
    # Trained without NaN, every node has no missing branch: LightGBM reads NaN as 0.0,
    # which the C folds into each comparison with its (positive or negative) threshold.
    x = rng.normal(0, 1, (400, 8)).astype(np.float32)
    y = np.arange(400) % 4
    x[np.arange(400), y] += 1.5
    booster = lgb.train({"objective": "multiclass", "num_class": 4, "verbosity": -1,
                         "min_data_in_leaf": 5}, lgb.Dataset(x, label=y), num_boost_round=10)
    text = booster.model_to_string()
    types = {(int(v) >> 2) & 3 for line in text.splitlines()
             if line.startswith("decision_type=") for v in line.split("=")[1].split()}
    assert types == {0}
    thresholds = [float(v) for line in text.splitlines() if line.startswith("threshold=")
                  for v in line.split("=")[1].split()]
    assert min(thresholds) < 0 < max(thresholds)  # both foldings are exercised
    probe = x[:80].copy()
    probe[rng.random(probe.shape) < 0.4] = np.nan
    trees = compiled.CompiledTrees(compiled.compile_trees(text, cache=tmp_path),
                                   n_features=8, n_classes=4)
    got = np.stack([trees.predict_into(row).copy() for row in probe])
    np.testing.assert_allclose(got, booster.predict(probe), rtol=1e-6, atol=1e-12)
    zeroed = np.nan_to_num(probe, nan=0.0)
    np.testing.assert_allclose(got, booster.predict(zeroed), rtol=1e-6, atol=1e-12)


def test_compiled_splits_between_two_adjacent_floats_like_lightgbm(tmp_path: Path) -> None:
    # LightGBM's threshold is a double between two neighbouring float32 values; the C
    # compares in float32, so it must pick the right neighbour on each side.
    lo = np.float32(1.0)
    hi = np.nextafter(lo, np.float32(2.0))
    x = np.zeros((400, 3), np.float32)
    x[:, 0] = np.where(np.arange(400) % 2, hi, lo)
    y = (np.arange(400) % 2) * 2
    booster = lgb.train({"objective": "multiclass", "num_class": 4, "verbosity": -1,
                         "min_data_in_leaf": 5}, lgb.Dataset(x, label=y), num_boost_round=3)
    trees = compiled.CompiledTrees(compiled.compile_trees(booster.model_to_string(),
                                                          cache=tmp_path),
                                   n_features=3, n_classes=4)
    probe = np.array([[lo, 0, 0], [hi, 0, 0]], np.float32)
    got = trees.predict_batch(probe)
    assert got[0].argmax() == 0 and got[1].argmax() == 2
    np.testing.assert_allclose(got, booster.predict(probe), rtol=1e-6, atol=1e-12)


def test_a_bound_row_predictor_reads_the_row_as_refilled(rng: np.random.Generator) -> None:
    for compile_trees in (True, False):
        model = _model(rng, InputLayout(context=True), compile_trees=compile_trees)
        row = np.zeros(model.n_features, np.float32)
        predict = model.row_predictor(row)
        for x in rng.normal(-60, 20, (4, model.n_features)).astype(np.float32):
            row[:] = x
            np.testing.assert_allclose(predict(), model.booster.predict(x[None])[0],
                                       rtol=1e-6, atol=1e-9)
        with pytest.raises(ValueError, match="row"):
            model.row_predictor(np.zeros(model.n_features, np.float64))


def test_models_the_generator_does_not_cover_are_refused(rng: np.random.Generator) -> None:
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = np.arange(200) % 4
    ova = lgb.train({"objective": "multiclassova", "num_class": 4, "verbosity": -1},
                    lgb.Dataset(x, label=y), num_boost_round=2)
    with pytest.raises(compiled.TreeCompileError, match="softmax"):
        compiled.generate_c(ova.model_to_string())
    x[:, 0] = rng.integers(0, 6, 200)
    cat = lgb.train({"objective": "multiclass", "num_class": 4, "verbosity": -1,
                     "min_data_per_group": 5, "cat_smooth": 1},
                    lgb.Dataset(x, label=(x[:, 0] % 4).astype(int), categorical_feature=[0]),
                    num_boost_round=2)
    with pytest.raises(compiled.TreeCompileError, match="categorical"):
        compiled.generate_c(cat.model_to_string())


def test_trees_are_compiled_once_per_model(rng: np.random.Generator, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model = _model(rng, InputLayout(), compile_trees=True)
    built = list((tmp_path / "early-media-agent" / "trees").glob("*.so"))
    assert len(built) == 1 and model.compiled is not None and model.compiled.path == built[0]
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    again = StudentModel(model.booster, compile_trees=True)
    assert again.compiled is not None and again.compiled.path == built[0]


def test_without_a_compiler_it_falls_back_to_lightgbm_with_one_log_line(
        rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with caplog.at_level("WARNING", logger="agent.classify.model"):
        model = _model(rng, InputLayout(), compile_trees=True)
    assert model.compiled is None
    assert len(caplog.records) == 1 and "not compiled" in caplog.records[0].getMessage()
    x = rng.normal(-60, 20, (5, model.n_features)).astype(np.float32)
    np.testing.assert_allclose(np.stack([model.predict_one(r) for r in x]),
                               model.booster.predict(x), rtol=1e-6)


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_the_environment_switch_turns_compiling_off(value: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.ENV_SWITCH, value)
    assert not compiled.enabled()
    monkeypatch.setenv(compiled.ENV_SWITCH, "1")
    assert compiled.enabled()


def test_model_round_trips_through_its_text_file(rng: np.random.Generator, tmp_path: Path
                                                 ) -> None:
    model = _model(rng, InputLayout(context=True))
    path = tmp_path / "student.txt"
    model.booster.save_model(str(path))
    loaded = StudentModel.load(path)
    assert loaded.booster.feature_name() == feature_names(context=True)
    x = rng.normal(-60, 20, (5, loaded.n_features)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_missing_model_file_is_one_line_naming_the_train_command(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        StudentModel.load(tmp_path / "nope.txt")
    assert "early-media-agent train" in str(info.value) and "\n" not in str(info.value)


def test_garbage_model_file_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "student.txt"
    path.write_text("this is not a model\n")
    with pytest.raises(UserError, match="not a LightGBM model"):
        StudentModel.load(path)


def test_model_with_the_wrong_class_count_is_refused(rng: np.random.Generator,
                                                     tmp_path: Path) -> None:
    x = rng.normal(size=(100, N_FEATURES))
    booster = lgb.train({"objective": "binary", "verbosity": -1},
                        lgb.Dataset(x, label=np.arange(100) % 2), num_boost_round=2)
    path = tmp_path / "binary.txt"
    booster.save_model(str(path))
    with pytest.raises(UserError, match="classes"):
        StudentModel.load(path)


def test_model_with_unknown_feature_names_is_refused(rng: np.random.Generator,
                                                     tmp_path: Path) -> None:
    x = rng.normal(size=(100, N_FEATURES + N_CONTEXT - 1))
    booster = fit(x, np.arange(100) % 4, params=TrainParams(num_rounds=2))
    path = tmp_path / "odd.txt"
    booster.save_model(str(path))
    with pytest.raises(UserError, match="feature layout"):
        StudentModel.load(path)


@pytest.mark.parametrize("era", ["per", "acf without steadiness", "stdy of 29 frames"])
def test_model_with_the_earlier_periodicity_features_must_be_retrained(
        rng: np.random.Generator, tmp_path: Path, era: str) -> None:
    layout = InputLayout(periodicity=True, context=True)
    if era == "per":
        names = [n.replace("acf_", "per_") for n in layout.names()]
    elif era.startswith("stdy"):
        names = [n.replace("stev_", "stdy_") for n in layout.names()]
    else:
        names = [n for n in layout.names() if not n.startswith("stev_")]
    x = rng.normal(size=(100, len(names)))
    booster = lgb.train({"objective": "multiclass", "num_class": 4, "verbosity": -1},
                        lgb.Dataset(x, label=np.arange(100) % 4, feature_name=names),
                        num_boost_round=2)
    path = tmp_path / "old.txt"
    booster.save_model(str(path))
    with pytest.raises(UserError, match=r"earlier version; retrain") as info:
        StudentModel.load(path)
    assert "\n" not in str(info.value)


def test_wrong_feature_width_is_rejected(rng: np.random.Generator) -> None:
    model = _model(rng, InputLayout())
    with pytest.raises(ValueError):
        model.predict_one(np.zeros(N_FEATURES + 1, np.float32))


def test_periodicity_tells_a_held_tone_from_noise() -> None:
    from agent.features.context import N_PERIODICITY, periodicity_batch

    t = np.arange(8000) / 8000
    held = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1
    out = periodicity_batch(np.stack([held, noise]))
    assert out.shape == (2, N_PERIODICITY)
    # peak correlation, voiced fraction and "pitch holds" are high for the tone only
    assert out[0, 0] > 0.9 and out[0, 1] == 1.0 and out[0, 2] == 1.0
    assert out[1, 0] < 0.5 and out[1, 1] == 0.0
    # the held pitch is 200 Hz: a lag of 40 samples (or a multiple, same correlation)
    assert round(2 ** float(out[0, 6])) % 40 == 0
