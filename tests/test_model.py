"""The student model file: loading, bad files, and the fast single-row path."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from agent.classify.model import InputLayout, StudentModel, feature_names
from agent.distill.train import TrainParams, fit
from agent.errors import UserError
from agent.features import N_FEATURES
from agent.features.context import N_CONTEXT


def _model(rng: np.random.Generator, layout: InputLayout) -> StudentModel:
    x = rng.normal(-60, 15, (400, layout.n_features)).astype(np.float32)
    y = np.arange(400) % 4
    x[np.arange(400), y * 5] += 40.0  # each class lights up its own feature
    booster = fit(x, y, layout=layout, params=TrainParams(num_rounds=20))
    return StudentModel(booster)


LAYOUTS = [InputLayout(), InputLayout(context=True), InputLayout(summary=True),
           InputLayout(periodicity=True, context=True),
           InputLayout(summary=True, periodicity=True, context=True)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_single_row_path_matches_the_batch_path(rng: np.random.Generator,
                                                layout: InputLayout) -> None:
    model = _model(rng, layout)
    assert model.layout == layout and model.uses_context is layout.context
    x = rng.normal(-60, 20, (25, model.n_features)).astype(np.float32)
    batch = model.predict_proba(x)
    one = np.stack([model.predict_one(row) for row in x])
    assert batch.shape == (25, 4)
    np.testing.assert_allclose(one, batch, rtol=1e-6, atol=1e-9)


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
