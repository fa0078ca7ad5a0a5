"""A stand-in NVML library (``fake_nvml.c``) and helpers to point pynvml at it."""
