"""Summaries of the whole grid: tables (:mod:`.tables`), their markdown/HTML rendering
(:mod:`.render`), figures (:mod:`.figures`, :mod:`.scaling`, :mod:`.stability`), the verdicts
on the paper's claims (:mod:`.findings`) and the command line the workflow runs (:mod:`.cli`).
"""
