"""A client generated from openapi.yaml, installed where torch and this project are absent, drives a deployment.

``openapi-python-client`` generates a package (httpx and attrs) from the committed document; it is pip-installed
into a fresh virtualenv, and a script run there (the ``client_*`` functions below, sent as source) submits a job
of every kind in the kind table to a real API and Celery worker over loopback, waits for each, and reads typed
fields of every result. ``raise_on_unexpected_status`` makes any status the document does not declare an error.
The script prints JSON; the assertions here are on it.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import REPO_ROOT, Deployment
from workers.kinds import KINDS
from workers.kinds.patching import PatchingSpec

pytestmark = pytest.mark.integration

GENERATE_S, VENV_S, INSTALL_S, SCRIPT_S = 120, 120, 300, 600
TOL = 1e-4  # float32 patching: a fully clean run is 1.0 up to rounding

PATCHING = {
    "kind": "patching",
    "model": "tiny-gpt2",
    "clean_prompt": "When Mary and John went, John gave it to",
    "corrupted_prompt": "When Mary and John went, Mary gave it to",
    "answer": " ",
    "wrong_answer": "M",
    "targets": ["resid_pre", "resid_post", "head_out"],
}
JOBS: dict[str, dict[str, Any]] = {
    "activations": {"kind": "activations", "model": "tiny-gpt2", "prompts": ["ab", "abc"],
                    "hooks": ["blocks.*.hook_resid_post"], "positions": [-1], "top_k": 3},
    "attention": {"kind": "attention", "model": "tiny-gpt2", "prompt": "The cat", "layers": [1]},
    "attribution": {"kind": "attribution", "model": "tiny-gpt2", "prompt": "The cat sat on the",
                    "target": {"contrast": [" ", "m"]}, "method": "integrated_gradients", "n_steps": 16},
    "patching": PATCHING,
    "patching_path": {**{k: v for k, v in PATCHING.items() if k != "targets"}, "method": "path",
                      "receivers": [[1, 0], [1, 2]]},
    "head_scores": {"kind": "head_scores", "model": "tiny-gpt2", "prompts": ["abab", "xyxy"], "error_measure": "abs"},
    "sae_encode": {"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "Features of this prompt", "sae": "res-1",
                   "top_k": 5},
    "sae_features": {"kind": "sae_features", "model": "tiny-gpt2", "prompts": ["Features of this prompt", "and more"],
                     "sae": "res-1", "feature": 7, "top_n": 5},
    "steer": {"kind": "steer", "model": "tiny-gpt2", "prompt": "Once upon", "sae": "res-1", "feature": 7,
              "coefficient": 8.0, "max_new_tokens": 6},
}
"""Bodies that succeed on the test registry's tiny model; every kind of the table needs one (a test says so)."""


# --- The client side: these functions run in the client's virtualenv, where only the generated package is. ---


def client_read_activations(result: Any) -> dict[str, Any]:
    return {"prompts": [{"tokens": p.tokens, "hooks": {name: {"shape": part.shape, "axes": part.axes,
             "labels": part.labels.additional_properties, "values": part.values, "indices": part.indices}
             for name, part in p.hooks.additional_properties.items()}} for p in result.prompts]}


def client_read_attention(result: Any) -> dict[str, Any]:
    return {"tokens": result.tokens, "axes": result.patterns.axes, "values": result.patterns.values,
            "labels": result.patterns.labels.additional_properties, "entropy": result.entropy.values,
            "bos": result.bos_attention.values, "previous": result.previous_token_attention.values}


def client_read_attribution(result: Any) -> dict[str, Any]:
    completeness = result.checks.completeness
    return {"tokens": result.tokens, "scores": result.scores, "target_tokens": result.target.tokens,
            "target_value": result.target.value, "completeness_delta": completeness.delta,
            "relative_error": completeness.relative_error}


def client_read_patching(result: Any) -> dict[str, Any]:
    from interp_service_client.models import PathDetails

    grids = {name: {"axes": grid.axes, "labels": grid.labels.additional_properties, "values": grid.values,
                    "raw_values": grid.raw_values, "normalised": grid.normalised}
             for name, grid in result.targets.additional_properties.items()}
    path = None
    if isinstance(result.path, PathDetails):
        path = {"receivers": result.path.receivers, "joint": result.path.joint.value}
    return {"method": result.method, "tokens": result.tokens, "clean_metric": result.clean_metric,
            "corrupted_metric": result.corrupted_metric, "normalised": result.normalised, "grids": grids,
            "path": path}


def client_read_head_scores(result: Any) -> dict[str, Any]:
    return {"tokens": result.tokens, "error_measure": result.error_measure,
            "scores": {name: {"axes": grid.axes, "labels": grid.labels.additional_properties, "values": grid.values}
                       for name, grid in result.scores.additional_properties.items()}}


def client_read_sae_encode(result: Any) -> dict[str, Any]:
    encoding = result.prompts[0]
    return {"sae": result.sae, "hook": result.hook, "tokens": encoding.tokens, "l0": encoding.l0,
            "features": [[[f.feature, f.activation] for f in token] for token in encoding.features],
            "mse": result.reconstruction.mse}


def client_read_sae_features(result: Any) -> dict[str, Any]:
    effects = result.logit_effects
    return {"feature": result.feature, "hook": result.hook,
            "prompts": [{"tokens": p.tokens, "activations": p.activations, "max_activation": p.max_activation,
                         "max_position": p.max_position} for p in result.prompts],
            "promoted": [[e.token, e.effect] for e in effects.promoted],
            "suppressed": [[e.token, e.effect] for e in effects.suppressed]}


def client_read_steer(result: Any) -> dict[str, Any]:
    return {"feature": result.feature, "coefficient": result.coefficient, "tokens": result.tokens,
            "steered_text": result.steered_text, "unsteered_text": result.unsteered_text,
            "steered_tokens": result.steered_tokens, "unsteered_tokens": result.unsteered_tokens}


def client_job(client: Any, response: Any) -> dict[str, Any]:
    """A submitted job, waited for (``?wait`` on GET until it ends), with its result read by its kind's reader."""
    import time

    from interp_service_client.api.jobs import get_job

    first, job = response.status_code, response.parsed
    deadline = time.monotonic() + 300
    while job.status.value in ("queued", "running") and time.monotonic() < deadline:
        job = get_job.sync(job.id, client=client, wait=60)
    readers = {"activations": client_read_activations, "attention": client_read_attention,
               "attribution": client_read_attribution, "patching": client_read_patching,
               "sae_encode": client_read_sae_encode, "sae_features": client_read_sae_features,
               "steer": client_read_steer, "head_scores": client_read_head_scores}
    reader = readers.get(job.kind)
    done = job.status.value == "succeeded"
    return {"id": job.id, "status_code": first, "location": response.headers.get("location"),
            "job_class": type(job).__name__, "kind": job.kind, "status": job.status.value,
            "error": job.error.to_dict() if hasattr(job.error, "to_dict") else None,
            "result_class": type(job.result).__name__, "result": job.result.to_dict() if done else None,
            "typed": reader(job.result) if reader and done else None}


def client_main(base_url: str, jobs: dict[str, dict[str, Any]], token: str) -> dict[str, Any]:
    """Everything through the generated client: jobs of every kind, the other routes, errors, 200 and 202."""
    import json

    import httpx
    from interp_service_client import AuthenticatedClient, Client, models
    from interp_service_client.api.health import healthz, metrics, readyz
    from interp_service_client.api.jobs import cancel_job, get_job, list_jobs, stream_job_events, submit_job
    from interp_service_client.api.models import get_model, list_models
    from interp_service_client.api.tokenize import tokenize
    from interp_service_client.models import (
        AttributionSpec,
        ErrorBody,
        JobEvent,
        PatchingSpec,
        PatchingSpecTargetsItem,
        TokenizeRequest,
    )

    client = AuthenticatedClient(base_url=base_url, token=token, timeout=httpx.Timeout(120.0),
                                 raise_on_unexpected_status=True)
    out: dict[str, Any] = {"jobs": {}}
    for name, body in jobs.items():
        spec_class = getattr(models, "".join(p.title() for p in body["kind"].split("_")) + "Spec")
        response = submit_job.sync_detailed(client=client, body=spec_class.from_dict(body), wait=60)
        out["jobs"][name] = client_job(client, response)

    # The typed constructor makes the same body as the JSON (targets as the generated enum).
    typed = PatchingSpec(
        model="tiny-gpt2", clean_prompt=jobs["patching"]["clean_prompt"],
        corrupted_prompt=jobs["patching"]["corrupted_prompt"], answer=" ", wrong_answer="M",
        targets=[PatchingSpecTargetsItem.RESID_PRE, PatchingSpecTargetsItem.RESID_POST,
                 PatchingSpecTargetsItem.HEAD_OUT],
    )
    out["typed_body"] = typed.to_dict()
    accepted = submit_job.sync_detailed(client=client, body=typed)  # no wait: 202
    out["accepted"] = {"status_code": accepted.status_code, "location": accepted.headers.get("location"),
                       "job_class": type(accepted.parsed).__name__, "status": accepted.parsed.status.value}
    done = get_job.sync_detailed(accepted.parsed.id, client=client, wait=60)
    out["waited"] = client_job(client, done)
    over = cancel_job.sync_detailed(accepted.parsed.id, client=client)  # already over: 200
    out["cancel_over"] = {"status_code": over.status_code, "job_class": type(over.parsed).__name__,
                          "status": over.parsed.status.value}
    page = list_jobs.sync(client=client, limit=100)
    out["listed"] = {job.id: type(job).__name__ for job in page.items}

    stream = stream_job_events.sync(accepted.parsed.id, client=client)
    events = [JobEvent.from_dict(json.loads(line.removeprefix("data:").strip()))
              for line in stream.splitlines() if line.startswith("data:")]
    out["events"] = [[e.seq, e.status.value, e.progress] for e in events]

    errors = {}
    bodies = {  # specs are closed (no additional_properties): the client cannot even send an unknown field
        "multi_token": PatchingSpec.from_dict({**jobs["patching"], "answer": "two tokens"}),
        "out_of_range": AttributionSpec.from_dict({**jobs["attribution"], "n_steps": 0}),
        "unknown_model": PatchingSpec.from_dict({**jobs["patching"], "model": "no-such-model"}),
    }
    for name, spec in bodies.items():
        errors[name] = submit_job.sync_detailed(client=client, body=spec)
    errors["unknown_job"] = get_job.sync_detailed("no-such-job", client=client)
    anonymous = Client(base_url=base_url, timeout=httpx.Timeout(120.0), raise_on_unexpected_status=True)
    errors["no_key"] = get_job.sync_detailed("no-such-job", client=anonymous)
    out["errors"] = {
        name: {"status_code": r.status_code, "class": type(r.parsed).__name__,
               "code": r.parsed.error.code if isinstance(r.parsed, ErrorBody) else None,
               "field": r.parsed.error.field if isinstance(r.parsed, ErrorBody) else None}
        for name, r in errors.items()
    }

    tokens = tokenize.sync(client=client, body=TokenizeRequest(model="tiny-gpt2", prompt=jobs["attribution"]["prompt"]))
    model = get_model.sync("tiny-gpt2", client=client)
    ready = readyz.sync(client=client)
    out["routes"] = {
        "tokens": tokens.tokens, "n_tokens": tokens.n_tokens,
        "models": [m.id for m in list_models.sync(client=client).items],
        "n_layers": model.n_layers, "n_heads": model.n_heads, "saes": [s.id for s in model.saes],
        "healthz": healthz.sync(client=client).additional_properties,
        "readyz": [type(ready).__name__, ready.status.value, ready.checks.additional_properties],
        "metrics_has_jobs": "interp_jobs_submitted" in metrics.sync(client=client),
    }
    return out


CLIENT_SIDE: list[Callable[..., Any]] = [
    client_read_activations, client_read_attention,
    client_read_attribution, client_read_patching, client_read_sae_encode, client_read_sae_features, client_read_steer,
    client_read_head_scores,
    client_job, client_main,
]
SCRIPT = "\n\n".join(
    ["from __future__ import annotations", "import json, sys", "from typing import Any"]
    + [textwrap.dedent(inspect.getsource(function)) for function in CLIENT_SIDE]
    + ["print(json.dumps(client_main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])))"]
)


# --- The test side. ---


def _run(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[:4]} ran over {timeout} s: {exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"{command[:4]} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the client generated from the committed openapi.yaml, its dependencies and no more."""
    root = tmp_path_factory.mktemp("generated-client")
    config = root / "config.yaml"
    # Named apart from the hand-written client (interp_client); no post hooks (ruff), so no warning is expected.
    config.write_text("post_hooks: []\nproject_name_override: interp-service-client\n"
                      "package_name_override: interp_service_client\n")
    _run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(REPO_ROOT / "openapi.yaml"),
          "--meta", "setup", "--config", str(config), "--output-path", str(root / "client"), "--fail-on-warning"],
         GENERATE_S)
    _run([sys.executable, "-m", "venv", str(root / "venv")], VENV_S)
    python = root / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(root / "client")], INSTALL_S)
    imported = "import sys, interp_service_client; print(sorted({'torch', 'service', 'workers'} & sys.modules.keys()))"
    probe = _run([str(python), "-c", imported], VENV_S)
    assert probe.stdout.strip() == "[]"
    return python


@pytest.fixture(scope="module")
def output(client_python: Path, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    script = tmp_path_factory.mktemp("client-script") / "drive.py"
    script.write_text(SCRIPT, encoding="utf-8")
    jobs = {name: body for name, body in JOBS.items() if body["kind"] in KINDS}
    done = _run([str(client_python), str(script), deployment.api_url, json.dumps(jobs), deployment.api_key], SCRIPT_S,
                cwd=script.parent)  # not the repository: nothing of it is importable
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _pascal(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


def check_attribution(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    attribution = jobs["attribution"]["typed"]
    assert attribution["tokens"] == routes["tokens"] == ["<bos>", *"The cat sat on the"]  # byte-level tiny model
    assert len(attribution["scores"]) == routes["n_tokens"]
    assert attribution["target_tokens"] == [" ", "m"]
    assert abs(attribution["relative_error"]) < 0.05  # integrated gradients' completeness with 16 steps


def check_patching(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    typed = jobs["patching"]["typed"]
    n_tokens = len(typed["tokens"])
    assert typed["tokens"][:3] == ["<bos>", "W", "h"] and typed["normalised"] is True
    assert typed["clean_metric"] != typed["corrupted_metric"]
    resid_pre, resid_post = typed["grids"]["resid_pre"], typed["grids"]["resid_post"]
    for grid in (resid_pre, resid_post):
        assert grid["axes"] == ["layer", "position"] and grid["normalised"] is True
        assert grid["labels"]["layer"] == [0, 1]
        assert [len(row) for row in grid["values"]] == [n_tokens, n_tokens]  # layers × positions
    # After the last block the last position alone decides the answer: a clean patch there is the clean run (1.0).
    assert resid_post["values"][-1][-1] == pytest.approx(1.0, abs=TOL)
    assert resid_post["raw_values"][-1][-1] == pytest.approx(typed["clean_metric"], abs=TOL)
    # At layer 0 the residual is the embedding: where the prompts agree, patching it changes nothing (0.0).
    clean, corrupted = PATCHING["clean_prompt"], PATCHING["corrupted_prompt"]
    same = [i + 1 for i, (a, b) in enumerate(zip(clean, corrupted, strict=True)) if a == b]  # +1: BOS comes first
    assert len(same) == n_tokens - 1 - 4  # "John" and "Mary" differ in four characters (tokens)
    assert [resid_pre["values"][0][i] for i in same] == pytest.approx([0.0] * len(same), abs=TOL)
    heads = typed["grids"]["head_out"]
    assert heads["axes"] == ["layer", "head"] and [len(row) for row in heads["values"]] == [4, 4]

    path = jobs["patching_path"]["typed"]
    assert path["method"] == "path"
    assert path["path"]["receivers"] == [[1, 0], [1, 2]] and isinstance(path["path"]["joint"], float)
    assert path["grids"].keys() == {"senders"}
    senders = path["grids"]["senders"]
    assert senders["axes"] == ["layer", "head"] and senders["labels"] == {"layer": [0, 1], "head": [0, 1, 2, 3]}
    assert [len(row) for row in senders["values"]] == [4, 4]  # every head of the model was a sender
    # Heads in the receivers' layer cannot reach the receivers' inputs: no effect, so the metric stays the base
    # run's (clean, under path patching's default noise direction), a normalised 1.0. Layer 0's heads can.
    assert senders["values"][1] == pytest.approx([1.0] * 4, abs=TOL)
    assert any(abs(value - 1.0) > 1e-6 for value in senders["values"][0])


def check_activations(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    typed = jobs["activations"]["typed"]
    assert [p["tokens"] for p in typed["prompts"]] == [["<bos>", "a", "b"], ["<bos>", "a", "b", "c"]]
    for prompt in typed["prompts"]:
        assert list(prompt["hooks"]) == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
        for part in prompt["hooks"].values():
            assert part["shape"] == [1, 3] and part["axes"] == ["position", "top_k"]
            assert part["labels"]["position"] == [prompt["tokens"][-1]]
            magnitudes = [abs(v) for v in part["values"][0]]
            assert magnitudes == sorted(magnitudes, reverse=True)
            assert all(0 <= i < 64 for i in part["indices"][0])


def check_attention(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    typed = jobs["attention"]["typed"]
    assert typed["tokens"] == ["<bos>", *"The cat"]
    assert typed["axes"] == ["layer", "head", "query_position", "key_position"]
    assert typed["labels"]["layer"] == [1] and typed["labels"]["head"] == [0, 1, 2, 3]
    n = len(typed["tokens"])
    for head in typed["values"][0]:
        assert [sum(row) for row in head] == pytest.approx([1.0] * n, abs=1e-5)  # each destination's weights
        assert all(head[q][k] == 0 for q in range(n) for k in range(q + 1, n))  # causal
    assert [sum(row[0] for row in head) / n for head in typed["values"][0]] == pytest.approx(typed["bos"][0])
    assert all(e >= 0 for e in typed["entropy"][0]) and len(typed["previous"][0]) == 4


def check_sae_encode(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    sae = jobs["sae_encode"]["typed"]
    assert (sae["sae"], sae["hook"]) == ("res-1", "blocks.1.hook_resid_post")
    assert len(sae["features"]) == len(sae["tokens"]) == len(sae["l0"])
    for token_features, l0 in zip(sae["features"], sae["l0"], strict=True):
        assert len(token_features) == min(5, l0)
        activations = [activation for _, activation in token_features]
        assert activations == sorted(activations, reverse=True) and all(a > 0 for a in activations)
        assert all(0 <= feature < 96 for feature, _ in token_features)  # the test SAE's width
    assert sae["mse"] >= 0


def check_head_scores(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    scores = jobs["head_scores"]["typed"]
    assert scores["tokens"] == [["<bos>", *"abab"], ["<bos>", *"xyxy"]] and scores["error_measure"] == "abs"
    assert set(scores["scores"]) == {"previous_token", "duplicate_token", "induction"}
    for grid in scores["scores"].values():
        assert grid["axes"] == ["layer", "head"] and grid["labels"]["layer"] == [0, 1]
        assert len(grid["values"]) == 2 and all(len(row) == len(grid["labels"]["head"]) for row in grid["values"])
        assert all(-1 <= v <= 1 for row in grid["values"] for v in row)


def check_sae_features(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    features = jobs["sae_features"]["typed"]
    assert (features["feature"], features["hook"]) == (7, "blocks.1.hook_resid_post")
    assert [p["tokens"] for p in features["prompts"]] == [["<bos>", *"Features of this prompt"], ["<bos>", *"and more"]]
    for prompt in features["prompts"]:
        activations = prompt["activations"]
        assert len(activations) == len(prompt["tokens"]) and min(activations) >= 0  # ReLU SAE
        assert prompt["max_activation"] == max(activations)
        assert prompt["max_position"] == activations.index(max(activations))
    promoted = [effect for _, effect in features["promoted"]]
    suppressed = [effect for _, effect in features["suppressed"]]
    assert len(promoted) == len(suppressed) == 5
    assert promoted == sorted(promoted, reverse=True) and suppressed == sorted(suppressed)
    assert promoted[-1] >= suppressed[-1] and promoted[0] > suppressed[0]


def check_steer(jobs: dict[str, Any], routes: dict[str, Any]) -> None:
    steer = jobs["steer"]["typed"]
    assert (steer["feature"], steer["coefficient"]) == (7, 8.0)
    assert steer["tokens"] == ["<bos>", *"Once upon"]
    for side in ("steered", "unsteered"):
        assert 1 <= len(steer[f"{side}_tokens"]) <= 6 and isinstance(steer[f"{side}_text"], str)


CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "activations": check_activations,
    "attention": check_attention,
    "attribution": check_attribution,
    "patching": check_patching,
    "sae_encode": check_sae_encode,
    "sae_features": check_sae_features,
    "head_scores": check_head_scores,
    "steer": check_steer,
}
"""Per kind: what its typed result must hold (the jobs read through the client, and the other routes' answers)."""


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_runs_through_the_client_with_a_typed_result(
    kind: str, output: dict[str, Any], client: httpx.Client
) -> None:
    cases = {name: job for name, job in output["jobs"].items() if JOBS[name]["kind"] == kind}
    assert cases, f"no job of kind {kind!r}: add a body that succeeds on tiny-gpt2 to JOBS"
    for name, job in cases.items():
        assert job["status"] == "succeeded", (name, job)
        assert job["status_code"] == 200 and job["location"] == f"/v1/jobs/{job['id']}"  # ended within ?wait
        assert (job["job_class"], job["kind"], job["result_class"]) == (f"{_pascal(kind)}Job", kind,
                                                                       f"{_pascal(kind)}Result")
        assert job["result"] == client.get(f"/v1/jobs/{job['id']}").json()["result"]  # nothing lost in parsing
        assert job["typed"] is not None, f"the client script reads no typed fields of {kind!r}: add a reader"
    assert kind in CHECKS, f"no check of {kind!r} results: add one to CHECKS"
    CHECKS[kind](output["jobs"], output["routes"])


def test_wait_accept_cancel_list_and_events_through_the_client(output: dict[str, Any]) -> None:
    accepted, waited = output["accepted"], output["waited"]
    typed_body = output["typed_body"]  # the typed constructor sends the same JSON, the defaults written out
    assert PATCHING.items() <= typed_body.items()
    assert typed_body == {key: PatchingSpec.model_validate(PATCHING).model_dump(mode="json")[key] for key in typed_body}
    assert accepted["status_code"] == 202 and accepted["job_class"] == "PatchingJob"
    assert accepted["status"] in ("queued", "running") and accepted["location"].startswith("/v1/jobs/")
    assert waited["status_code"] == 200 and waited["status"] == "succeeded"
    assert waited["typed"]["grids"].keys() == {"resid_pre", "resid_post", "head_out"}
    assert output["cancel_over"] == {"status_code": 200, "job_class": "PatchingJob", "status": "succeeded"}
    for job in (*output["jobs"].values(), waited):
        assert output["listed"][job["id"]] == job["job_class"]  # JobPage.items typed per kind
    events = output["events"]
    assert [seq for seq, _, _ in events] == list(range(len(events)))
    assert events[0][1] == "queued" and events[-1][1:] == ["succeeded", 1.0]


def test_errors_and_other_routes_through_the_client(output: dict[str, Any]) -> None:
    assert output["errors"] == {
        "multi_token": {"status_code": 400, "class": "ErrorBody", "code": "not_single_token", "field": "answer"},
        "out_of_range": {"status_code": 400, "class": "ErrorBody", "code": "invalid_request", "field": "n_steps"},
        "unknown_model": {"status_code": 404, "class": "ErrorBody", "code": "unknown_model", "field": "model"},
        "unknown_job": {"status_code": 404, "class": "ErrorBody", "code": "unknown_job", "field": "job_id"},
        "no_key": {"status_code": 401, "class": "ErrorBody", "code": "unauthorized", "field": "Authorization"},
    }
    routes = output["routes"]
    assert routes["models"] == ["tiny-gpt2", "slow-gpt2"]
    assert (routes["n_layers"], routes["n_heads"], routes["saes"]) == (2, 4, ["res-1"])
    assert routes["healthz"] == {"status": "ok"}
    assert routes["readyz"] == ["ReadinessReport", "ready", {"store": "ok", "broker": "ok"}]
    assert routes["metrics_has_jobs"] is True
