"""Focus (one stage view over the stage area), the folding parameter panel
and the presentation layout, driven offscreen with pytest-qt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, Qt  # noqa: E402

from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.control.presentation import CELLS  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402

FAST = Params(max_pts=20, tile_size=64, tile_steps=15, time_budget=1.5, expert_iters=5)


@pytest.fixture()
def image_path(disc_png: Path) -> Path:
    return disc_png


@pytest.fixture()
def settings(tmp_path: Path) -> QSettings:
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("params", FAST.to_json())
    return s


def _open(qtbot, image_path: Path, settings: QSettings, size=(1280, 720)):
    win = create_main_window(image_path, settings=settings, warm_up=False)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitUntil(
        lambda: win.latest_request > 0
        and win.stages.views["edges"].shown_id == win.latest_request,
        timeout=30_000,
    )
    return win


@pytest.fixture()
def window(qtbot, image_path: Path, settings: QSettings):
    win = _open(qtbot, image_path, settings)
    yield win
    win.close()


def _cell(window, name: str):
    return window.expert_plot if name == "expert" else window.stages.views[name]


def _shown(window) -> list[str]:
    return [n for n in CELLS if not _cell(window, n).isHidden()]


def test_keys_1_to_6_focus_each_cell_and_esc_goes_back(qtbot, window) -> None:
    stages = window.stages
    qtbot.wait(300)
    grid_size = stages.views["kernels"].size()
    window.activateWindow()
    for i, name in enumerate(CELLS):
        qtbot.keyClick(stages.views["edges"], Qt.Key(Qt.Key.Key_1 + i))
        qtbot.waitUntil(lambda n=name: _shown(window) == [n], timeout=2_000)
        cell = _cell(window, name)
        qtbot.waitUntil(lambda c=cell: c.width() > 0.9 * stages.width(), timeout=2_000)
        assert window.stage_focus.focused == name
        assert window.settings.value("focused_view") == name
        # the legend stays (the focused view's part); view 4's controls go with view 4;
        # the training controls and plots fold away
        assert stages.legend.isVisible()
        assert stages.kernel_controls.isVisible() == (name == "kernels")
        assert not window.training_panel.isVisible()
        qtbot.keyClick(cell, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: _shown(window) == list(CELLS), timeout=2_000)
        assert window.stage_focus.focused == ""
        assert stages.kernel_controls.isVisible() and window.training_panel.isVisible()
        assert window.kernel_panel.isVisible()
    qtbot.wait(300)
    qtbot.waitUntil(lambda: stages.views["kernels"].size() == grid_size, timeout=2_000)
    # with no view focused, Esc is Stop again (nothing runs: nothing happens)
    qtbot.keyClick(stages.views["edges"], Qt.Key.Key_Escape)
    assert _shown(window) == list(CELLS) and not window.is_training()


def test_the_same_key_again_or_a_double_click_goes_back(qtbot, window) -> None:
    window.activateWindow()
    view = window.stages.views["kernels"]
    qtbot.keyClick(view, Qt.Key.Key_4)
    assert _shown(window) == ["kernels"]
    # the focused view keeps its title and its zoom fits it
    assert view.getPlotItem().titleLabel.text.startswith("4")
    qtbot.keyClick(view, Qt.Key.Key_4)
    assert _shown(window) == list(CELLS)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _shown(window) == ["kernels"], timeout=2_000)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _shown(window) == list(CELLS), timeout=2_000)


def test_a_digit_typed_in_a_field_is_the_field_s(qtbot, window) -> None:
    from PySide6.QtWidgets import QDoubleSpinBox

    spin = window.panel.findChild(QDoubleSpinBox)
    assert spin is not None
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_2)
    assert "2" in spin.lineEdit().text()
    assert window.stage_focus.focused == ""


def test_the_panel_folds_to_a_strip_and_comes_back_remembered(
    qtbot, image_path, settings
) -> None:
    win = _open(qtbot, image_path, settings)
    try:
        wide = win.main_splitter.sizes()[0]
        assert wide > 150 and win.param_scroll.isVisible()
        stage_width = win.stages.width()
        win.activateWindow()
        qtbot.keyClick(win.stages.views["edges"], Qt.Key.Key_Backslash,
                       Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: win.main_splitter.sizes()[0] < 40, timeout=2_000)
        assert not win.param_scroll.isVisible() and win.param_strip_button.isVisible()
        assert not win.actions_by_id["panel"].isChecked()
        qtbot.waitUntil(lambda: win.stages.width() > stage_width + 100, timeout=2_000)
        assert str(settings.value("panel_collapsed")).lower() == "true"
        win.actions_by_id["focus-4"].trigger()
    finally:
        win.close()
    again = _open(qtbot, image_path, settings)
    try:
        assert again.panel_strip.collapsed and again.main_splitter.sizes()[0] < 40
        assert again.stage_focus.focused == "kernels" and _shown(again) == ["kernels"]
        qtbot.mouseClick(again.param_strip_button, Qt.MouseButton.LeftButton)  # the strip's button
        qtbot.waitUntil(lambda: again.main_splitter.sizes()[0] > 150, timeout=2_000)
        assert again.main_splitter.sizes()[0] == pytest.approx(wide, abs=12)
        assert again.param_scroll.isVisible() and again.actions_by_id["panel"].isChecked()
        assert str(settings.value("panel_collapsed")).lower() == "false"
    finally:
        again.close()


def test_the_lecture_at_1280x720_shows_the_current_stage_large(qtbot, window) -> None:
    from PySide6.QtGui import QFontInfo

    stages = window.stages
    window.resize(1280, 720)
    window.actions_by_id["lecture"].trigger()
    for _ in range(3):  # edge lecture, step 4: the kernels, the reduced segments beside them
        window.lecture.next()
    assert window.lecture.current().views[-1] == "kernels"
    qtbot.waitUntil(lambda: window.panel_strip.collapsed, timeout=2_000)
    view = stages.views["kernels"]
    qtbot.wait(200)
    area = stages.width() * (stages.height() - stages.kernel_controls.height())
    assert view.width() * view.height() > 0.5 * area
    assert _shown(window) == ["reduced", "kernels"]
    assert QFontInfo(window.lecture_caption.font()).pixelSize() >= 20
    assert stages.title_px is not None and stages.title_px >= 20
    assert "<b>kernels" in stages.legend.text() and "<b>reduced" in stages.legend.text()
    assert "<b>segments" not in stages.legend.text()  # the current step's legend only
    assert window.kernel_panel.isHidden()  # its placeholder's lines go to the views
    window.lecture.next()  # the presenter remote's Page Down: the reconstruction
    assert _shown(window) == ["kernels", "reconstruction"]
    window.actions_by_id["lecture"].trigger()
    assert _shown(window) == list(CELLS) and not window.panel_strip.collapsed
    assert stages.title_px is None and "<b>segments" in stages.legend.text()
    assert not window.kernel_panel.isHidden()
    assert QFontInfo(window.lecture_caption.font()).pixelSize() < 20


def test_presentation_on_request_from_the_view_menu(qtbot, window) -> None:
    window.actions_by_id["focus-5"].trigger()
    window.actions_by_id["presentation"].trigger()
    assert window.actions_by_id["presentation"].isChecked() and window.panel_strip.collapsed
    assert _shown(window) == ["kernels", "reconstruction"]
    assert window.stage_focus.primary() == "reconstruction"
    window.actions_by_id["presentation"].trigger()
    assert not window.actions_by_id["presentation"].isChecked()
    assert _shown(window) == ["reconstruction"]  # back to the focused view


def test_focus_fits_the_image_not_the_overlay_s_bounds(qtbot, window) -> None:
    # a trained kernel's ellipse may reach far beyond the image: the fit is the image's
    h, w = window.image.shape[:2]
    view = window.stages.views["kernels"]
    view.set_lines("selected", np.array([[-20.0 * w, -20.0 * h], [30.0 * w, 30.0 * h]]))
    window.actions_by_id["focus-4"].trigger()
    qtbot.waitUntil(lambda: _shown(window) == ["kernels"], timeout=2_000)
    qtbot.wait(100)
    window.fit_views()
    (x0, x1), (y0, y1) = view.getViewBox().viewRange()
    assert x0 > -0.2 * w and x1 < 1.2 * w or y0 > -0.2 * h and y1 < 1.2 * h
    assert x0 <= 0 and x1 >= w - 1 and y0 <= 0 and y1 >= h - 1  # the whole image


def _image_on_screen(window, name: str) -> tuple[float, float]:
    """Width and height (px) of the image as drawn in view ``name`` now."""
    from PySide6.QtCore import QRectF

    h, w = window.image.shape[:2]
    vb = window.stages.views[name].getViewBox()
    rect = vb.mapViewToScene(QRectF(-0.5, -0.5, float(w), float(h))).boundingRect()
    rect = rect.intersected(vb.sceneBoundingRect())
    return rect.width(), rect.height()


@pytest.mark.parametrize("folded", [False, True])
def test_the_focused_view_takes_the_stage_area_at_1280x720(qtbot, window, folded) -> None:
    # issue 21: focus at 1280x720 gave view 4 ~490x325 px (the plots and the
    # view-4 row kept their height); the focused image now takes >= 80 % of
    # the window's height (or width) between the menu bar and the status bar
    window.resize(1280, 720)
    if folded:
        window.panel_strip.set_collapsed(True)
    qtbot.wait(200)
    window.fit_views()
    qtbot.wait(50)
    grid_w, grid_h = _image_on_screen(window, "kernels")
    window.actions_by_id["focus-4"].trigger()
    qtbot.waitUntil(lambda: _shown(window) == ["kernels"], timeout=2_000)
    qtbot.waitUntil(lambda: not window.training_panel.isVisible(), timeout=2_000)
    qtbot.wait(200)
    window.fit_views()
    qtbot.wait(50)
    width, height = _image_on_screen(window, "kernels")
    body = window.centralWidget()
    share = max(width / body.width(), height / body.height())
    print(f"focused image {width:.0f}x{height:.0f} px in {body.width()}x{body.height()}")
    assert share >= 0.8, (width, height, body.width(), body.height())
    assert width > 2.5 * grid_w and height > 2.5 * grid_h
    window.actions_by_id["focus-back"].trigger()
    qtbot.waitUntil(lambda: window.training_panel.isVisible(), timeout=2_000)
    qtbot.wait(200)
    window.fit_views()
    qtbot.wait(50)
    assert _image_on_screen(window, "kernels") == pytest.approx((grid_w, grid_h), abs=3)


def test_view_4_s_controls_show_only_with_view_4_in_the_lecture(qtbot, window) -> None:
    stages = window.stages
    window.actions_by_id["lecture"].trigger()
    seen = []
    for index, step in enumerate(window.lecture.steps):
        if index:
            window.lecture.next()
        shown = _shown(window)
        seen.append("kernels" in shown)
        assert stages.kernel_controls.isVisible() == ("kernels" in shown), step.title
        assert window.training_panel.isVisible() == step.training, step.title
    assert True in seen and False in seen  # the edge lecture has both kinds of step
    window.actions_by_id["lecture"].trigger()
    assert stages.kernel_controls.isVisible() and window.training_panel.isVisible()
