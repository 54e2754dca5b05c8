"""The lab's control channel without a cluster: bad requests get an answer, never take the
owner down; events are checked against the scenario and the lab's history."""

import socket
import threading

from kemu.lab.control import LabEvents, inline_files, serve_one
from tests.unit.scenario.test_scenario import scenario


def ask(listener, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(listener.getsockname())
        client.sendall(payload)
        return client.makefile("rb").readline()


def test_bad_requests_are_answered_and_the_owner_goes_on(tmp_path):
    events = LabEvents(cluster=None, doc=scenario(), file="s.yaml")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(tmp_path / "c.sock"))
        listener.listen()
        for payload, expected in ((b"not json\n", b"bad request"), (b"[1, 2]\n", b"action"),
                                  (b'{"event": {"action": "node-up", "node": "node1"}}\n',
                                   b"node node1 is already up then"),
                                  (b'{"event": {"action": "node-down", "node": "nope"}}\n',
                                   b"node: name the node")):
            thread = threading.Thread(target=serve_one, args=(listener, events))
            thread.start()
            assert expected in ask(listener, payload)
            thread.join()
    assert events.history == []  # nothing was applied


def test_manifest_files_are_inlined(tmp_path):
    (tmp_path / "m.yaml").write_text("kind: Service\n---\nkind: Pod\n")
    doc = inline_files({"workloads": [{"file": "m.yaml"}, {"kind": "Deployment"}]}, tmp_path)
    assert [w["kind"] for w in doc["workloads"]] == ["Service", "Pod", "Deployment"]
