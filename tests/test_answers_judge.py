"""The hallucination rubric on crafted replies, and pairwise judging with the position swap."""

import pytest

from triagekit.answer.judge import Case, ReferenceJudge, build_judge, judge_pair, tally
from triagekit.answer.rubric import check_reply, hallucination_rate

QUESTION = (
    "Cannot log in to AnalyticsHub\n\nWhen I try to log in to AnalyticsHub I get ERR_CONNECTION_RESET since "
    "version 4.2.1. My order ORD-55120. Call me at +49 30 1234567."
)
REFERENCE = "Please update AnalyticsHub and sign in again; if it fails, send us the log file."


def kinds(result, supported=False):
    return sorted((c.kind, c.text) for c in result.claims if c.supported is supported)


def test_grounded_reply_has_no_unsupported_claims():
    reply = (
        "Thank you for reporting this. Please update AnalyticsHub past version 4.2.1 and sign in again.\n"
        "1. Restart your computer.\n2. Send us the log file for order ORD-55120.\nWe can call +49 30 1234567."
    )
    result = check_reply(reply, QUESTION, REFERENCE)
    assert not result.hallucinated, result.unsupported
    assert ("name", "AnalyticsHub") in kinds(result, True) and ("number", "4.2.1") in kinds(result, True)
    assert ("number", "49 30 1234567") in kinds(result, True)  # one phone number is one claim


@pytest.mark.parametrize(
    "reply,kind,text",
    [
        ("Please visit https://support.example.com/reset.", "url", "https://support.example.com/reset"),
        ("Write to helpdesk@analyticshub.io for help.", "email", "helpdesk@analyticshub.io"),
        ("Your refund of $49.99 is on its way.", "number", "49.99"),
        ("We will reply within 24 hours.", "number", "24"),
        ("Please reinstall it from the Microsoft Store.", "name", "Microsoft"),
        ("Open Settings > Security > Passwords and reset it.", "step", "Settings > Security > Passwords"),
        ('Then click on "Reset Workspace" at the bottom.', "step", 'click on "Reset Workspace"'),
        ("Contact our AcmeCloud team.", "name", "AcmeCloud"),
    ],
)
def test_unsupported_claims_are_caught(reply, kind, text):
    result = check_reply(reply, QUESTION, REFERENCE)
    assert result.hallucinated and (kind, text) in kinds(result)


def test_placeholders_list_markers_and_sentence_starts_are_not_claims():
    reply = (
        "Dear <name>,\n1. Restart the app.\n2) Sign in again.\nThanks, [Your Name]. Please reach us at "
        "{support_email}. We are on it."
    )
    assert check_reply(reply, QUESTION, REFERENCE).claims == []


def test_stop_words_after_a_salutation_and_escaped_line_breaks_are_not_names():
    reply = "Dear <name>, We have reset it.\\nThank you,\\nBest regards\\nIf it fails, Our team calls Zendesk."
    result = check_reply(reply, QUESTION, REFERENCE)
    assert [(c.kind, c.text) for c in result.unsupported] == [("name", "Zendesk")]  # not We, nThank, nBest, Our


def test_possessives_and_compounds_of_supported_names_are_supported():
    reply = "AnalyticsHub's login uses ERR_CONNECTION_RESET-style codes; the AnalyticsHub-related fix is ready."
    assert not check_reply(reply, QUESTION, REFERENCE).hallucinated
    result = check_reply("Use AES-256 and Docker-related tools.", QUESTION, REFERENCE)
    assert sorted(c.text for c in result.unsupported) == ["256", "AES-256", "Docker-related"]


def test_context_supports_claims_and_rate_counts_replies():
    replies = ["Your plan renews on 2024-05-01.", "We will look into it.", "Call 0800 123 456."]
    results = [check_reply(r, "When does my plan renew?", context="Account: renewal 2024-05-01") for r in replies]
    assert [r.hallucinated for r in results] == [False, False, True]
    rate = hallucination_rate(results)
    assert rate["rate"] == pytest.approx(1 / 3) and rate["unsupported_number"] == 1


class FirstPositionJudge:
    """Always prefers whatever it sees first: pure order bias."""

    def compare(self, case, first, second):
        return "first"


class LengthJudge:
    def compare(self, case, first, second):
        return "tie" if len(first) == len(second) else "first" if len(first) > len(second) else "second"


class ForwardOnlyJudge:
    """Prefers the model only when the model is shown first (inconsistent)."""

    def compare(self, case, first, second):
        return "first" if first.startswith("model") else "tie"


def test_position_swap_cancels_order_bias_and_requires_agreement():
    case = Case("q", "ref")
    assert judge_pair(FirstPositionJudge(), case, "model reply", "base") == "tie"
    assert judge_pair(LengthJudge(), case, "a much longer reply", "short") == "model"
    assert judge_pair(LengthJudge(), case, "short", "a much longer reply") == "base"
    assert judge_pair(LengthJudge(), case, "same", "same") == "tie"
    assert judge_pair(ForwardOnlyJudge(), case, "model reply", "base reply") == "tie"
    t = tally(["model", "model", "tie", "base"])
    assert t == {"n": 4, "wins": 2, "ties": 1, "losses": 1, "win_rate": 0.625, "decisive_win_rate": 2 / 3}


class FakeEmbedder:
    def similarity(self, a, b):
        return [1.0 if x == y else 0.0 for x, y in zip(a, b)]


def test_reference_judge_prefers_grounded_close_reply_and_penalises_claims():
    judge = ReferenceJudge(embedder=FakeEmbedder(), claim_penalty=0.1)
    case = Case(QUESTION, REFERENCE)
    assert judge_pair(judge, case, REFERENCE, "Totally unrelated words.") == "model"
    # same overlap with the reference, but one invents a URL and a number: penalised, so it loses
    grounded = "Please update AnalyticsHub and sign in again."
    invented = "Please update AnalyticsHub and sign in again at www.fixit.com within 48 hours."
    assert judge.score(case, invented) < judge.score(case, grounded)
    assert judge_pair(judge, case, grounded, invented) == "model"
    assert judge_pair(ReferenceJudge(embedder=FakeEmbedder(), margin=10), case, REFERENCE, "x") == "tie"
    with pytest.raises(ValueError, match="unknown judge"):
        build_judge("gpt-judge")
    with pytest.raises(ValueError, match="non-negative"):
        ReferenceJudge(margin=-1)
