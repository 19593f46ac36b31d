"""Scrape a test server's `/metrics` and read its samples, with prometheus-client's parser."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    """Every sample at `url/metrics`, keyed by name and labels; the answer must be a 200."""
    response = httpx2.get(url + "/metrics", headers=headers or {}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels`; 0 when absent (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
