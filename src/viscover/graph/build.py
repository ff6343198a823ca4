"""The item-board graph of a catalogue, and per-item attributes (domains, labels) aligned with its nodes."""

from __future__ import annotations

import numpy as np

from viscover.catalog.store import CatalogStore
from viscover.graph.attributes import ItemAttributes
from viscover.graph.bipartite import Bipartite, lookup_sorted


def domain_codes(domains: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """Integer code per item for its domain (no domain = ""), and the domain names by code."""
    names = sorted({d or "" for d in domains})
    code = {n: i for i, n in enumerate(names)}
    return np.array([code[d or ""] for d in domains], np.int32), names


def item_board_graph(store: CatalogStore) -> tuple[Bipartite, list[str]]:
    """Every item is a node (boardless ones too); each board's members are sorted by domain so that walks can
    be biased toward a domain. Returns the graph and the domain names by code."""
    items, boards = store.board_memberships()
    all_items, domains, _ = store.item_attributes()
    codes, names = domain_codes(domains)
    keys = dict(zip(all_items.tolist(), codes.tolist()))
    return Bipartite.from_edges("item-board", items, boards, left_ids=all_items, left_keys=keys), names


def item_user_graph(store: CatalogStore) -> tuple[Bipartite, list[str]]:
    """Items x users who clicked or saved them (from the engagement log), beside the item-board graph: the
    second bipartite graph that multi-graph models (MultiBiSage) walk separately. Returns it and the user names
    by right-node id."""
    items, users = store.engaged_users()
    names = sorted(set(users))
    code = {u: i for i, u in enumerate(names)}
    all_items, _, _ = store.item_attributes()
    return Bipartite.from_edges("item-user", items, np.array([code[u] for u in users], np.int64),
                                left_ids=all_items), names


def item_attributes(store: CatalogStore, graph: Bipartite) -> tuple[ItemAttributes, list[str], list[str]]:
    """Label codes per task and domain codes per graph node; also the task names and domain names."""
    ids, domains, labels = store.item_attributes()
    codes, domain_names = domain_codes(domains)
    domain_per_node = lookup_sorted(ids, codes, graph.left_ids, -1).astype(codes.dtype)
    tasks = sorted(labels)
    matrix = np.full((len(tasks), graph.n_left), -1, np.int32)
    for t, task in enumerate(tasks):
        names = sorted(set(labels[task].values()))
        lcode = {n: i for i, n in enumerate(names)}
        items = np.fromiter(labels[task].keys(), np.int64, len(labels[task]))
        nodes = graph.left_index(items)
        values = np.array([lcode[v] for v in labels[task].values()], np.int32)
        matrix[t, nodes[nodes >= 0]] = values[nodes >= 0]
    return ItemAttributes(labels=matrix, domains=domain_per_node), tasks, domain_names
