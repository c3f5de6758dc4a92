"""ROUGE-L against hand-computed values and embedding similarity with the embedded MiniLM."""

import pytest

from triagekit.core.textsim import Embedder, lcs_length, rouge_l, tokenize


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Reset the VPN-client, then re_try: v2.1!") == [
        "reset",
        "the",
        "vpn",
        "client",
        "then",
        "re",
        "try",
        "v2",
        "1",
    ]
    assert tokenize("Grüße, Müller") == ["grüße", "müller"]


@pytest.mark.parametrize(
    "a,b,n",
    [
        ("a b c d", "a c d", 3),
        ("a b c", "c b a", 1),
        ("", "a b", 0),
        ("x y", "a b", 0),
        ("a b a b", "b a b a", 3),
    ],
)
def test_lcs_length(a, b, n):
    assert lcs_length(a.split(), b.split()) == n
    assert lcs_length(b.split(), a.split()) == n


def test_rouge_l_matches_hand_computation():
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat = 5 tokens of 6 and 6
    r = rouge_l("The cat sat on the mat.", "the cat is on the mat")
    assert r.precision == pytest.approx(5 / 6) and r.recall == pytest.approx(5 / 6) and r.f1 == pytest.approx(5 / 6)
    r = rouge_l("restart the router", "please restart the router and wait a minute")
    assert r.precision == 1.0 and r.recall == pytest.approx(3 / 8) and r.f1 == pytest.approx(2 * 3 / 8 / (1 + 3 / 8))
    assert rouge_l("", "anything").f1 == 0.0 and rouge_l("same text", "Same text!").f1 == 1.0


def test_rouge_l_agrees_with_rouge_score_when_installed():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = [
        ("We refunded the duplicate charge on your invoice.", "The duplicate charge has been refunded."),
        ("Please restart the app and clear the cache", "clear the cache, then restart the app"),
    ]
    for cand, ref in pairs:
        assert rouge_l(cand, ref).f1 == pytest.approx(scorer.score(ref, cand)["rougeL"].fmeasure)


@pytest.mark.slow  # the packaged MiniLM
def test_embedding_similarity_ranks_paraphrase_above_unrelated():
    emb = Embedder()
    sims = emb.similarity(
        ["I was charged twice for my subscription", "I was charged twice for my subscription"],
        ["My card was billed two times for the plan", "The printer on floor 3 is out of toner"],
    )
    assert sims[0] > sims[1] + 0.2
    assert emb.similarity(["same words"], ["same words"])[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="pairs"):
        emb.similarity(["a"], [])
