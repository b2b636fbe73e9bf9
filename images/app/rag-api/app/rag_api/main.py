"""HTTP API: /healthz for probes, /v1/search and /v1/answer for retrieval."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Query

from rag_api.retrieval import load_index

CORPUS = Path(__file__).with_name("corpus.json")

app = FastAPI(title="rag-api", version="0.3.0")
index = load_index(CORPUS)


@app.get("/healthz")
def healthz() -> dict[str, object]:
    return {"status": "ok", "passages": len(index.passages)}


@app.get("/v1/search")
def search(
    q: str = Query(min_length=1, max_length=500), limit: int = Query(3, ge=1, le=10)
) -> dict[str, object]:
    hits = index.search(q, limit)
    return {
        "query": q,
        "hits": [{"id": p.id, "title": p.title, "score": round(s, 4)} for p, s in hits],
    }


@app.get("/v1/answer")
def answer(q: str = Query(min_length=1, max_length=500)) -> dict[str, object]:
    hits = index.search(q, 1)
    if not hits:
        return {"query": q, "answer": None, "source": None}
    passage, score = hits[0]
    return {"query": q, "answer": passage.text, "source": passage.id, "score": round(score, 4)}
