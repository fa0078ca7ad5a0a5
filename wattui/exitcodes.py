"""wattui's exit codes, one list for every command (the README's table repeats it).

A command that runs a training run (``wattui record``, ``wattui -- CMD``, ``wattui demo``)
otherwise exits with the run's own code (128+N when a signal N ended it).
"""

OK = 0
CHECK_FAILED = 1  # the command ran but found a problem (the demo's session check, `rm` declined)
USAGE = 2  # bad arguments or input, unknown session, or refused (no terminal, no --yes)
CANNOT_MEASURE = 3  # `wattui calibrate` refused: too few usable measurements on this machine
MISSING_DEPENDENCY = 4  # an optional dependency is not installed (torch, textual-serve)
NOT_EXECUTABLE = 126  # the command to launch exists but cannot be run (as a shell says)
NOT_FOUND = 127  # the command to launch was not found (as a shell says)
INTERRUPTED = 130  # Ctrl+C
