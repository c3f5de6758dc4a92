"""Router-guided triage: routed enum fields are forced (or restricted to the router's top-k), the JSON stays valid,
the LLM writes only the free fields, and a router that does not fit the schema is refused before decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triagekit.route import HeadSpec, Router
from triagekit.triage import Triager, load_schema
from triagekit.triage.guided import GuidedConstraint, RouterGuide

SCHEMA = load_schema()
ROUTED = {
    "category": SCHEMA.enum_fields["category"],
    "priority": SCHEMA.enum_fields["priority"],
    "request_type": SCHEMA.enum_fields["request_type"],
}


class _Backend:
    """Logits that depend on the text (its length picks the class), so each ticket gets its own label."""

    def __init__(self, heads, sure: bool = True):
        self.heads, self.sure = heads, sure

    def logits(self, texts, batch_size=64):
        out = {}
        for h in self.heads:
            z = np.zeros((len(texts), len(h.labels)), dtype=np.float32)
            for i, t in enumerate(texts):
                z[i, len(t) % len(h.labels)] = 8.0 if self.sure else 0.5
                z[i, (len(t) + 1) % len(h.labels)] = 0.0 if self.sure else 0.4
            out[h.name] = z
        return out


def _router(sure: bool = True, threshold: float = 0.5, heads: dict | None = None) -> Router:
    specs = [HeadSpec(name, list(labels)) for name, labels in (heads or ROUTED).items()]
    calibration = {h.name: {"temperature": 1.0, "review_threshold": threshold} for h in specs}
    return Router(_Backend(specs, sure), specs, ["text"], calibration)


@pytest.fixture(scope="module")
def base(tiny_llama):
    return Triager.load(str(tiny_llama), device="cpu")


TEXTS = [
    "vpn drops every 10 min",
    "printer on floor 3 jams",
    "cannot log in after password reset!!",
    "outlook keeps asking for my password",
    "new laptop for the intern starting monday",
]


def test_routed_fields_are_forced_and_cost_fewer_model_calls(base):
    router = _router()
    guide = RouterGuide(router, SCHEMA, unsure="router")
    free = base.triage(TEXTS, batch_size=2)
    free_forwards = base.lm.last_stats.forwards
    guided = base.triage(TEXTS, batch_size=2, guide=guide)
    guided_forwards = base.lm.last_stats.forwards
    preds = router.predict([{"text": t} for t in TEXTS])
    for res, pred, unguided in zip(guided, preds, free):
        assert res["valid"], res
        for field in ROUTED:
            assert res["triage"][field] == pred[field]["label"]
            assert res["_meta"][field]["source"] == "router"
            assert res["_meta"][field]["confidence"] == pred[field]["confidence"]
        # The free field before the routed ones is written by the LLM from the same prefix: unchanged.
        assert res["triage"]["summary"] == unguided["triage"]["summary"]
        assert "_meta" not in unguided
    # Each routed value costs at least one sampled token (and so one model call) without guidance.
    assert guided_forwards < free_forwards, (guided_forwards, free_forwards)


def test_unsure_fields_are_chosen_among_the_routers_top_k(base):
    router = _router(sure=False, threshold=0.99)  # every field below its threshold
    guide = RouterGuide(router, SCHEMA, unsure="topk", top_k=2)
    results = base.triage(TEXTS, batch_size=3, guide=guide)
    preds = router.predict([{"text": t} for t in TEXTS], top_k=2)
    for res, pred in zip(results, preds):
        assert res["valid"], res
        for field in ROUTED:
            top = [t["label"] for t in pred[field]["top_k"]]
            assert res["triage"][field] in top
            meta = res["_meta"][field]
            assert meta["source"] == "llm_topk" and meta["requires_review"] is True
            assert meta["agrees_with_router"] == (res["triage"][field] == top[0])


def test_unsure_router_mode_keeps_the_top_1_and_llm_mode_leaves_the_field_free(base):
    router = _router(sure=False, threshold=0.99)
    forced = base.triage(TEXTS[:2], guide=RouterGuide(router, SCHEMA, unsure="router"))
    preds = router.predict([{"text": t} for t in TEXTS[:2]])
    assert [r["triage"]["category"] for r in forced] == [p["category"]["label"] for p in preds]
    assert all(r["_meta"]["category"]["requires_review"] for r in forced)
    free = base.triage(TEXTS[:2], guide=RouterGuide(router, SCHEMA, unsure="llm"))
    assert all(r["valid"] and r["_meta"]["category"]["source"] == "llm" for r in free)


def test_a_ticket_the_router_cannot_read_still_gets_valid_json_marked_for_review(base):
    results = base.triage(["   ", TEXTS[0]], guide=RouterGuide(_router(), SCHEMA))
    assert all(r["valid"] for r in results)
    assert all(m["requires_review"] and m["source"] == "llm" for m in results[0]["_meta"].values())
    assert all(m["source"] == "router" for m in results[1]["_meta"].values())


def test_a_router_that_does_not_fit_the_schema_is_refused_before_decoding(tmp_path):
    bad = _router(heads={**ROUTED, "category": ["Network", "Plumbing"]})
    with pytest.raises(ValueError, match=r"'category'.*\['Plumbing'\]"):
        RouterGuide(bad, SCHEMA)
    with pytest.raises(ValueError, match="no such head"):
        RouterGuide(_router(), SCHEMA, field_map={"category": "queue"})
    with pytest.raises(ValueError, match="has no enum"):
        RouterGuide(_router(), SCHEMA, field_map={"summary": "category"})
    with pytest.raises(ValueError, match="match none"):
        RouterGuide(_router(heads={"queue": ["a", "b"]}), SCHEMA)
    multi = Router(
        _Backend([HeadSpec("category", ROUTED["category"], multilabel=True)]),
        [HeadSpec("category", ROUTED["category"], multilabel=True)],
        ["text"],
    )
    with pytest.raises(ValueError, match="multi-label"):
        RouterGuide(multi, SCHEMA)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"request_type": "kind"}))
    renamed = _router(heads={"kind": ROUTED["request_type"]})
    from triagekit.triage.guided import read_field_map

    assert RouterGuide(renamed, SCHEMA, field_map=read_field_map(mapping)).field_map == {"request_type": "kind"}
    with pytest.raises(ValueError, match="unsure"):
        RouterGuide(_router(), SCHEMA, unsure="maybe")


def test_the_cli_and_triager_load_share_the_guides_unsure_modes_and_default():
    # The CLI and Triager.load spell them out (importing the guide at start-up would load numpy); they must agree.
    import argparse
    import inspect

    from triagekit.triage.commands import _model_arguments
    from triagekit.triage.guided import DEFAULT_UNSURE, UNSURE_MODES

    p = argparse.ArgumentParser()
    _model_arguments(p)
    action = next(a for a in p._actions if a.dest == "unsure")
    assert tuple(action.choices) == UNSURE_MODES and action.default == DEFAULT_UNSURE
    assert inspect.signature(Triager.load).parameters["unsure"].default == DEFAULT_UNSURE
    assert inspect.signature(RouterGuide).parameters["unsure"].default == DEFAULT_UNSURE


def test_guided_needs_the_grammar(base):
    with pytest.raises(ValueError, match="constrained"):
        base.triage(TEXTS[:1], constrained=False, guide=RouterGuide(_router(), SCHEMA))


def test_per_batch_constraints_keep_each_prompts_own_values(base):
    inner = base.constraint()
    allowed = [{"category": [c]} for c in ROUTED["category"][:5]]
    guided = GuidedConstraint(inner, allowed)
    assert guided.for_rows([3, 1]).allowed == [allowed[3], allowed[1]]
    with pytest.raises(ValueError, match="2 prompts"):
        GuidedConstraint(inner, allowed[:3]).begin(2)


@pytest.fixture(scope="module")
def tfidf_router(tmp_path_factory):
    """A TF-IDF router trained on synthetic IT tickets, with heads named like the schema's enum fields."""
    from triagekit.route import TrainConfig
    from triagekit.route.train import train
    from triagekit.triage import synth_tickets

    out = tmp_path_factory.mktemp("guide-router")
    rows = [{"text": t["text"], **{f: t["triage"][f] for f in ROUTED}} for t in synth_tickets(240, seed=3)]
    (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(
        backbone="tfidf",
        labels=list(ROUTED),
        text_fields=["text"],
        val_fraction=0.2,
        test_fraction=0.0,
        trackers=[],
    )
    train(cfg, out / "rows.jsonl", out / "run")
    return out / "run"


def test_guided_triage_endpoint_returns_the_routers_fields_and_meta(tiny_llama, tfidf_router, tmp_path):
    from fastapi.testclient import TestClient

    from triagekit.serve.app import create_app
    from triagekit.serve.settings import ServeSettings

    (tmp_path / "router").mkdir()
    settings = ServeSettings(triage_model=str(tiny_llama), triage_router=str(tfidf_router), max_text_chars=500)
    router = Router.load(tfidf_router)
    text = "VPN drops every 10 minutes since the update"
    pred = router.predict([{"text": text}])[0]
    with TestClient(create_app(tmp_path / "router", settings)) as client:
        r = client.post("/triage", json={"text": text})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["valid"] and SCHEMA.validate(body["triage"]) == []
        for field in ROUTED:
            meta = body["meta"][field]
            assert meta["source"] in ("router", "llm_topk")
            assert meta["confidence"] == pred[field]["confidence"]
            if meta["source"] == "router":
                assert body["triage"][field] == pred[field]["label"]
            else:
                assert body["triage"][field] in [t["label"] for t in pred[field]["top_k"]]
        assert client.post("/triage", json={"text": text, "constrained": False}).status_code == 422
