"""The window's Qt-free control layer: the session (what the window holds), jobs run off the GUI "
"thread, view geometry as arrays, lecture steps.  Nothing here imports Qt; the tests drive it "
"without a window."""
