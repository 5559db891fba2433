"""``python -m smoe_gui``: open the desktop application."""

from smoe_gui.ui.app import main

raise SystemExit(main())
