"""Programs that stand for container images: a pod's container is a host program started in
the pod's network namespace (kemu pulls no images). Each image is one class, in one module,
named as manifests name it (`kemu/http-echo`); see base.py."""
