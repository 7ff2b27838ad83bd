"""NVIDIA GPUs through NVML (the official binding, nvidia-ml-py: module `pynvml`).

The counter is nvmlDeviceGetTotalEnergyConsumption: millijoules since the driver was loaded,
64 bit (no wrap in practice), Volta and newer. Power readings (nvmlDeviceGetPowerUsage) are
averaged over about a second by the driver and, on A100/H100, cover only part of the time:
they go into the time series, while phase energies come from the counter.

GPUs: those the job may use (CUDA_VISIBLE_DEVICES, as indices or UUIDs) when it is set,
else every GPU NVML sees.
"""

from __future__ import annotations

import os

from spikescale.energy import Meter, Unavailable, as_text


class NvmlGpu(Meter):
    source = "nvml"
    kind = "measured"
    range_uj = None

    def __init__(self, nvml, handle, index: int, name: str, uuid: str):
        self._nvml, self._handle = nvml, handle
        self.scope = f"gpu-{index}"
        self.name, self.uuid = name, uuid

    def read_uj(self) -> int:
        return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) * 1000  # mJ -> uJ

    def power_w(self) -> float | None:
        try:
            return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0  # mW -> W
        except self._nvml.NVMLError:
            return None

    def describe(self) -> dict:
        return {**super().describe(), "gpu_name": self.name, "gpu_uuid": self.uuid}


def _visible(index: int, uuid: str) -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return True
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    return str(index) in wanted or any(uuid.startswith(w) for w in wanted if not w.isdigit())


def discover() -> tuple[list[Meter], list[Unavailable]]:
    try:
        import pynvml
    except ImportError:
        return [], [Unavailable("nvml", "nvidia-ml-py (pynvml) is not installed in the run's environment")]
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], [Unavailable("nvml", f"NVML could not start ({exc}): no NVIDIA driver or GPU here")]
    count = pynvml.nvmlDeviceGetCount()
    if count == 0:
        return [], [Unavailable("nvml", "NVML sees no GPU")]
    meters, problems = [], []
    for index in range(count):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        uuid = as_text(pynvml.nvmlDeviceGetUUID(handle))
        if not _visible(index, uuid):
            continue
        gpu = NvmlGpu(pynvml, handle, index, as_text(pynvml.nvmlDeviceGetName(handle)), uuid)
        try:
            gpu.read_uj()
        except pynvml.NVMLError as exc:
            problems.append(Unavailable("nvml", f"gpu-{index} ({gpu.name}) has no energy counter ({exc}; needs "
                                                "Volta or newer)"))
            continue
        meters.append(gpu)
    if not meters and not problems:
        problems.append(Unavailable("nvml", "no GPU visible to this job (CUDA_VISIBLE_DEVICES)"))
    return meters, problems
