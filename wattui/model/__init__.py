"""wattui's vocabulary, below every other layer: the session record (session.py), a
multi-node group's reference (group.py), and the closed sets of device kinds, statuses and
measurement methods (kinds.py). Standard library only; imports nothing else of wattui."""
