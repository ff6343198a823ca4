"""The item-board graph of a catalogue, and per-item attributes (domains, labels) aligned with its nodes."""

from __future__ import annotations

import numpy as np

from viscover.catalog.store import CatalogStore
from viscover.graph.bipartite import Bipartite
from viscover.related.candidates import ItemAttributes


def item_board_graph(store: CatalogStore) -> tuple[Bipartite, list[str]]:
    """Every item is a node (boardless ones too); each board's members are sorted by domain so that walks can
    be biased toward a domain. Returns the graph and the domain names by code."""
    items, boards = store.board_memberships()
    all_items, domains, _ = store.item_attributes()
    names = sorted({d or "" for d in domains})
    code = {n: i for i, n in enumerate(names)}
    keys = {int(i): code[d or ""] for i, d in zip(all_items, domains)}
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
    pos = np.searchsorted(ids, graph.left_ids)
    domain_names = sorted({d or "" for d in domains})
    dcode = {n: i for i, n in enumerate(domain_names)}
    domain_codes = np.array([dcode[domains[p] or ""] for p in pos], np.int32)
    tasks = sorted(labels)
    matrix = np.full((len(tasks), graph.n_left), -1, np.int32)
    for t, task in enumerate(tasks):
        names = sorted(set(labels[task].values()))
        lcode = {n: i for i, n in enumerate(names)}
        for node, item in enumerate(graph.left_ids.tolist()):
            label = labels[task].get(item)
            if label is not None:
                matrix[t, node] = lcode[label]
    return ItemAttributes(labels=matrix, domains=domain_codes), tasks, domain_names
