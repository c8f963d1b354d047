"""The HTTP API of `ai-assets serve` on a real served LanceDB table with the real model: answers
with citations and the version that answered, scopes, filters, feedback, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ai_assets.core.embedding.base import Embedder
from ai_assets.core.feedback import FileFeedbackStore
from ai_assets.core.llm import OpenAIChatModel
from ai_assets.serve.app import create_app
from ai_assets.serve.scopes import Tokens
from ai_assets.settings import Settings
from ai_assets_tests.openai_server import running_openai_server
from ai_assets_tests.serve.conftest import ADMIN_TOKEN, BETA_TOKEN, bearer, library, options

ESCALATION = "who is paged after the third failure"


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code, body
    return body["error"]["message"]


def test_search_ask_chunk_and_document_answer_from_the_served_version(client: TestClient, served_data: Path) -> None:
    found = client.post("/v1/search", json={"query": ESCALATION, "k": 3}, headers=bearer())
    assert found.status_code == 200, found.text
    result = found.json()
    assert result["knowledge_base"] == "docs" and result["table"] == "chunks__minilm" and result["index_version"] > 0
    assert result["answer_id"].startswith("a_") and len(result["hits"]) == 3
    top = result["hits"][0]
    assert (top["doc_key"], top["page"], top["rank"]) == ("handbook/ops.pdf", 2, 1)
    assert top["citation"] == "Operations · Escalation · p. 2"  # the label ask, search and trace print
    assert top["document_url"] == "/v1/files/handbook/ops.pdf#page=2"

    asked = client.post("/v1/ask", json={"question": ESCALATION}, headers=bearer()).json()
    assert asked["answer_kind"] == "extractive" and "on-call engineer is paged" in asked["answer"]
    first = asked["citations"][0]
    assert "[1]" in asked["answer"] and first["doc_key"] == "handbook/ops.pdf" and first["page"] == 2
    assert asked["document_urls"]["1"] == "/v1/files/handbook/ops.pdf#page=2"
    assert asked["index_version"] == result["index_version"] and asked["answer_id"].startswith("a_")
    recorded = FileFeedbackStore(Settings(data_dir=served_data).feedback_location).answer(asked["answer_id"])
    assert recorded.client == "http" and recorded.passages[0].chunk_id == first["chunk_id"]

    chunk = client.get(f"/v1/chunks/{first['chunk_id']}", headers=bearer()).json()
    assert chunk["run_id"] == "run-1" and chunk["document_status"] == "unchanged" and chunk["page"] == 2
    assert chunk["citation"] == top["citation"] and "on-call engineer" in chunk["text"]
    assert chunk["file"].endswith("sources/handbook/ops.pdf")

    document = client.get("/v1/documents/handbook/ops.pdf", headers=bearer()).json()
    assert document["pages"] == [1, 2] and document["page_urls"]["2"] == "/v1/files/handbook/ops.pdf#page=2"
    assert document["source"] == "handbook" and document["chunks"] >= 2 and document["run_ids"] == ["run-1"]
    file = client.get("/v1/files/handbook/ops.pdf", headers=bearer())
    assert file.status_code == 200 and file.headers["content-type"] == "application/pdf"
    assert file.content == (served_data / "sources" / "handbook" / "ops.pdf").read_bytes()
    assert client.get("/v1/documents/handbook/missing.pdf", headers=bearer()).status_code == 404


def test_filters_are_applied_inside_the_query(client: TestClient) -> None:
    def search(filters: dict, k: int = 4) -> list[dict]:
        response = client.post("/v1/search", json={"query": ESCALATION, "k": k, "filters": filters}, headers=bearer())
        assert response.status_code == 200, response.text
        return response.json()["hits"]

    # A prefilter: k hits of the filtered set, though the unfiltered top k are mostly the handbook's.
    alpha = search({"sources": ["alpha"]}, k=3)
    assert len(alpha) == 3 and {hit["source"] for hit in alpha} == {"alpha"}
    assert {hit["doc_key"] for hit in search({"doc_key_prefix": "alpha/notes/"})} == {"alpha/notes/partitions.txt"}
    first_page = search({"page_from": 1, "page_to": 1})
    assert first_page and {hit["page"] for hit in first_page} == {1}
    assert {hit["page"] for hit in search({"page_from": 2})} == {2}


def test_a_scoped_token_never_sees_outside_its_sources(client: TestClient) -> None:
    beta = bearer(BETA_TOKEN)
    # "cron schedule" matches only alpha's words: the beta token gets beta's passages, no alpha count or score.
    found = client.post("/v1/search", json={"query": "cron expression schedule", "k": 10}, headers=beta).json()
    assert found["hits"] and {hit["source"] for hit in found["hits"]} == {"beta"}
    asked = client.post("/v1/ask", json={"question": ESCALATION}, headers=beta).json()
    assert {cited["source"] for cited in asked["citations"]} <= {"beta"}
    forbidden = client.post("/v1/search", json={"query": "cron", "filters": {"sources": ["alpha"]}}, headers=beta)
    assert forbidden.status_code == 403 and "may not read source(s) 'alpha'" in error_of(forbidden)
    assert client.get("/v1/documents/alpha/retries.md", headers=beta).status_code == 403
    assert client.get("/v1/files/alpha/retries.md", headers=beta).status_code == 403
    alpha_chunk = client.post(
        "/v1/search", json={"query": "cron", "k": 1, "filters": {"sources": ["alpha"]}}, headers=bearer()
    ).json()["hits"][0]["chunk_id"]
    assert client.get(f"/v1/chunks/{alpha_chunk}", headers=beta).status_code == 404  # as if it did not exist
    assert client.get(f"/v1/chunks/{alpha_chunk}", headers=bearer()).status_code == 200
    other_kb = client.post("/v1/search", json={"query": "cron", "knowledge_base": "handbook"}, headers=beta)
    assert other_kb.status_code == 422 and "choose one of: docs" in error_of(other_kb)


def test_feedback_judges_a_recorded_answer(client: TestClient, served_data: Path) -> None:
    asked = client.post("/v1/ask", json={"question": ESCALATION}, headers=bearer() | {"X-AI-Assets-Client": "page"}).json()
    judged = client.post(
        "/v1/feedback", json={"answer_id": asked["answer_id"], "verdict": "bad", "citation": 1, "note": "stale"},
        headers=bearer(),
    )
    assert judged.status_code == 200, judged.text
    store = FileFeedbackStore(Settings(data_dir=served_data).feedback_location)
    assert store.answer(asked["answer_id"]).client == "page"
    assert [(j.verdict, j.citation, j.note) for j in store.judgements() if j.answer_id == asked["answer_id"]] == [
        ("bad", 1, "stale")
    ]
    unknown = client.post("/v1/feedback", json={"answer_id": "a_0000000000000000", "verdict": "good"}, headers=bearer())
    assert unknown.status_code == 404 and "no answer a_0000000000000000" in error_of(unknown)
    wrong_citation = client.post(
        "/v1/feedback", json={"answer_id": asked["answer_id"], "verdict": "good", "citation": 99}, headers=bearer()
    )
    assert wrong_citation.status_code == 422 and "no citation [99]" in error_of(wrong_citation)
    # A scoped caller cannot judge (nor learn of) an answer that cites a source outside its scope.
    assert client.post(
        "/v1/feedback", json={"answer_id": asked["answer_id"], "verdict": "good"}, headers=bearer(BETA_TOKEN)
    ).status_code == 404
    # The store cannot be written (a file where its folder should be): 503, and ask still answers.
    judgements = Path(store.location) / "judgements"
    moved = judgements.rename(judgements.with_name("judgements.kept"))
    judgements.write_text("not a folder")
    try:
        failed = client.post("/v1/feedback", json={"answer_id": asked["answer_id"], "verdict": "good"}, headers=bearer())
        assert failed.status_code == 503 and "cannot write the feedback store" in error_of(failed)
    finally:
        judgements.unlink()
        moved.rename(judgements)


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [
        ("/v1/ask", {"question": "   "}, None, 422, "the question is empty"),
        ("/v1/search", {"query": ""}, None, 422, "query: String should have at least 1 character"),
        ("/v1/search", {"query": "cron", "k": 0}, None, 422, "k: must be greater than or equal to 1 (got 0)"),
        ("/v1/search", {"query": "cron", "k": 21}, None, 422, "k: must be at most 20 (AI_ASSETS_SERVE_MAX_K), got 21"),
        ("/v1/search", {"query": "cron", "mode": "fuzzy"}, None, 422, "mode: must be 'dense', 'fts' or 'hybrid' (got \"fuzzy\")"),
        ("/v1/search", {"query": "cron", "filters": {"team": "x"}}, None, 422, "filters.team: unknown field; filters: sources"),
        ("/v1/search", {"query": "cron", "filters": {"page_from": 3, "page_to": 2}}, None, 422, "page_from (3) must not be after page_to (2)"),
        ("/v1/search", {"query": "cron", "knowledge_base": "nope"}, None, 422, "unknown knowledge_base 'nope'; choose one of: docs"),
        ("/v1/search", {"quer": "cron"}, None, 422, "query: required; quer: unknown field"),
        ("/v1/search", b'{"query": "cron",', None, 422, "the body is not valid JSON"),
        ("/v1/search", {"query": "x" * 5000}, None, 413, "larger than 4096 bytes (AI_ASSETS_SERVE_MAX_BODY_BYTES)"),
        ("/v1/search", {"query": "cron"}, {}, 401, "send your API token as the header `Authorization: Bearer <token>`"),
        ("/v1/search", {"query": "cron"}, {"Authorization": "Bearer not-a-token"}, 401, "the token is not one this server accepts"),
    ],
)
def test_bad_input_gets_a_json_error_that_says_what_to_change(
    client: TestClient, path: str, body: object, headers: dict | None, status: int, message: str
) -> None:
    sent = bearer() if headers is None else headers
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers=sent | {"Content-Type": "application/json"})
    else:
        response = client.post(path, json=body, headers=sent)
    assert response.status_code == status, response.text
    assert message in error_of(response)
    assert "not-a-token" not in response.text


def test_health_readiness_metrics_and_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["knowledge_bases"]["docs"]["ready"] is True
    client.post("/v1/search", json={"query": "cron"}, headers=bearer())
    metrics = client.get("/metrics").text
    version = ready.json()["knowledge_bases"]["docs"]["index_version"]
    assert f'ai_assets_served_version{{knowledge_base="docs",table="chunks__minilm"}} {float(version)}' in metrics
    assert 'ai_assets_http_requests_total{method="POST",route="/v1/search",status="200"}' in metrics
    assert 'ai_assets_http_request_seconds_count{route="/v1/search"}' in metrics
    assert "ai_assets_query_batch_size_count " in metrics
    schema = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/ask", "/v1/chunks/{chunk_id}", "/v1/documents/{doc_key}", "/v1/feedback"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["SearchFilters"]["additionalProperties"] is False


def test_unreachable_data_is_a_503_not_a_crash(tmp_path: Path, minilm: Embedder) -> None:
    missing = tmp_path / "nowhere"
    with TestClient(create_app(library(missing, minilm), options(), with_mcp=False)) as unready:
        assert unready.get("/healthz").status_code == 200
        ready = unready.get("/readyz")
        assert ready.status_code == 503 and ready.json()["knowledge_bases"]["docs"]["error"].startswith("cannot read")
        search = unready.post("/v1/search", json={"query": "cron"}, headers=bearer(ADMIN_TOKEN))
        assert search.status_code == 503 and "has no served version open" in error_of(search)


def test_rate_limit_cors_and_open_local_access(served_data: Path, minilm: Embedder) -> None:
    app = create_app(
        library(served_data, minilm), options(tokens=Tokens([]), rate_limit_per_minute=2, cors_origins=["https://chat.example"]),
        with_mcp=False,
    )
    with TestClient(app) as local:
        preflight = local.options(
            "/v1/search", headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
        statuses = [local.post("/v1/search", json={"query": "cron", "k": 1}).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # no token needed: open local access, one bucket for it
        limited = local.post("/v1/search", json={"query": "cron"})
        assert int(limited.headers["Retry-After"]) >= 1 and "AI_ASSETS_SERVE_RATE_LIMIT_PER_MINUTE" in error_of(limited)


def test_a_failing_chat_model_gives_the_extractive_answer_with_a_warning(served_data: Path, minilm: Embedder) -> None:
    with running_openai_server() as openai:
        openai.chat_faults.extend(["garbage"] * 3)
        app = create_app(
            library(served_data, minilm), options(),
            chat_model=lambda settings: OpenAIChatModel("gpt-4o-mini", api_key="sk-test", base_url=openai.base_url, max_retries=0),
            with_mcp=False,
        )
        with TestClient(app) as chat_client:
            answer = chat_client.post("/v1/ask", json={"question": ESCALATION}, headers=bearer()).json()
    assert answer["answer_kind"] == "extractive" and "on-call engineer" in answer["answer"]
    assert any("the chat model failed" in warning for warning in answer["warnings"]), answer["warnings"]
    assert json.dumps(answer).count("sk-test") == 0


def test_a_body_sent_in_chunks_without_a_length_is_limited_too(client: TestClient) -> None:
    def chunks():
        yield b'{"query": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/v1/search", content=chunks(), headers=bearer() | {"Content-Type": "application/json"})
    assert response.status_code == 413 and "AI_ASSETS_SERVE_MAX_BODY_BYTES" in error_of(response)
