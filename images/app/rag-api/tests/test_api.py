"""Custom testinfra tests for the rag-api image: ``host`` is the image's running container."""

import json


def fetch(host, path: str) -> dict:  # type: ignore[no-untyped-def]
    script = (
        "import urllib.request, sys; "
        f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8080{path}', timeout=5).read().decode())"
    )
    return json.loads(host.check_output(f'python -c "{script}"'))


def test_answers_from_the_bundled_policies(host) -> None:  # type: ignore[no-untyped-def]
    answer = fetch(host, "/v1/answer?q=how+are+images+promoted+to+prod")
    assert answer["source"] == "ops-001"


def test_search_ranks_the_secrets_policy_first(host) -> None:  # type: ignore[no-untyped-def]
    hits = fetch(host, "/v1/search?q=tokens+passwords+vault&limit=2")["hits"]
    assert hits[0]["id"] == "dev-001"


def test_server_runs_as_the_app_user(host) -> None:  # type: ignore[no-untyped-def]
    status = host.file("/proc/1/status").content_string
    assert "\nUid:\t10001\t" in status, status


def test_only_tmp_is_writable(host) -> None:  # type: ignore[no-untyped-def]
    """As in its Kubernetes Deployment: a read-only root, a writable /tmp (imagefactory runs an
    application's test container so; deploy.writable_paths would add more)."""
    mounts = {}
    for line in host.file("/proc/mounts").content_string.splitlines():
        fields = line.split()
        mounts[fields[1]] = fields[3].split(",")
    assert "ro" in mounts["/"], mounts["/"]
    assert "rw" in mounts["/tmp"], mounts["/tmp"]
    assert host.run("touch /opt/rag-api/written").rc != 0
