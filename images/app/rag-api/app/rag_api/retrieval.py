"""Bag-of-words retrieval with numpy: rank passages by cosine similarity to the question."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str


class Index:
    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        vocabulary = sorted({t for p in passages for t in tokenize(p.title + " " + p.text)})
        self.columns = {term: i for i, term in enumerate(vocabulary)}
        counts = np.stack([self._counts(p.title + " " + p.text) for p in passages])
        document_frequency = (counts > 0).sum(axis=0)
        self.idf = np.log((1 + len(passages)) / (1 + document_frequency)) + 1.0
        self.matrix = self._normalize(counts * self.idf)

    def _counts(self, text: str) -> np.ndarray:
        vector = np.zeros(len(self.columns))
        for term in tokenize(text):
            column = self.columns.get(term)
            if column is not None:
                vector[column] += 1.0
        return vector

    @staticmethod
    def _normalize(matrix: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)

    def search(self, question: str, limit: int = 3) -> list[tuple[Passage, float]]:
        query = self._normalize(self._counts(question) * self.idf)
        scores = self.matrix @ query
        best = np.argsort(-scores)[:limit]
        return [(self.passages[i], float(scores[i])) for i in best if scores[i] > 0]


def load_index(path: Path) -> Index:
    records = json.loads(path.read_text(encoding="utf-8"))
    return Index([Passage(**record) for record in records])
