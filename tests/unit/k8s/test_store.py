"""The object store: a version every change bumps (and only a change), first readiness kept;
the controllers reconcile from it whatever changed — a pod no Service selects re-renders the
policies (it used to wait for some Service's endpoints to change)."""

from kemu.k8s.controllers import Controllers, View
from kemu.k8s.store import Store
from kemu.scenario.objects import Container, NetworkPolicy, PodSpec, Service, ServicePort


def spec(name, **labels):
    return PodSpec(name, labels=labels, containers=(Container("c", "kemu/sleep"),))


def test_changes_bump_the_version_and_non_changes_do_not():
    store = Store(["n1"])
    v0 = store.version
    store.create_pod(spec("a"), "n1")
    store.update_pod("default/a", ip="10.0.0.2")
    v1 = store.version
    store.update_pod("default/a", ip="10.0.0.2")
    store.set_endpoints({}, [])
    store.delete("Service", "default/none")
    assert v1 == v0 + 2 and store.version == v1


def test_first_readiness_is_remembered():
    store = Store(["n1"])
    store.create_pod(spec("a"), "n1")
    store.update_pod("default/a", containers_ready=True)
    first = store.pod("default/a").ready_since
    store.update_pod("default/a", containers_ready=False)
    store.update_pod("default/a", containers_ready=True)
    assert first is not None and store.pod("default/a").ready_since == first
    assert first >= store.pod("default/a").created
    store.delete_pod("default/a")
    store.update_pod("default/a", containers_ready=True)  # deleted meanwhile: nothing to update
    assert store.pods() == []


def test_a_readiness_gate_holds_a_pod_out_until_its_condition_is_true():
    """kubelet: Ready = ContainersReady and every readiness gate's condition True
    (pkg/kubelet/status/generate.go GeneratePodReadyCondition)."""
    store = Store(["n1"])
    gate = "cloud.google.com/load-balancer-neg-ready"
    store.create_pod(PodSpec("a", readiness_gates=(gate,)), "n1")
    store.update_pod("default/a", containers_ready=True)
    assert not store.pod("default/a").ready
    store.update_pod("default/a", conditions=frozenset({gate}))
    assert store.pod("default/a").ready


class Recorder:
    def __init__(self):
        self.views: list[View] = []

    def sync(self, view):
        self.views.append(view)


def test_controllers_render_again_on_any_change_and_only_then():
    store = Store(["n1", "n2"], [Service("web", cluster_ip="10.96.0.5",
                                         selector={"app": "web"}, ports=(ServicePort(80, 80),)),
                                 NetworkPolicy("deny", "default", {}, ("Ingress",))])
    agent = Recorder()
    controllers = Controllers(store, 40.0, per_node=[agent])
    assert controllers.reconcile() and not controllers.reconcile()
    store.create_pod(spec("client", role="client"), "n1")  # selected by no Service
    store.update_pod("default/client", ip="10.244.0.2", containers_ready=True)
    assert controllers.reconcile()
    assert [p.spec.name for p in agent.views[-1].pods] == ["client"]


def test_a_node_that_stopped_answering_is_not_ready_after_the_grace_period():
    store = Store(["n1"], [Service("web", cluster_ip="10.96.0.5", selector={"app": "web"},
                                   ports=(ServicePort(80, 80),))])
    store.create_pod(spec("web-0", app="web"), "n1")
    store.update_pod("default/web-0", ip="10.244.0.2", containers_ready=True)
    controllers = Controllers(store, 0.0)
    controllers.reconcile()
    assert store.endpoints()[("default/web", "")][0].ready
    store.set_node("n1", unreachable_since=0.0)  # long ago: the grace period has passed
    controllers.reconcile()
    (gone,) = store.endpoints()[("default/web", "")]  # still in its slice, not ready
    assert not store.node("n1").ready and not gone.ready
    store.set_node("n1", unreachable_since=None)
    controllers.reconcile()
    assert store.node("n1").ready and store.endpoints()[("default/web", "")][0].ready
