"""Benchmark: placement decisions alone (no NATS, no I/O), 10,000 pods on 1,000 nodes.

Every filter is switched on: node selector, required and preferred node affinity, taints
with tolerations (and PreferNoSchedule), resources and max pods; then again with
required pod anti-affinity and a hard topology spread over zones, which costs more per
pod. Prints placements per second for each.

    .venv/bin/python bench/placement.py [--nodes 1000] [--pods 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.actors.scheduler.placement import NodeState, Placer, PodClass
from shoal.models.scheduling import Taint
from shoal.models.workloads import PodSpec

GI = 2**30


def nodes(count: int) -> dict[str, NodeState]:
    result = {}
    for i in range(count):
        name = f"n{i:05d}"
        labels = {
            "kubernetes.io/hostname": name,
            "zone": f"z{i % 10}",
            "disk": "ssd" if i % 4 else "hdd",
            "tier": "gold" if i % 3 == 0 else "silver",
        }
        taints = [Taint(key="dedicated", value="batch", effect="NoSchedule")] if i % 10 == 0 else []
        if i % 7 == 0:
            taints.append(Taint(key="spot", effect="PreferNoSchedule"))
        result[name] = NodeState(name, labels, taints, True, True, 32_000, 128 * GI, max_pods=110)
    return result


def spec(extra: dict) -> PodSpec:  # type: ignore[type-arg]
    base = {
        "containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
        ],
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z9"]}]}
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 20,
                        "preference": {
                            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]
                        },
                    }
                ],
            }
        },
    }
    return PodSpec.model_validate(base | extra)


def run(label: str, node_count: int, pods: int, pod_spec: PodSpec) -> None:
    placer = Placer(nodes(node_count))
    cls = PodClass("default", {"app": "bench"}, pod_spec)
    started = time.perf_counter()
    run_ = placer.run_for("bench", cls)
    placed = sum(1 for i in range(pods) if run_.place(f"default.p{i}", 0.0).node is not None)
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {placed:>6}/{pods} placed in {elapsed:.3f}s: {pods / elapsed:>9,.0f} placements/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    args = parser.parse_args()
    run("node selector, affinity, taints, resources", args.nodes, args.pods, spec({}))
    spread = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "bench"}},
            }
        ],
    }
    run("... and a hard topology spread over 10 zones", args.nodes, args.pods, spec(spread))
    anti = spec({}).affinity.model_dump(by_alias=True)  # type: ignore[union-attr]
    anti["podAntiAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "other"}}, "topologyKey": "kubernetes.io/hostname"}
        ]
    }
    run("... and required pod anti-affinity", args.nodes, args.pods, spec(spread | {"affinity": anti}))
    soft = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": "bench"}},
            }
        ]
    }
    run("soft spread (scan mode: every node, every pod)", args.nodes, args.pods, spec(soft))


if __name__ == "__main__":
    main()
