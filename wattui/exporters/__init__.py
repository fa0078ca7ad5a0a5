"""Getting wattui's measurements out: Prometheus ``/metrics`` while recording
(:mod:`wattui.exporters.prometheus`) and the screens in a web browser (``wattui serve``,
:mod:`wattui.exporters.serve`). Importing this package imports nothing heavy."""
