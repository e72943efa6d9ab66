#!/usr/bin/env python3
"""Checks the Pod Security `restricted` rules and our own on rendered manifests.

usage: kubectl kustomize deploy/k8s | check_k8s_policy.py -
Every workload's pod template: runAsNonRoot, seccompProfile RuntimeDefault,
no host namespaces, automountServiceAccountToken false; every container:
allowPrivilegeEscalation false, readOnlyRootFilesystem, capabilities drop ALL,
resources requests and limits; Deployments: liveness and readiness probes.
Also: the namespace enforces `restricted`, a default-deny NetworkPolicy exists,
no Secret carries values (Secrets are referenced by name only), the processor
is scaled by a KEDA ScaledObject on stream BANK_TRANSFERS / consumer processor,
gateway and notifier have HPAs, PostgreSQL is a CloudNativePG Cluster.
Ends with a 'N passed, N failed' line."""
import sys

import yaml

passed = failed = 0


def rule(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def main(path):
    text = sys.stdin.read() if path == "-" else open(path).read()
    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            pod = d["spec"]["template"]["spec"]
            sc = pod.get("securityContext", {})
            rule(sc.get("runAsNonRoot") is True, f"{kind}/{name}: runAsNonRoot")
            rule(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{kind}/{name}: seccomp RuntimeDefault")
            rule(pod.get("automountServiceAccountToken") is False, f"{kind}/{name}: automountServiceAccountToken false")
            for k in ("hostNetwork", "hostPID", "hostIPC"):
                rule(not pod.get(k), f"{kind}/{name}: {k}")
            for c in pod.get("initContainers", []) + pod["containers"]:
                cn = f"{kind}/{name}/{c['name']}"
                csc = c.get("securityContext", {})
                rule(csc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation false")
                rule(csc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem")
                rule(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{cn}: drop ALL")
                rule(not csc.get("capabilities", {}).get("add"), f"{cn}: no added capabilities")
                res = c.get("resources", {})
                rule({"cpu", "memory"} <= set(res.get("requests", {})), f"{cn}: cpu+memory requests")
                rule("memory" in res.get("limits", {}), f"{cn}: memory limit")
                if kind == "Deployment":
                    rule("livenessProbe" in c and "readinessProbe" in c, f"{cn}: liveness+readiness probes")
                if ":" not in c["image"] or c["image"].endswith(":latest"):
                    rule(False, f"{cn}: image {c['image']} has no pinned tag")
        if kind == "Secret":
            rule(not d.get("data") and not d.get("stringData"), f"Secret/{name} carries values in git")
    ns = kinds.get("Namespace", [])
    rule(any(n["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted" for n in ns),
         "namespace enforces pod-security restricted")
    rule(any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
             and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in kinds.get("NetworkPolicy", [])),
         "default-deny NetworkPolicy (ingress and egress)")
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in kinds.get("HorizontalPodAutoscaler", [])}
    rule({"gateway", "notifier"} <= hpas, f"HPAs for gateway and notifier (found {sorted(hpas)})")
    so = kinds.get("ScaledObject", [])
    rule(any(s["spec"]["scaleTargetRef"]["name"] == "processor" and any(
        t["type"] == "nats-jetstream" and t["metadata"].get("stream") == "BANK_TRANSFERS"
        and t["metadata"].get("consumer") == "processor" for t in s["spec"]["triggers"]) for s in so),
        "KEDA ScaledObject on BANK_TRANSFERS/processor for the processor")
    rule("processor" not in hpas, "no plain HPA fighting KEDA over the processor")
    rule(bool(kinds.get("Cluster")) and kinds["Cluster"][0]["apiVersion"].startswith("postgresql.cnpg.io/"),
         "CloudNativePG Cluster")
    rule(bool(kinds.get("Job")), "migration Job")
    print(f"k8s-policy: {len(docs)} objects")
    print(f"k8s-policy: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "-"))
