"""Power sources: NVML GPUs, RAPL CPU/DRAM, simulated GPUs, the run's process tree."""
