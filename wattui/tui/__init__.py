"""The terminal UI. Only this package imports Textual; import its modules lazily
(``wattui.tui.app``, ``wattui.tui.widgets``) so the rest of wattui stays light."""
