"""One fit run in core: :func:`run_fit`, :class:`FitHistory`, :func:`fit_report`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smoe_gui.core.events import FitEvent, StopToken
from smoe_gui.core.metrics import psnr
from smoe_gui.core.params import Params
from smoe_gui.core.rendering.culled import render
from smoe_gui.core.train.runs import HISTORY_COLUMNS, FitHistory, fit_report, run_fit

QUICK = Params(tile_size=32, tile_steps=5, max_steps=8, time_budget=20.0)


def _event(
    step: int, phase: str = "finetune", psnr_db: float = 30.0, tile: int | None = None
) -> FitEvent:
    return FitEvent(phase=phase, step=step, loss=0.0, psnr=psnr_db, n_kernels=10 + step,
                    elapsed_s=0.5 * step, tile=tile)


def test_history_views_agree() -> None:
    events = [_event(0, "tiles", 20.0, 0), _event(1, "tiles", 21.0, 1), _event(2, "merge", 25.0),
              _event(3, "finetune", math.inf), _event(4, "finetune", math.nan)]
    history = FitHistory.from_events(events)
    assert len(history) == 5
    arrays = history.arrays()
    assert list(arrays) == list(HISTORY_COLUMNS)
    assert arrays["step"].tolist() == [0, 1, 2, 3, 4]
    assert arrays["tile"].tolist() == [0, 1, -1, -1, -1]
    records = history.records()
    assert records[3]["psnr_db"] == "inf" and records[4]["psnr_db"] is None
    assert records[0]["tile"] == 0 and records[2]["tile"] is None
    json.dumps(records, allow_nan=False)
    back = FitHistory.from_records(json.loads(json.dumps(records)))
    assert back.records() == records
    csv = history.csv_text().splitlines()
    assert csv[0] == ",".join(HISTORY_COLUMNS)
    assert csv[4] == "3,1.5000,finetune,inf,13,-1,inf" and csv[5].split(",")[3] == "nan"
    assert csv[1].endswith(",nan")  # no whole-image PSNR measured on that tile event
    assert history.csv_text(label="edge").splitlines()[1].startswith("edge,0,")
    assert history.whole_image().arrays()["phase"].tolist() == ["merge", "finetune", "finetune"]
    # a tile event that measured the whole image joins the whole-image rows, with that PSNR
    measured = FitHistory.from_events(
        [FitEvent(phase="tiles", step=0, loss=0.0, psnr=35.0, n_kernels=9, elapsed_s=0.0, tile=0,
                  image_psnr=22.5), _event(1, "tiles", 21.0, 1), _event(2, "merge", 25.0)]
    )
    whole = measured.whole_image().arrays()
    assert whole["phase"].tolist() == ["tiles", "merge"]
    assert whole["psnr_db"].tolist() == [22.5, 25.0]
    assert FitHistory.from_records(measured.records()).records() == measured.records()
    assert history.phase_starts() == {"tiles": (0, 0.0), "merge": (2, 1.0), "finetune": (3, 1.5)}
    other = FitHistory()
    other.extend(history)
    other.append(_event(5))
    assert len(other) == 6 and len(history) == 5
    with pytest.raises(ValueError, match="record 0"):
        FitHistory.from_records([{"step": 1}])


def test_history_thinned_keeps_ends() -> None:
    history = FitHistory.from_events(_event(i) for i in range(1000))
    thin = history.thinned(50)
    steps = thin.arrays()["step"]
    assert len(thin) == 50 and steps[0] == 0 and steps[-1] == 999
    assert np.all(np.diff(steps) > 0)
    assert len(history.thinned(5000)) == 1000
    with pytest.raises(ValueError):
        history.thinned(1)


def test_run_fit_and_report(synthetic_image: np.ndarray) -> None:
    seen: list[FitEvent] = []
    result = run_fit(synthetic_image, QUICK, "edge", on_event=seen.append)
    assert len(result.history) == len(seen) and seen[-1].final
    assert result.final is seen[-1] and result.model is seen[-1].model
    assert result.psnr_db == pytest.approx(psnr(render(result.model), synthetic_image))
    assert np.array_equal(result.reconstruction, render(result.model))
    assert result.n_initial == result.initial_model.n_kernels  # type: ignore[union-attr]
    assert result.initialization is not None and result.init_s > 0 and not result.interrupted
    report = fit_report(result, synthetic_image, QUICK, "edge", "images/x.png")
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["psnr_history"] == result.history.records()
    assert report["image"] == {"path": "images/x.png", "width": 128, "height": 96}
    assert report["steps"] == result.final.step


def test_run_fit_from_a_given_model_and_stop(synthetic_image: np.ndarray) -> None:
    first = run_fit(synthetic_image, QUICK, "grid")
    stop = StopToken()
    stop.stop()
    again = run_fit(synthetic_image, QUICK, "grid", init=first.model, stop=stop)
    assert again.interrupted and again.init_s == 0.0 and again.initialization is None
    assert again.n_initial == first.model.n_kernels


def test_run_fit_refuses_bad_input_before_work(synthetic_image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        run_fit(synthetic_image, QUICK, "spiral")
    with pytest.raises(ValueError, match="RGB"):  # (H, W) gray or (H, W, 3) RGB
        run_fit(np.zeros((16, 16, 4), np.float32), QUICK, "edge")


@pytest.mark.parametrize("level", [0.0, 0.3, 1.0])
def test_constant_image_reports_an_exact_fit_as_inf(level: float) -> None:
    """A constant image is reconstructed exactly: PSNR inf, one value everywhere."""
    image = np.full((40, 48), level, dtype=np.float32)
    result = run_fit(image, QUICK, "edge")
    assert result.psnr_db == math.inf and result.ssim == pytest.approx(1.0)
    report = json.loads(json.dumps(fit_report(result, image, QUICK, "edge"), allow_nan=False))
    assert report["psnr_db"] == "inf" and float(report["psnr_db"]) == math.inf
    assert report["psnr_history"][-1]["psnr_db"] == "inf"
    assert result.history.csv_text().splitlines()[-1].split(",")[3] == "inf"
