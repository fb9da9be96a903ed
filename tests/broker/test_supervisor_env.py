"""What `zjobs up` gives each child in its environment: a secret only to the child that
needs it (the API's token reaches no worker, whose jobs could read it). Pure."""

from __future__ import annotations

from zjobs.supervisor import Child, Supervisor


def test_a_secret_reaches_only_its_own_child() -> None:
    api = Child("api", ["api"], secrets=("ZJOBS_API_TOKEN",))
    worker, broker = Child("worker-1", ["worker"]), Child("broker", ["broker"])
    supervisor = Supervisor([broker, worker, api],
                            {"ZJOBS_API_TOKEN": "s3cret", "ZJOBS_FRONTEND": "tcp://x"})
    assert supervisor._environment(api) == {"ZJOBS_API_TOKEN": "s3cret",
                                            "ZJOBS_FRONTEND": "tcp://x"}
    for child in (worker, broker):
        assert supervisor._environment(child) == {"ZJOBS_FRONTEND": "tcp://x"}
