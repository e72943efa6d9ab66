#!/usr/bin/env python3
"""Checks the hardening rules on the compose files, without a container engine.

usage: check_compose_policy.py BASE.yaml [OVERRIDE.yaml ...]
Merges the files the way compose does for these keys (mappings merged, the
override's scalars and lists win) and checks every service:
  - runs as a non-root `user` (x-root-exempt: <reason> allows root, and then
    only with every capability dropped except those in cap_add)
  - read_only: true, security_opt has no-new-privileges:true, cap_drop: [ALL]
  - a healthcheck (unless x-healthcheck-exempt: <reason>), not disabled
  - deploy.resources.limits with memory and cpus
  - no published ports except on `web` (x-publish-ok: <reason> allows others)
  - no privileged, no host network/pid/ipc
With --limits 'svc=MEM/CPU,...' also checks exact limits (the prod sizes).
Prints one line per finding and a closing 'N passed, N failed' line."""
import sys

import yaml


def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a[k], v) if k in a else v
        return out
    return b


def mem_bytes(v):
    s = str(v).strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(float(s[:-1]) * mult[s[-1]]) if s[-1] in mult else int(s)


def main(argv):
    expected = {}
    files = []
    it = iter(argv)
    for a in it:
        if a == "--limits":
            for item in next(it).split(","):
                svc, lim = item.split("=")
                mem, cpu = lim.split("/")
                expected[svc.strip()] = (mem_bytes(mem), float(cpu))
        else:
            files.append(a)
    doc = {}
    for f in files:
        with open(f) as fh:
            doc = merge(doc, yaml.safe_load(fh))
    services = doc.get("services", {})
    passed = failed = 0

    def rule(ok, svc, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {svc}: {what}")

    for name, s in sorted(services.items()):
        user = str(s.get("user", ""))
        uid = user.split(":")[0]
        if "x-root-exempt" in s:
            rule(set(s.get("cap_drop", [])) == {"ALL"}, name, "root exemption without cap_drop: [ALL]")
        else:
            rule(uid not in ("", "0", "root"), name, f"runs as root (user: {user!r})")
        rule(s.get("read_only") is True, name, "read_only is not true")
        rule("no-new-privileges:true" in [str(x).replace(" ", "") for x in s.get("security_opt", [])],
             name, "security_opt lacks no-new-privileges:true")
        rule(s.get("cap_drop") == ["ALL"], name, "cap_drop is not [ALL]")
        hc = s.get("healthcheck")
        if "x-healthcheck-exempt" not in s:
            rule(bool(hc) and not hc.get("disable") and hc.get("test") not in (None, ["NONE"]),
                 name, "no healthcheck")
        limits = (s.get("deploy") or {}).get("resources", {}).get("limits", {})
        rule("memory" in limits and "cpus" in limits, name, f"no memory/cpus limits ({limits})")
        if name in expected and "memory" in limits and "cpus" in limits:
            mem, cpu = expected[name]
            rule(mem_bytes(limits["memory"]) == mem and float(limits["cpus"]) == cpu,
                 name, f"limits {limits} != expected {mem >> 20}M/{cpu}")
        if s.get("ports"):
            rule(name == "web" or "x-publish-ok" in s, name, "publishes ports (only web may)")
        rule(not s.get("privileged"), name, "privileged")
        for k in ("network_mode", "pid", "ipc"):
            rule(str(s.get(k, "")) != "host", name, f"{k}: host")
    missing = [svc for svc in expected if svc not in services]
    for svc in missing:
        rule(False, svc, "expected service missing")
    print(f"compose-policy ({' + '.join(files)}): {len(services)} services")
    print(f"compose-policy: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
