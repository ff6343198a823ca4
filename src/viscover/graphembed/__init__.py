"""Graph neural embeddings of items (PinSage, Ying et al., KDD 2018): content vectors refined by importance-pooled
random-walk neighbourhoods of the item-board graph, trained with a max-margin loss on board co-membership."""

from viscover.graphembed.infer import embed_items, embed_new
from viscover.graphembed.loop import GraphTrainConfig, GraphTrainResult, train_graph
from viscover.graphembed.model import PinSage, node_features
from viscover.graphembed.neighbourhoods import Neighbourhoods, walk_neighbourhoods

__all__ = ["GraphTrainConfig", "GraphTrainResult", "Neighbourhoods", "PinSage", "embed_items", "embed_new",
           "node_features", "train_graph", "walk_neighbourhoods"]
