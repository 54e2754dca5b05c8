"""The add-ons a cluster gets besides the user's workloads, as the manifests that install them
would describe them: cluster DNS (as kubeadm installs CoreDNS: a pod in kube-system behind the
kube-dns Service) and, when there are Ingresses, the ingress controller (as ingress-nginx
deploys it). Pure data."""

from __future__ import annotations

from kemu.scenario.objects import (
    Container,
    ContainerPort,
    EndpointSlice,
    IngressClass,
    PodSpec,
    Probe,
    Service,
    ServicePort,
    SliceEndpoint,
)

INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_CONTROLLER = "ingress-nginx-controller"

DNS_POD = PodSpec(
    name="coredns", namespace="kube-system", labels={"k8s-app": "kube-dns"},
    containers=(Container(name="coredns", image="kemu/cluster-dns", ports=(
        ContainerPort(53, "dns", "UDP"), ContainerPort(53, "dns-tcp", "TCP"))),),
    owner="kemu/dns-addon", dns_policy="Default")  # as CoreDNS's own Deployment has it
DNS_SERVICE = Service(
    name="kube-dns", namespace="kube-system",
    ports=(ServicePort(53, "dns", "UDP", "dns"), ServicePort(53, "dns-tcp", "TCP", "dns-tcp")),
    selector={"k8s-app": "kube-dns"})

INGRESS_POD = PodSpec(
    name=f"{INGRESS_CONTROLLER}-0", namespace=INGRESS_NAMESPACE,
    labels={"app.kubernetes.io/name": "ingress-nginx"},
    containers=(Container(name="controller", image="kemu/ingress-nginx", ports=(
        ContainerPort(80, "http"), ContainerPort(443, "https")),
        # ingress-nginx's chart probes /healthz on its status port; its default server answers
        # the same path on 80, which kemu's nginx serves.
        readiness=Probe("httpGet", "http", "/healthz", period_s=10)),),
    owner="kemu/ingress-addon")
# ingress-nginx's class, the cluster's default one as minikube's ingress add-on makes it (so
# Ingresses naming no class are served); a scenario declaring an IngressClass `nginx` of its
# own replaces it (without the is-default-class annotation, such Ingresses are then ignored,
# as with a default helm install).
INGRESS_CONTROLLER_CLASS = "k8s.io/ingress-nginx"  # the controller value of its classes
INGRESS_CLASS = IngressClass("nginx", INGRESS_CONTROLLER_CLASS, default=True)
INGRESS_SERVICE = Service(
    name=INGRESS_CONTROLLER, namespace=INGRESS_NAMESPACE, type="NodePort",
    ports=(ServicePort(80, "http", "TCP", "http"), ServicePort(443, "https", "TCP", "https")),
    selector={"app.kubernetes.io/name": "ingress-nginx"})


def kubernetes_service(cluster_ip: str, api_server: str) -> tuple[Service, EndpointSlice]:
    """The `kubernetes` Service every cluster has in `default`: the service range's first
    address, port 443 (https) to the API server's 6443. kemu emulates no API server: the
    endpoint is the first node's address, where nothing listens, so a connection is refused
    there rather than answered."""
    service = Service(name="kubernetes", namespace="default", cluster_ip=cluster_ip,
                      ports=(ServicePort(443, 6443, "TCP", "https"),))
    endpoint = SliceEndpoint(api_server, node="")
    return service, EndpointSlice("kubernetes", "default", "kubernetes",
                                  (("https", 6443, "TCP"),), (endpoint,))
