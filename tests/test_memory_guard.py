"""Where the memory guard finds the job's allocation (no SLURM needed: scontrol is faked)."""

from __future__ import annotations

import subprocess

import pytest

from scdrbench.common import memory
from scdrbench.common.memory import MemoryGuardError, allocation, check_memory

SLURM_VARS = ("SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_CPUS_ON_NODE", "SLURM_JOB_ID")


@pytest.fixture(autouse=True)
def no_slurm(monkeypatch):
    for var in SLURM_VARS:
        monkeypatch.delenv(var, raising=False)


def fake_scontrol(monkeypatch, stdout="", fail=False):
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if fail:
            raise FileNotFoundError("scontrol")
        return subprocess.CompletedProcess(cmd, 0, stdout=stdout, stderr="")

    monkeypatch.setattr(memory.subprocess, "run", run)
    return calls


@pytest.mark.parametrize(
    "value, mb", [("250", 250), ("250M", 250), ("2G", 2048), ("1T", 1048576), ("512K", 0.5)]
)
def test_slurm_notation(value, mb):
    assert memory._slurm_mb(value) == mb


def test_environment_first(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "300")
    calls = fake_scontrol(monkeypatch)
    assert allocation(5000) == (300, "SLURM_MEM_PER_NODE of SLURM job 7")
    assert calls == []
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "1G")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "4")
    assert allocation(5000)[0] == 4096


def test_job_step_asks_scontrol(monkeypatch):
    # The plugin's srun step keeps only SLURM_JOB_ID of the allocation's variables.
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    calls = fake_scontrol(
        monkeypatch, "JobId=42 JobName=x NumCPUs=1 TRES=cpu=1,mem=250M MinMemoryNode=250M\n"
    )
    assert allocation(5000) == (250, "SLURM job 42's allocation (scontrol)")
    assert calls == [["scontrol", "show", "job", "-o", "42"]]
    with pytest.raises(MemoryGuardError, match=r"has 250 MB \(SLURM job 42's allocation"):
        check_memory(302, mem_mb=5000, what="tsne on 700 x 20")
    fake_scontrol(monkeypatch, "JobId=42 NumCPUs=4 MinMemoryCPU=2G\n")
    assert allocation(None)[0] == 8192


def test_falls_back_to_mem_mb(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    fake_scontrol(monkeypatch, fail=True)
    assert allocation(1000) == (1000, "the rule's mem_mb")
    fake_scontrol(monkeypatch, "JobId=42 NumCPUs=1\n")
    assert allocation(None) == (None, "")
    monkeypatch.delenv("SLURM_JOB_ID")
    assert allocation(None) == (None, "")
    check_memory(10**9)  # unknown allocation: no check
