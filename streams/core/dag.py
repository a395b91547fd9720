"""DAG evaluation with networkx (pure): cycles, upstreams, and which tasks are ready."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx


def find_cycle(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """A cycle as a closed path (first node repeated at the end), or None."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(sorted(nodes))
    graph.add_edges_from(edges)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    path = [u for u, _ in cycle]
    return [*path, path[0]]


def topological_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Stable topological order (ties broken by name) for display and deterministic dispatch."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return list(nx.lexicographical_topological_sort(graph))
