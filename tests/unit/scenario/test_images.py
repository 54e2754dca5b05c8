"""What runs for a container's image: the `images:` map, built-in images, the stand-in."""

import pytest

from kemu.images.base import container_argv
from kemu.scenario.images import Reference, program, resolve
from kemu.scenario.objects import Container, ContainerPort, PodSpec


@pytest.mark.parametrize("text, parsed", [
    ("nginx", Reference("nginx")),
    ("nginx:1.14.2", Reference("nginx", "1.14.2")),
    ("docker.io/library/nginx:1.14.2", Reference("nginx", "1.14.2")),
    ("nginx@sha256:abc", Reference("nginx", "", "sha256:abc")),
    ("registry.k8s.io/pause:3.9", Reference("registry.k8s.io/pause", "3.9")),
    ("localhost:5000/shop/cart", Reference("localhost:5000/shop/cart")),  # a registry's port
])
def test_references_are_taken_apart(text, parsed):
    assert Reference.parse(text) == parsed


def test_a_map_key_matches_with_or_without_tag_or_digest():
    images = {"nginx": "kemu/http-echo", "redis:7": ("redis-server", "--port", "6379")}
    assert program("nginx:1.14.2", images) == "kemu/http-echo"
    assert program("docker.io/library/nginx@sha256:abc", images) == "kemu/http-echo"
    assert program("redis:7", images) == ("redis-server", "--port", "6379")
    assert program("redis:6", images) == "kemu/stand-in"  # another tag than the key's
    assert program("kemu/iperf3", images) == "kemu/iperf3"
    # The most specific key wins, whatever the order.
    assert program("nginx:1.25", {"nginx": "kemu/sleep", "nginx:1.25": "kemu/iperf3"}) == \
        "kemu/iperf3"


def pod(*containers):
    return PodSpec("p", containers=containers)


def test_an_unknown_image_runs_the_stand_in_on_every_declared_port():
    web = Container("web", "nginx:1.14.2", ports=(ContainerPort(80, "http"),
                                                  ContainerPort(9100, "prom"),
                                                  ContainerPort(53, "dns", "UDP")))
    (resolved,) = resolve(pod(web), {}).containers
    assert resolved.stand_in
    assert container_argv(resolved)[1:] == ["-m", "kemu.images.http_echo", "--port", "80",
                                            "--port", "9100", "--udp", "53"]


def test_command_and_the_map_win_over_the_stand_in():
    given = Container("db", "postgres:16", command=("sleep",), args=("60",))
    (resolved,) = resolve(pod(given), {}).containers
    assert not resolved.stand_in and container_argv(resolved) == ["sleep", "60"]
    mapped = Container("db", "postgres:16", args=("-c", "x"))
    (resolved,) = resolve(pod(mapped), {"postgres": ("pg-fake",)}).containers
    assert not resolved.stand_in and container_argv(resolved) == ["pg-fake", "-c", "x"]


def test_http_echo_serves_every_declared_port():
    echo = Container("web", "kemu/http-echo", ports=(ContainerPort(8080, "http-web"),
                                                     ContainerPort(9100, "prom")))
    assert container_argv(echo)[3:] == ["--port", "8080", "--port", "9100"]
