"""Devices and precision: which autocast dtype detection runs under (`--precision`), and the CPU query behind `auto`."""

import pytest
import torch

from mgrec import devices
from mgrec.devices import amx_bf16_cpu, autocast_dtype, cpuinfo_flags, extraction_dtype, native_bf16_cpu, precision_name
from mgrec.errors import InputError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_on_cuda_and_float32_on_any_cpu(monkeypatch, native):
    # a CPU with native bf16 too: bf16 autocast measured slower there for the demo model (devices.autocast_dtype)
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda: native)
    assert autocast_dtype(CPU, "auto") is None
    assert autocast_dtype(CUDA, "auto") is torch.bfloat16
    # forced either way, whatever the CPU
    assert autocast_dtype(CPU, "bf16") is torch.bfloat16
    assert autocast_dtype(CPU, "fp32") is None and autocast_dtype(CUDA, "fp32") is None
    # another device type (e.g. Apple's) keeps float32 under auto
    assert autocast_dtype(torch.device("mps"), "auto") is None


@pytest.mark.parametrize("amx", [True, False])
def test_extraction_auto_is_bf16_also_on_a_cpu_with_amx(monkeypatch, amx):
    # video backbones are large convolutions and matrix products: bf16 pays on AMX's matrix units; with
    # AVX512-BF16 alone (native, but measured slower than float32) auto stays float32
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda: True)
    monkeypatch.setattr(devices, "amx_bf16_cpu", lambda: amx)
    assert extraction_dtype(CPU, "auto") is (torch.bfloat16 if amx else None)
    assert extraction_dtype(CUDA, "auto") is torch.bfloat16
    assert extraction_dtype(CPU, "fp32") is None and extraction_dtype(CPU, "bf16") is torch.bfloat16
    with pytest.raises(InputError, match=r"--precision='half': expected one of"):
        extraction_dtype(CPU, "half")


def test_a_bad_precision_names_the_setting():
    with pytest.raises(InputError, match=r"--precision='fp16': expected one of auto, fp32, bf16"):
        autocast_dtype(CPU, "fp16", what="--precision")


def test_precision_names_recorded_in_outputs():
    assert precision_name(None) == "fp32" and precision_name(torch.bfloat16) == "bf16"


def set_probes(monkeypatch, avx512_bf16, amx):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", amx, raising=False)


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(True, False, True), (False, True, True),
                                                        (False, False, False)])
def test_torchs_query_decides_when_it_answers(monkeypatch, tmp_path, avx512_bf16, amx, expected):
    set_probes(monkeypatch, lambda: avx512_bf16, lambda: amx)
    flags = tmp_path / "cpuinfo"
    flags.write_text("flags\t\t: fpu avx2 avx512_bf16 amx_bf16\n")  # contradicts torch: torch wins
    monkeypatch.setattr(devices, "CPUINFO", flags)
    assert native_bf16_cpu() is expected


def test_the_cpuinfo_flags_decide_when_torchs_query_is_missing_or_fails(monkeypatch, tmp_path):
    flags = tmp_path / "cpuinfo"
    monkeypatch.setattr(devices, "CPUINFO", flags)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)  # a later torch without it
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert native_bf16_cpu() is True
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 amx_tile amx_bf16\n")
    assert native_bf16_cpu() is True
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")  # AVX-512 without BF16
    assert native_bf16_cpu() is False

    def broken():
        raise RuntimeError("cpuinfo failed to initialise")

    set_probes(monkeypatch, broken, broken)
    flags.write_text("flags\t\t: avx512_bf16\n")
    assert native_bf16_cpu() is True


@pytest.mark.parametrize("amx", [True, False])
def test_amx_is_torchs_answer_when_it_gives_one(monkeypatch, tmp_path, amx):
    set_probes(monkeypatch, lambda: True, lambda: amx)
    flags = tmp_path / "cpuinfo"
    flags.write_text("flags\t\t: fpu avx2 avx512_bf16 amx_tile amx_bf16\n")  # contradicts torch: torch wins
    monkeypatch.setattr(devices, "CPUINFO", flags)
    assert amx_bf16_cpu() is amx


def test_amx_from_the_cpuinfo_flags_when_torchs_query_is_missing_or_fails(monkeypatch, tmp_path):
    flags = tmp_path / "cpuinfo"
    monkeypatch.setattr(devices, "CPUINFO", flags)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    flags.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert amx_bf16_cpu() is True
    flags.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")  # native bf16, no AMX
    assert amx_bf16_cpu() is False and native_bf16_cpu() is True

    def broken():
        raise RuntimeError("cpuinfo failed to initialise")

    set_probes(monkeypatch, broken, broken)
    flags.write_text("flags\t\t: amx_bf16\n")
    assert amx_bf16_cpu() is True
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "missing")  # not Linux, or no access
    assert amx_bf16_cpu() is False


def test_no_readable_answer_means_not_native(monkeypatch, tmp_path):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "missing")  # not Linux, or no access
    assert cpuinfo_flags(tmp_path / "missing") == set()
    assert native_bf16_cpu() is False
    folder = tmp_path / "a-folder"
    folder.mkdir()
    monkeypatch.setattr(devices, "CPUINFO", folder)  # unreadable as a file
    assert native_bf16_cpu() is False


def test_under_torchrun_a_cuda_device_without_an_index_is_the_process_s_own(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # devices are named, not used
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert devices.process_device("cuda") == torch.device("cuda", 3)
    assert devices.process_device("auto") == torch.device("cuda", 3)
    assert devices.process_device("cuda:1") == torch.device("cuda", 1)  # an explicit GPU stays what it says
    assert devices.process_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(InputError, match=r"environment: RANK='two' must be a whole number"):
        devices.process_rank()
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match=r"RANK=2 must lie in \[0, WORLD_SIZE=2\)"):
        devices.process_rank()
