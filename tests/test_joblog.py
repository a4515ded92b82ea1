"""A library's printed progress into the job's log (src/scdrbench/methods/_joblog.py)."""

from __future__ import annotations

import logging
import re

from scdrbench.methods._joblog import stdout_to_job_log


def test_printed_lines_reach_the_log_whole_and_once(caplog, capsys):
    log = logging.getLogger("scdrbench.methods.test")
    with caplog.at_level("INFO", logger="scdrbench.methods.test"), stdout_to_job_log(log, "lib"):
        print("\tcompleted ", 0, " / ", 200, "epochs")
        print("NN descent", end="")  # a line in pieces, then one left open at the end
        print(" for 16 iterations")
        print("unfinished", end="")
    lines = [r.getMessage() for r in caplog.records]
    assert [re.sub(r" \(peak RSS so far [\d,]+ MB\)$", "", x) for x in lines] == [
        "lib: completed 0 / 200 epochs",
        "lib: NN descent for 16 iterations",
        "lib: unfinished",
    ]
    assert capsys.readouterr().out == ""
    print("after")  # stdout is the console's again
    assert capsys.readouterr().out == "after\n"
