"""bench.quality's verdict on issue 16's targets: each said met or not, a tie at the printed precision not
counted as the fusion beating a source."""

from __future__ import annotations

from bench.quality import verdict


def result(challenge, strict, auc):
    return {"mAP": challenge, "strict_mAP": strict, "cell_auc": auc}


def evaluation(fused, **sources):
    return {"fused": fused, "sources": sources}


def test_every_target_met():
    said = verdict(evaluation(result(0.95, 0.85, 0.90), cell=result(0.94, 0.70, 0.85)), 600)
    assert "NOT" not in said and said.count(": met") == 4


def test_a_lead_in_the_fifth_decimal_is_a_tie():
    said = verdict(evaluation(result(0.93994, 0.85, 0.90), cell=result(0.93988, 0.70, 0.85)), 600)
    assert "all three (not on challenge mAP (best source 0.940)): NOT met" in said


def test_each_missed_target_is_named():
    said = verdict(evaluation(result(0.90, 0.70, 0.79), cell=result(0.92, 0.60, 0.80)), 950)
    assert "strict mAP 0.700 >= 0.8: NOT met" in said
    assert "per-cell AUC 0.790 >= 0.8: NOT met" in said
    assert "not on challenge mAP (best source 0.920), per-cell AUC (best source 0.800)" in said
    assert "the demo in 950 s < 900 s: NOT met" in said
